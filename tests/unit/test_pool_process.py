"""kill-pool-process picks the pool process running a task, from the worker's events.

The OOM killer picks the child that grew, the one running a task; the nemesis picks it
from the `started` and `finished` events each pool process writes with its PID.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.nemesis import busy_pool_process

pytestmark = pytest.mark.unit


def event(name: str, pid: int, at: float, message_id: str) -> dict[str, Any]:
    return {"event": name, "pid": pid, "at": at, "message_id": message_id}


def test_the_busy_pool_process_is_picked_with_its_part() -> None:
    events = [
        event("received", 10, 0.0, "m0"),
        event("started", 11, 1.0, "m0"),
        event("finished", 11, 1.2, "m0"),
        event("started", 12, 2.0, "m1"),
        event("started", 11, 4.0, "m2"),
        event("finished", 11, 4.2, "m2"),
    ]
    assert busy_pool_process([11, 12], events) == (12, "m1")


def test_of_several_busy_the_one_busy_longest_is_picked() -> None:
    events = [event("started", 12, 2.0, "m1"), event("started", 11, 4.0, "m2")]
    assert busy_pool_process([11, 12], events) == (12, "m1")


def test_a_pool_process_gone_or_of_another_worker_is_not_picked() -> None:
    """A killed child's task never finishes; its PID is no longer among the children."""
    events = [event("started", 9, 1.0, "m0"), event("started", 12, 2.0, "m1")]
    assert busy_pool_process([11, 12], events) == (12, "m1")
    assert busy_pool_process([11, 13], events) == (11, None)


def test_with_none_busy_the_first_is_picked_idle() -> None:
    assert busy_pool_process([13, 11], [event("finished", 11, 1.0, "m0")]) == (11, None)


def test_a_worker_without_pool_processes_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no pool process"):
        busy_pool_process([], [])
