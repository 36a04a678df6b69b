"""Wait on a condition with a deadline: the harness's only way to wait for something to happen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .errors import RunError

T = TypeVar("T")


class DeadlineExceeded(RunError, AssertionError):
    """The condition did not hold in time; the message says what was awaited and the last value."""


def wait_for(
    probe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    *,
    timeout_s: float,
    interval_s: float = 0.05,
    what: str = "condition",
) -> T:
    """Call `probe` until `done(value)` holds and return that value; raise after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(f"{what}: not met within {timeout_s:g} s; last value: {value!r}")
        time.sleep(interval_s)
