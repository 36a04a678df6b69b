"""Wait on a condition with a deadline: the harness's only way to wait for something to happen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import RunError

T = TypeVar("T")


class DeadlineExceeded(RunError, AssertionError):
    """The condition did not hold in time; the message says what was awaited and the last
    value. `last` is that value (or the exception a retried probe last raised), for a
    caller that says it in its own words or makes do with it."""

    def __init__(self, message: str, last: Any = None) -> None:
        super().__init__(message)
        self.last = last


def wait_for(
    probe: Callable[[], T],
    done: Callable[[T], bool] = bool,
    *,
    timeout_s: float,
    interval_s: float | Callable[[], float] = 0.05,
    what: str = "condition",
    retry_on: tuple[type[Exception], ...] = (),
    pause: Callable[[float], object] = time.sleep,
) -> T:
    """Call `probe` until `done(value)` holds and return that value; raise after `timeout_s`.

    A probe raising one of `retry_on` counts as not done yet (the last such exception is
    the DeadlineExceeded's `last`); any other exception ends the wait. `pause` waits
    between probes, never past the deadline: an Event's `wait` wakes the wait early.
    `interval_s` may be a function, asked before each pause (a poll that backs off).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value: Any = probe()
            met = done(value)
        except retry_on as exc:
            value, met = exc, False
        if met:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(
                f"{what}: not met within {timeout_s:g} s; last value: {value!r}", value
            )
        pause(min(interval_s() if callable(interval_s) else interval_s, left))
