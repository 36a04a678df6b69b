"""`wait_for`: the one deadline loop, with probes that may raise and waits that wake early."""

from __future__ import annotations

import math
import threading
import time

import pytest

from harness.waiting import DeadlineExceeded, wait_for


def test_the_value_that_met_the_condition_is_returned() -> None:
    values = iter([0, 0, 3])
    assert wait_for(lambda: next(values), timeout_s=5, interval_s=0.001) == 3


def test_a_deadline_says_what_was_awaited_and_keeps_the_last_value() -> None:
    with pytest.raises(DeadlineExceeded, match=r"the answer: not met within 0\.05 s") as raised:
        wait_for(lambda: 41, lambda value: value == 42, timeout_s=0.05, what="the answer")
    assert raised.value.last == 41


def test_a_retried_exception_counts_as_not_yet_and_is_kept_as_the_last() -> None:
    tries: list[int] = []

    def probe() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError(f"try {len(tries)}")
        return "up"

    assert wait_for(probe, timeout_s=5, interval_s=0.001, retry_on=(ConnectionError,)) == "up"

    def never() -> str:
        raise ConnectionError("refused")

    with pytest.raises(DeadlineExceeded) as raised:
        wait_for(never, timeout_s=0.05, interval_s=0.01, retry_on=(ConnectionError,))
    assert isinstance(raised.value.last, ConnectionError)


def test_any_other_exception_ends_the_wait() -> None:
    def probe() -> bool:
        raise ValueError("wrong")

    with pytest.raises(ValueError, match="wrong"):
        wait_for(probe, timeout_s=5, retry_on=(ConnectionError,))


def test_an_events_wait_wakes_the_wait_early() -> None:
    event = threading.Event()
    threading.Timer(0.05, event.set).start()
    started = time.monotonic()
    assert wait_for(event.is_set, timeout_s=10, interval_s=5, pause=event.wait)
    assert time.monotonic() - started < 4


def test_an_interval_function_is_asked_before_each_pause_and_never_outwaits_the_deadline() -> None:
    asked: list[int] = []
    paused: list[float] = []

    def interval() -> float:
        asked.append(1)
        return 0.01 * len(asked)  # a poll that backs off

    readings = iter([False, False, False, True])
    assert wait_for(lambda: next(readings), timeout_s=10, interval_s=interval, pause=paused.append)
    assert paused == pytest.approx([0.01, 0.02, 0.03])
    with pytest.raises(DeadlineExceeded):
        wait_for(lambda: False, timeout_s=0.05, interval_s=lambda: 60.0)


def test_an_endless_wait_ends_when_its_condition_holds() -> None:
    readings = iter(range(5))
    assert wait_for(lambda: next(readings), lambda n: n == 3, timeout_s=math.inf, interval_s=0) == 3
