"""SIGINT and SIGTERM, however many and whenever they come: one orderly teardown.

CI runners, `timeout`, `docker stop` and a terminal's Ctrl-C signal a command's whole
process group, and `uv run` forwards what it gets to its child: the harness often gets
two signals within microseconds. The first becomes KeyboardInterrupt, so the `finally`
blocks stop what was started; every later one is only noted. Raising again would land
in the middle of that teardown (or before it began) and skip it, leaving the stack up.

A signal that comes while a `deferred()` block runs (a stop that began without one) is
noted too, and raised as KeyboardInterrupt once the outermost block ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], object] | int | None


@dataclass
class _State:
    noted: list[int] = field(default_factory=list)  # every signal taken, in order
    raised: bool = False  # the one KeyboardInterrupt was raised: from now on, teardown
    deferring: int = 0  # depth of `deferred()` blocks
    installed: int = 0  # depth of `orderly_shutdown()` blocks


_state = _State()


def _take(signum: int, _frame: FrameType | None) -> None:
    """The handler: note every signal; raise only the first, and never while deferring."""
    _state.noted.append(signum)
    if _state.raised or _state.deferring:
        return
    _state.raised = True
    raise KeyboardInterrupt(f"signal {signum}")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def installed() -> bool:
    """Whether SIGTERM is taken by this module's handler (in this process)."""
    return _main_thread() and signal.getsignal(signal.SIGTERM) is _take


def noted() -> list[int]:
    """Every SIGINT and SIGTERM taken since the outermost `orderly_shutdown()` began."""
    return list(_state.noted)


@contextlib.contextmanager
def orderly_shutdown() -> Iterator[None]:
    """SIGTERM (and SIGINT, unless ignored, as a background job has it) raise
    KeyboardInterrupt once; later signals are noted, never raised. Re-entrant.

    SIGINT left ignored: a shell starts a script's background job with it ignored, and
    the job expects to stay so.
    """
    global _state
    if not _main_thread():  # signal handlers belong to the main thread
        yield
        return
    if _state.installed:
        _state.installed += 1
        try:
            yield
        finally:
            _state.installed -= 1
        return
    _state = _State(installed=1)
    previous: dict[int, Handler] = {}
    for signum in SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _take)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _state.installed = 0


def install() -> None:
    """`orderly_shutdown()` until the process ends (a test session, the pytest plugin)."""
    global _state
    if not _main_thread() or installed():
        return
    _state = _State(installed=1)  # never uninstalled: nested blocks count on top of it
    for signum in SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _take)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (a stop, results being written), then
    raise KeyboardInterrupt if one came and none was raised yet."""
    if not _main_thread():
        yield
        return
    with orderly_shutdown():  # a no-op when the command already installed it
        before = len(_state.noted)
        _state.deferring += 1
        try:
            yield
        finally:
            _state.deferring -= 1
        came = _state.noted[before:]
        if came and not _state.deferring and not _state.raised:
            _state.raised = True
            raise KeyboardInterrupt(f"signal {came[0]} while stopping the stack")
