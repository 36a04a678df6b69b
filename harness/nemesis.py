"""The nemesis: a scenario's faults, injected on time while the run is followed.

Each lane's faults run in order on a thread of their own, so a worker that takes three
seconds to start (or a warm shutdown that waits for a running task) on one lane never
delays another lane's fault, nor the polling that follows the run.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .scenario import Fault, Scenario
from .stack.backend import Lane, Stack, Worker


def _oldest(lane: Lane) -> Worker:
    worker = lane.oldest_running_worker()
    if worker is None:
        raise RuntimeError(f"lane {lane.name!r} has no running worker")
    return worker


class Nemesis:
    """`start_lane(lane)` when a lane's requests are answered; `done()` once every fault
    of the lanes started has been injected.

    `injected()` lists the faults injected so far, each with when it was scheduled, began
    and was done (wall clock), the worker PID it acted on, its exit code, or the error
    that stopped it.
    """

    def __init__(self, stack: Stack, scenario: Scenario) -> None:
        self._stack = stack
        self._by_lane = {lane.name: scenario.faults_of(lane.name) for lane in scenario.lanes}
        self._cancelled = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._record: list[dict[str, Any]] = []

    def start_lane(self, lane: str) -> None:
        """The lane's requests were just answered: inject its faults `at_s` after now."""
        faults = self._by_lane.get(lane)
        if not faults or self._cancelled.is_set():
            return
        thread = threading.Thread(
            target=self._run_lane, args=(lane, faults, time.time()), daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def done(self) -> bool:
        return not any(thread.is_alive() for thread in self._threads)

    def cancel(self) -> None:
        """Inject nothing more; a fault already begun finishes (the stack's stop ends it)."""
        self._cancelled.set()

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def injected(self) -> list[dict[str, Any]]:
        """The faults injected so far, in the order they began."""
        with self._lock:
            return sorted(self._record, key=lambda entry: entry["begun_at"])

    def _run_lane(self, name: str, faults: list[Fault], since: float) -> None:
        for fault in faults:
            if self._cancelled.wait(max(0.0, since + fault.at_s - time.time())):
                return
            entry: dict[str, Any] = fault.model_dump() | {
                "lane": name,
                "scheduled_at": since + fault.at_s,
                "begun_at": time.time(),
            }
            try:
                entry |= self._inject(self._stack.lanes[name], fault)
            except Exception as exc:  # the run goes on; the record says what went wrong
                if self._cancelled.is_set():  # the stack is stopping: nothing failed
                    entry["cancelled"] = True
                else:  # one line: a worker that did not start carries its whole output
                    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    entry["error"] = f"{type(exc).__name__}: {first_line}"
            entry["done_at"] = time.time()
            with self._lock:
                self._record.append(entry)

    def _inject(self, lane: Lane, fault: Fault) -> dict[str, Any]:
        if fault.action == "start-worker":
            return {"pid": self._stack.start_worker(lane.name).pid}
        worker = _oldest(lane)
        if fault.action == "kill-worker":
            worker.kill()  # as the OOM killer or a stop timeout would
        else:
            worker.stop(grace_s=fault.grace)
        return {"pid": worker.pid, "exit_code": worker.returncode}
