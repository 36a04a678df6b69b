"""harness.signals: the first SIGINT or SIGTERM is raised, a burst after it only noted.

Each test runs on a fresh state with the signal handlers the process starts with (and
puts the session's own back after), since the test session itself runs under them.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from harness import signals

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in signals.SIGNALS}
    monkeypatch.setattr(signals, "_state", signals._State())
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_the_first_signal_is_raised_and_a_burst_after_it_only_noted() -> None:
    with signals.orderly_shutdown():
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            signal.raise_signal(signal.SIGTERM)
        # The teardown goes on: what `uv run` forwards, Ctrl-C, more SIGTERMs.
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
        assert signals.noted() == [signal.SIGTERM, signal.SIGTERM, signal.SIGINT, signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_while_deferred_is_raised_once_the_block_is_done() -> None:
    done = []

    def stop() -> None:
        with signals.deferred():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGTERM)
            done.append("the whole stop")

    with signals.orderly_shutdown():
        with pytest.raises(KeyboardInterrupt, match="signal 2 while stopping"):
            stop()
        signal.raise_signal(signal.SIGTERM)  # raised once already: noted
    assert done == ["the whole stop"]


def test_deferred_without_a_handler_installs_one_for_the_block() -> None:
    """A library user's stack.stop(), with Python's own handlers: held, then raised once."""
    with pytest.raises(KeyboardInterrupt, match="signal 15 while stopping"), signals.deferred():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_an_ignored_sigint_stays_ignored() -> None:
    """A script's background job starts with SIGINT ignored, and expects to keep it so."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with signals.orderly_shutdown():
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signals.installed()
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
