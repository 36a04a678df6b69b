"""The nemesis on its own: real processes stand in for a lane's workers.

Each fault strikes the lane's oldest running worker, a lane's faults run in order, a
fault that cannot be done is recorded (and the others still happen), and a cancelled
nemesis injects nothing more.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from harness.nemesis import Nemesis
from harness.processes import ServerProcess, start_server
from harness.scenario import Scenario, parse_scenario
from harness.waiting import DeadlineExceeded, wait_for
from harness.wording import describe_fault

from .mockapi import MockAPI

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
    assert (start.action, start.pid) == ("start-worker", new.pid)
    assert (stop.action, stop.pid) == ("stop-worker", old.pid)
    assert stop.begun_at >= start.done_at, "the stop waited for the start"
    assert before + 0.1 <= start.scheduled_at <= after + 0.1, "at_s after start_lane"
    assert start.begun_at >= start.scheduled_at
    assert not old.alive()
    assert new.alive()


@pytest.mark.parametrize("old_worker", ["running", "dead"])
def test_a_restart_stops_the_old_worker_if_it_runs_then_starts_a_new_one(
    stack: FakeStack, old_worker: str
) -> None:
    old = stack.lanes["a"].workers[0]
    if old_worker == "dead":
        old.kill()
    faults = '[[faults]]\nat_s = 0\naction = "restart-worker"\nlane = "a"\ngrace_s = 1\n'
    nemesis = Nemesis(stack, scenario(faults))  # type: ignore[arg-type]

    nemesis.start_lane("a")
    wait_for(nemesis.done, timeout_s=20, interval_s=0.05, what="the restart")

    (restart,) = nemesis.injected()
    old_gone, new = stack.lanes["a"].workers
    assert old_gone is old
    assert not old.alive()
    assert new.alive()
    assert restart.error is None, restart
    assert restart.new_pid == new.pid
    if old_worker == "running":  # stopped by the restart: SIGTERM, answered by exiting
        assert (restart.pid, restart.exit_code) == (old.pid, -15)
        assert describe_fault(restart, None).startswith(f"restart-worker a (pid {old.pid}, then")
    else:
        assert (restart.pid, restart.exit_code) == (None, None)
        assert f"(none running, then pid {new.pid})" in describe_fault(restart, None)


def test_the_nemesis_is_busy_while_a_fault_is_being_done(stack: FakeStack) -> None:
    """The run's deadline waits for a fault in progress (a worker slow to start)."""
    release = threading.Event()
    start_worker = stack.start_worker

    def slow_start(name: str) -> ServerProcess:
        release.wait(timeout=20)
        return start_worker(name)

    stack.start_worker = slow_start  # type: ignore[method-assign]
    faults = '[[faults]]\nat_s = 0\naction = "start-worker"\nlane = "a"\n'
    nemesis = Nemesis(stack, scenario(faults))  # type: ignore[arg-type]
    assert not nemesis.busy()

    nemesis.start_lane("a")
    wait_for(nemesis.busy, timeout_s=5, interval_s=0.01, what="the start begun")
    assert not nemesis.done()
    release.set()
    wait_for(nemesis.done, timeout_s=20, interval_s=0.05, what="the start done")

    assert not nemesis.busy()
    (start,) = nemesis.injected()
    assert start.error is None, start


def test_a_fault_that_cannot_be_done_is_recorded_and_the_others_still_happen(
    stack: FakeStack,
) -> None:
    faults = '[[faults]]\nat_s = 0.0\naction = "kill-worker"\nlane = "b"\n'  # b has no worker
    faults += '[[faults]]\nat_s = 0.0\naction = "kill-worker"\nlane = "a"\n'
    nemesis = Nemesis(stack, scenario(faults))  # type: ignore[arg-type]

    nemesis.start_lane("a")
    nemesis.start_lane("b")
    wait_for(nemesis.done, timeout_s=20, interval_s=0.05, what="the faults")

    by_lane = {fault.lane: fault for fault in nemesis.injected()}
    assert by_lane["b"].error == "RuntimeError: lane 'b' has no running worker"
    assert by_lane["a"].error is None
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


def process_state(pid: int) -> str:
    """`T` stopped, `S` sleeping, ... as the kernel says (/proc/PID/stat, third field)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.faults
def test_a_frozen_worker_is_stopped_until_thawed_and_a_cancel_thaws_it(stack: FakeStack) -> None:
    faults = '[[faults]]\nat_s = 0.0\naction = "freeze-worker"\nlane = "a"\n'
    faults += '[[faults]]\nat_s = 0.5\naction = "thaw-worker"\nlane = "a"\n'
    faults += '[[faults]]\nat_s = 0.5\naction = "freeze-worker"\nlane = "a"\n'
    nemesis = Nemesis(stack, scenario(faults))  # type: ignore[arg-type]
    worker = stack.lanes["a"].workers[0]

    nemesis.start_lane("a")
    wait_for(lambda: len(nemesis.injected()) >= 1, timeout_s=10, interval_s=0.02, what="freeze")
    # A signal is delivered asynchronously: the kernel says "stopped" a moment later.
    wait_for(lambda: process_state(worker.pid) == "T", timeout_s=5, interval_s=0.01, what="T")
    wait_for(nemesis.done, timeout_s=10, interval_s=0.05, what="the faults")
    freeze, thaw, again = nemesis.injected()
    assert (freeze.pid, thaw.pids, again.pid) == (worker.pid, [worker.pid], worker.pid)
    assert thaw.begun_at >= thaw.scheduled_at >= freeze.done_at
    wait_for(lambda: process_state(worker.pid) == "T", timeout_s=5, interval_s=0.01, what="T")

    nemesis.cancel()  # the run stops: a frozen worker would never stop warm

    wait_for(lambda: process_state(worker.pid) != "T", timeout_s=5, interval_s=0.01, what="thaw")
    assert worker.alive()


@pytest.mark.faults
def test_thawing_a_lane_with_nothing_frozen_is_an_error(stack: FakeStack) -> None:
    faults = '[[faults]]\nat_s = 0.0\naction = "thaw-worker"\nlane = "a"\n'
    nemesis = Nemesis(stack, scenario(faults))  # type: ignore[arg-type]

    nemesis.start_lane("a")
    wait_for(nemesis.done, timeout_s=10, interval_s=0.05, what="the faults")

    (thaw,) = nemesis.injected()
    assert thaw.error == "RuntimeError: lane 'a' has no frozen worker to thaw"


@dataclass
class MockStack:
    """What the nemesis uses of a stack for API faults: the mock's URL."""

    mock_url: str
    lanes: dict[str, FakeLane] = field(default_factory=dict)


@pytest.mark.faults
@pytest.mark.parametrize(
    ("fault", "switched"),
    [
        ('action = "api-outage"\nanswer = { action = "reset" }', "failures"),
        ('action = "api-latency"\nlatency = { model = "fixed", value_s = 2.5 }', "latency"),
        ('action = "api-rate-limit"\nthroughput = { messages_per_second = 0.5 }', "throughput"),
    ],
)
def test_an_api_window_is_switched_on_then_back(mock: MockAPI, fault: str, switched: str) -> None:
    before = mock.get_behaviours()
    window_s = 1.0
    faults = f"[[faults]]\nat_s = 0.0\nduration_s = {window_s}\n{fault}\n"
    nemesis = Nemesis(MockStack(mock.url), scenario(faults))  # type: ignore[arg-type]

    nemesis.start_stack()
    wait_for(
        lambda: mock.get_behaviours()[switched] != before[switched],
        timeout_s=5,
        interval_s=0.02,
        what=f"{switched} switched on",
    )
    during = mock.get_behaviours()
    wait_for(nemesis.done, timeout_s=10, interval_s=0.05, what="the window to close")

    (entry,) = nemesis.injected()
    assert entry.lane is None
    assert entry.error is None, entry
    assert entry.done_at - entry.begun_at >= window_s
    assert mock.get_behaviours() == before, "switched back"
    if switched == "failures":
        (outage,) = during["failures"]["outages"]
        assert outage["answer"]["action"] == "reset"
        assert outage["duration_s"] == window_s
    elif switched == "latency":
        assert during["latency"]["default"] == {"model": "fixed", "value_s": 2.5}
    else:
        assert during["throughput"]["messages_per_second"] == 0.5


class FakeStore:
    """The lane's store as the nemesis reads it: worker events and the outbox."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.sent: list[int] = []

    def events(self) -> list[dict[str, object]]:
        return [{"event": "received", "message_id": m} for m in self.received]

    def outbox(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(seq=seq, state="sent") for seq in self.sent]


@pytest.mark.faults
def test_a_fault_on_a_trigger_fires_when_the_lane_gets_there(stack: FakeStack) -> None:
    """after_received counts distinct parts received; after_sent waits for part K sent."""
    store = FakeStore()
    stack.lanes["a"].store = store  # type: ignore[attr-defined]
    faults = '[[faults]]\nafter_received = 3\naction = "freeze-worker"\nlane = "a"\n'
    faults += '[[faults]]\nafter_sent = 2\naction = "thaw-worker"\nlane = "a"\n'
    nemesis = Nemesis(stack, scenario(faults))  # type: ignore[arg-type]
    nemesis.start_lane("a")

    store.received = ["x-000", "x-001", "x-001"]  # two parts, one received twice
    assert not wait_until(lambda: bool(nemesis.injected()), 0.3)
    store.received.append("x-002")
    wait_for(lambda: len(nemesis.injected()) == 1, timeout_s=5, interval_s=0.02, what="freeze")
    store.sent = [0, 1]
    assert not wait_until(lambda: len(nemesis.injected()) == 2, 0.3)
    store.sent.append(2)
    wait_for(nemesis.done, timeout_s=5, interval_s=0.02, what="thaw")

    freeze, thaw = nemesis.injected()
    assert (freeze.action, freeze.after_received) == ("freeze-worker", 3)
    assert (thaw.action, thaw.after_sent) == ("thaw-worker", 2)
    assert freeze.error is None
    assert thaw.error is None


@pytest.mark.faults
def test_a_trigger_that_never_fires_is_an_error_when_the_run_ends(stack: FakeStack) -> None:
    stack.lanes["a"].store = FakeStore()  # type: ignore[attr-defined]
    faults = '[[faults]]\nafter_received = 5\naction = "kill-worker"\nlane = "a"\n'
    faults += '[[faults]]\nat_s = 1\naction = "start-worker"\nlane = "a"\n'
    nemesis = Nemesis(stack, scenario(faults))  # type: ignore[arg-type]
    nemesis.start_lane("a")

    nemesis.cancel()
    nemesis.join(timeout_s=5)

    (missed,) = nemesis.injected()  # the start-worker after it never happens either
    assert missed.error == "after_received = 5 never fired: the lane's workers received 0 parts"
    assert stack.lanes["a"].workers[0].alive()


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """True as soon as `condition` holds; False if it did not within `timeout_s`."""
    try:
        wait_for(condition, timeout_s=timeout_s, interval_s=0.02, what="a condition")
    except DeadlineExceeded:
        return False
    return True


# A worker with two pool processes, as a prefork worker forks them.
POOL_WORKER = [
    sys.executable,
    "-c",
    "import subprocess, sys, time\n"
    "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])"
    " for _ in range(2)]\n"
    "print('worker ready', flush=True)\n"
    "time.sleep(60)\n",
]


class PoolStore:
    """Events of a pool process running part 1, and the outbox that names it."""

    def __init__(self, busy_pid: int) -> None:
        self.busy_pid = busy_pid

    def events(self) -> list[dict[str, object]]:
        return [{"event": "started", "pid": self.busy_pid, "at": 1.0, "message_id": "x-001"}]

    def outbox(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(message_id=f"x-00{seq}", seq=seq) for seq in range(3)]


def test_kill_pool_process_kills_the_busy_child_and_the_worker_lives_on() -> None:
    """SIGKILL the pool process running a part: the record names it, its worker and the
    part; the worker and its other pool process run on."""
    import psutil

    worker = start_server(POOL_WORKER, READY)
    try:
        children = [child.pid for child in psutil.Process(worker.pid).children()]
        idle, busy = sorted(children)
        lane = FakeLane("prefork", [worker])
        lane.store = PoolStore(busy)  # type: ignore[attr-defined]
        stack = SimpleNamespace(lanes={"prefork": lane})
        text = SCENARIO.replace('name = "a"\npool = "solo"', 'name = "prefork"\npool = "prefork"')
        faults = '[[faults]]\nat_s = 0\naction = "kill-pool-process"\nlane = "prefork"\n'
        nemesis = Nemesis(stack, parse_scenario(text + faults, "pool.toml"))  # type: ignore[arg-type]

        nemesis.start_lane("prefork")
        wait_for(nemesis.done, timeout_s=20, interval_s=0.05, what="the kill")

        (kill,) = nemesis.injected()
        assert kill.error is None, kill
        assert (kill.pid, kill.worker_pid, kill.part) == (busy, worker.pid, 1)
        wait_for(
            lambda: (
                busy not in [child.pid for child in psutil.Process(worker.pid).children()]
                or psutil.Process(busy).status() == psutil.STATUS_ZOMBIE
            ),
            timeout_s=5,
            interval_s=0.02,
            what="the busy child gone",
        )
        assert worker.alive()
        assert psutil.Process(idle).is_running()
    finally:
        worker.stop(grace_s=1.0)
