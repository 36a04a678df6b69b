"""The nemesis on its own: real processes stand in for a lane's workers.

Each fault strikes the lane's oldest running worker, a lane's faults run in order, a
fault that cannot be done is recorded (and the others still happen), and a cancelled
nemesis injects nothing more.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from harness.nemesis import Nemesis
from harness.processes import ServerProcess, start_server
from harness.scenario import Scenario, parse_scenario
from harness.waiting import wait_for

pytestmark = pytest.mark.integration

READY = re.compile(r"worker ready")
WORKER = [sys.executable, "-c", "import time; print('worker ready', flush=True); time.sleep(60)"]

SCENARIO = """
name = "nemesis"
description = "Faults on two lanes."

[tolerances]
on_time_s = 2.0

[[lanes]]
name = "a"
pool = "solo"

[[lanes]]
name = "b"
pool = "solo"
"""


@dataclass
class FakeLane:
    """What the nemesis uses of a lane: its name and its workers, oldest first."""

    name: str
    workers: list[ServerProcess] = field(default_factory=list)

    def oldest_running_worker(self) -> ServerProcess | None:
        return next((worker for worker in self.workers if worker.alive()), None)


class FakeStack:
    """Lanes whose workers are plain processes; `start_worker` starts one more."""

    def __init__(self, names: list[str]) -> None:
        self.lanes = {name: FakeLane(name) for name in names}

    def start_worker(self, name: str) -> ServerProcess:
        worker = start_server(WORKER, READY)
        self.lanes[name].workers.append(worker)
        return worker

    def stop(self) -> None:
        for lane in self.lanes.values():
            for worker in lane.workers:
                worker.stop(grace_s=1.0)


@pytest.fixture
def stack() -> Iterator[FakeStack]:
    stack = FakeStack(["a", "b"])
    try:
        stack.start_worker("a")
        yield stack
    finally:
        stack.stop()


def scenario(faults: str) -> Scenario:
    return parse_scenario(SCENARIO + faults, "nemesis.toml")


def test_a_rolling_restart_starts_the_new_worker_then_stops_the_oldest(stack: FakeStack) -> None:
    faults = '[[faults]]\nat_s = 0.1\naction = "start-worker"\nlane = "a"\n'
    faults += '[[faults]]\nat_s = 0.1\naction = "stop-worker"\nlane = "a"\ngrace_s = 1\n'
    nemesis = Nemesis(stack, scenario(faults))  # type: ignore[arg-type]
    old = stack.lanes["a"].workers[0]
    before = time.time()

    nemesis.start_lane("a")
    after = time.time()
    wait_for(nemesis.done, timeout_s=20, interval_s=0.05, what="the faults")

    start, stop = nemesis.injected()
    new = stack.lanes["a"].workers[1]
    assert (start["action"], start["pid"]) == ("start-worker", new.pid)
    assert (stop["action"], stop["pid"]) == ("stop-worker", old.pid)
    assert stop["begun_at"] >= start["done_at"], "the stop waited for the start"
    assert before + 0.1 <= start["scheduled_at"] <= after + 0.1, "at_s after start_lane"
    assert start["begun_at"] >= start["scheduled_at"]
    assert not old.alive()
    assert new.alive()


def test_a_fault_that_cannot_be_done_is_recorded_and_the_others_still_happen(
    stack: FakeStack,
) -> None:
    faults = '[[faults]]\nat_s = 0.0\naction = "kill-worker"\nlane = "b"\n'  # b has no worker
    faults += '[[faults]]\nat_s = 0.0\naction = "kill-worker"\nlane = "a"\n'
    nemesis = Nemesis(stack, scenario(faults))  # type: ignore[arg-type]

    nemesis.start_lane("a")
    nemesis.start_lane("b")
    wait_for(nemesis.done, timeout_s=20, interval_s=0.05, what="the faults")

    by_lane = {fault["lane"]: fault for fault in nemesis.injected()}
    assert by_lane["b"]["error"] == "RuntimeError: lane 'b' has no running worker"
    assert "error" not in by_lane["a"]
    assert not stack.lanes["a"].workers[0].alive()


def test_a_cancelled_nemesis_injects_nothing_more(stack: FakeStack) -> None:
    faults = '[[faults]]\nat_s = 30.0\naction = "kill-worker"\n'  # every lane, much later
    nemesis = Nemesis(stack, scenario(faults))  # type: ignore[arg-type]
    nemesis.start_lane("a")
    nemesis.start_lane("b")

    nemesis.cancel()
    nemesis.join(timeout_s=5)

    assert nemesis.done()
    assert nemesis.injected() == []
    assert stack.lanes["a"].workers[0].alive()
