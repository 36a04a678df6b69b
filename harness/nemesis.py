"""The nemesis: a scenario's faults, injected on time while the run is followed.

Each lane's faults run in order on a thread of their own, and so do the faults on the
whole stack (broker, mock API), so a worker that takes three seconds to start (or a
warm shutdown that waits for a running task) on one lane never delays another lane's
fault, nor the polling that follows the run. A window (an API outage, a broker down)
is switched on, and switched back when it closes or when the run stops. Each fault
done (or attempted) is kept as a `FaultRecord`, for the history and results.json.
`check_broker` refuses, before anything starts, broker faults on a broker the harness
does not own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any, TypedDict

import psutil
import redis

from mock_meta_api.config import ErrorAnswer, Outage

from .fault_record import FaultRecord
from .mock_admin import MockAdmin
from .proxy import Mode
from .scenario import BROKER_ACTIONS, NET_ACTIONS, Fault, Scenario, ScenarioError
from .stack.backend import Lane, Stack, Worker

# Meta's answer while its API is down: HTTP 503, code 131016 ("service unavailable").
OUTAGE_ANSWER = ErrorAnswer(code=131016, http_status=503)
NET_MODES: dict[str, Mode] = {
    "net-delay": "delay",
    "net-reset": "reset",
    "net-blackhole": "blackhole",
}
TRIGGER_POLL_S = 0.05  # how often a trigger looks at the lane's store


class Outcome(TypedDict, total=False):
    """What a fault did, as its record keeps it (see `FaultRecord`)."""

    pid: int | None
    new_pid: int
    worker_pid: int
    part: int | None
    pids: list[int]
    exit_code: int | None
    down_s: float
    in_effect_from: float
    in_effect_until: float
    connections: int
    cancelled: bool
    error: str


def check_broker(scenario: Scenario, broker_url: str | None) -> None:
    """Broker faults restart the brokers the harness started (the embedded Valkey, its
    own RabbitMQ node): refused, before anything starts, on one it does not own."""
    broker_faults = sorted({f.action for f in scenario.stack_faults if f.action in BROKER_ACTIONS})
    if not broker_faults:
        return
    if broker_url is not None:
        raise ScenarioError(
            f"scenario {scenario.name!r}: {', '.join(broker_faults)} restart the embedded "
            "broker, which --broker-url replaces; run it without --broker-url"
        )
    elsewhere = [
        lane.name
        for lane in scenario.lanes
        if lane.broker == "redis" or (lane.broker == "rabbitmq" and lane.broker_url is not None)
    ]
    if elsewhere:
        raise ScenarioError(
            f"scenario {scenario.name!r}: {', '.join(broker_faults)} restart the brokers the "
            f"harness starts (the embedded Valkey, its own RabbitMQ node); lanes {elsewhere} "
            "run on a broker at a URL, which it would not touch: drop their broker_url "
            "(or give them broker = 'valkey'), or leave the broker faults out"
        )


def check_backend(scenario: Scenario, backend: str) -> None:
    """kill-pool-process finds a worker's pool processes among the host's processes: on the
    compose backend they are inside a container. Refused before anything starts (a fault
    that could only fail when it struck would leave a run that means nothing). The
    network faults act on either backend's proxies (the compose project's `proxy`
    service: `compose_proxies`), the broker faults on either backend's broker (the
    compose stack stops and starts its broker container)."""
    if backend == "local":
        return
    local_only = {"kill-pool-process"}
    found = sorted(
        {
            f"{f.action} ({f.lane or 'every lane'})"
            for f in scenario.faults
            if f.action in local_only
        }
    )
    if found:
        raise ScenarioError(
            f"scenario {scenario.name!r}: {', '.join(found)} acts on the local stack's "
            f"pool processes only, not on the {backend} backend; run it "
            "without --backend, or leave the fault out"
        )


def busy_pool_process(children: list[int], events: list[dict[str, Any]]) -> tuple[int, str | None]:
    """The pool process to kill, and the part it is running (None: it is idle).

    A pool process runs one task at a time: its last `started` event with no `finished`
    after it is the task it runs now. Of several busy, the one busy longest (the part
    surely under way); of none, the first child.
    """
    running: dict[int, dict[str, Any]] = {}
    for event in events:
        pid = event.get("pid")
        if event.get("event") == "started" and isinstance(pid, int):
            running[pid] = event
        elif event.get("event") == "finished" and isinstance(pid, int):
            running.pop(pid, None)
    busy = sorted((float(running[pid].get("at") or 0.0), pid) for pid in children if pid in running)
    if busy:
        pid = busy[0][1]
        message_id = running[pid].get("message_id")
        return pid, None if message_id is None else str(message_id)
    if not children:
        raise RuntimeError("the worker has no pool process")
    return min(children), None


def kill_pool_process(lane: Lane) -> Outcome:
    """SIGKILL one pool process of the lane's oldest running worker (see `busy_pool_process`);
    recorded with `worker_pid` (the worker, which lives on), `pid` (the child killed) and
    `part` (the seq of the part it ran; None: it was idle)."""
    worker = _oldest(lane)
    try:
        children = [child.pid for child in psutil.Process(worker.pid).children()]
    except psutil.NoSuchProcess:
        raise RuntimeError(f"lane {lane.name!r}: worker {worker.pid} is gone") from None
    if not children:
        raise RuntimeError(
            f"lane {lane.name!r}: worker {worker.pid} has no pool process (not prefork?)"
        )
    pid, message_id = busy_pool_process(children, lane.store.events())
    os.kill(pid, signal.SIGKILL)
    seqs = {part.message_id: part.seq for part in lane.store.outbox()}
    return {"worker_pid": worker.pid, "pid": pid, "part": seqs.get(message_id or "")}


def signal_worker(worker: Worker, signum: signal.Signals) -> None:
    """Signal the worker and its pool processes (it leads its own process group)."""
    os.killpg(worker.pid, signum)


def _oldest(lane: Lane) -> Worker:
    worker = lane.oldest_running_worker()
    if worker is None:
        raise RuntimeError(f"lane {lane.name!r} has no running worker")
    return worker


class Nemesis:
    """`start_lane(lane)` when a lane's requests are answered; `done()` once every fault
    of the lanes started has been injected.

    `injected()` lists the faults injected so far as `FaultRecord`s: when each was
    scheduled, began and was done (wall clock), the worker PID it acted on, its exit code,
    or the error that stopped it.
    """

    def __init__(self, stack: Stack, scenario: Scenario) -> None:
        self._stack = stack
        self._by_lane = {lane.name: scenario.faults_of(lane.name) for lane in scenario.lanes}
        self._on_stack = scenario.stack_faults
        # A trigger that has not fired by the time the run ends never will.
        self._last_s = scenario.flow.schedule_s + scenario.tolerances.missing_after_s
        self._frozen: dict[str, list[Worker]] = {}
        self._cancelled = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._record: list[FaultRecord] = []
        self._busy = 0  # faults begun and not done

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

    def start_stack(self) -> None:
        """Every lane's requests were answered: inject the stack's faults `at_s` after now."""
        if not self._on_stack or self._cancelled.is_set():
            return
        thread = threading.Thread(
            target=self._run_lane, args=(None, self._on_stack, time.time()), daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def done(self) -> bool:
        return not any(thread.is_alive() for thread in self._threads)

    def busy(self) -> bool:
        """A fault has begun and is not done yet: a worker starting, a window open."""
        with self._lock:
            return self._busy > 0

    def cancel(self) -> None:
        """Inject nothing more and close any open window; a fault already begun finishes
        (the stack's stop ends it). Frozen workers are thawed, so they can stop warm."""
        self._cancelled.set()
        with self._lock:
            frozen = [worker for workers in self._frozen.values() for worker in workers]
            self._frozen.clear()
        for worker in frozen:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                signal_worker(worker, signal.SIGCONT)

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def injected(self) -> list[FaultRecord]:
        """The faults injected so far, in the order they began."""
        with self._lock:
            return sorted(self._record, key=lambda record: record.begun_at or 0.0)

    def _run_lane(self, name: str | None, faults: list[Fault], since: float) -> None:
        """One lane's faults in order (`name` None: the stack's)."""
        for fault in faults:
            asked = fault.model_dump(mode="json", exclude_none=True) | {
                "grace_s": fault.grace_s,
                "lane": name,
            }
            if fault.at_s is not None:
                if self._cancelled.wait(max(0.0, since + fault.at_s - time.time())):
                    return
                scheduled_at = since + fault.at_s
            else:
                assert name is not None  # the scenario times the stack's faults by at_s only
                fired, missed = self._wait_for_trigger(self._stack.lanes[name], fault, since)
                if fired is None:  # the run is over and the trigger never came
                    self._keep(asked | {"begun_at": time.time(), "error": missed})
                    return  # the faults after it wait for it: none of them happens
                scheduled_at = fired
            begun_at = time.time()
            with self._lock:
                self._busy += 1
            outcome: Outcome
            try:
                if name is None:
                    outcome = self._inject_stack(fault)
                else:
                    outcome = self._inject(self._stack.lanes[name], fault)
            except Exception as exc:  # the run goes on; the record says what went wrong
                if self._cancelled.is_set():  # the stack is stopping: nothing failed
                    outcome = {"cancelled": True}
                else:  # one line: a worker that did not start carries its whole output
                    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    outcome = {"error": f"{type(exc).__name__}: {first_line}"}
            finally:
                with self._lock:
                    self._busy -= 1
            self._keep(asked | dict(outcome) | {"scheduled_at": scheduled_at, "begun_at": begun_at})

    def _keep(self, entry: dict[str, Any]) -> None:
        record = FaultRecord.model_validate(entry | {"done_at": time.time()})
        with self._lock:
            self._record.append(record)

    def _wait_for_trigger(
        self, lane: Lane, fault: Fault, since: float
    ) -> tuple[float | None, str | None]:
        """(when the trigger fired, None), or (None, why it never did) once the run is
        over (its last moment passed, or it stopped first). Polls the lane's store."""
        deadline = since + self._last_s
        target = 1 if fault.after_sent is not None else fault.after_received or 0
        seen = 0
        while time.time() < deadline:
            with contextlib.suppress(redis.RedisError):  # the broker down (a fault): again
                seen = self._progress(lane, fault)
                if seen >= target:
                    return time.time(), None
            if self._cancelled.wait(TRIGGER_POLL_S):
                break
        if fault.after_sent is not None:
            return (
                None,
                f"{fault.trigger} never fired: the API never accepted part {fault.after_sent}",
            )
        return None, f"{fault.trigger} never fired: the lane's workers received {seen} parts"

    @staticmethod
    def _progress(lane: Lane, fault: Fault) -> int:
        """Parts the lane's workers received; or, for after_sent, 1 once part K was sent."""
        if fault.after_sent is not None:
            sent = any(
                part.seq == fault.after_sent and part.state == "sent"
                for part in lane.store.outbox()
            )
            return int(sent)
        received = {
            event.get("message_id")
            for event in lane.store.events()
            if event.get("event") == "received"
        }
        return len(received - {None})

    def _inject(self, lane: Lane, fault: Fault) -> Outcome:
        if fault.action in NET_ACTIONS:
            return self._net_window(lane, fault)
        if fault.action == "start-worker":
            return {"pid": self._stack.start_worker(lane.name).pid}
        if fault.action == "thaw-worker":
            with self._lock:
                frozen = self._frozen.pop(lane.name, [])
            if not frozen:
                raise RuntimeError(f"lane {lane.name!r} has no frozen worker to thaw")
            for worker in frozen:
                signal_worker(worker, signal.SIGCONT)
            return {"pids": [worker.pid for worker in frozen]}
        if fault.action == "freeze-worker":
            worker = self._oldest_unfrozen(lane)
            signal_worker(worker, signal.SIGSTOP)
            with self._lock:
                self._frozen.setdefault(lane.name, []).append(worker)
            return {"pid": worker.pid}
        if fault.action == "restart-worker":
            return self._restart_worker(lane, fault)
        if fault.action == "kill-pool-process":
            return kill_pool_process(lane)
        worker = _oldest(lane)
        if fault.action == "kill-worker":
            worker.kill()  # as the OOM killer or a stop timeout would
        else:
            worker.stop(grace_s=fault.grace)
        return {"pid": worker.pid, "exit_code": worker.returncode}

    def _restart_worker(self, lane: Lane, fault: Fault) -> Outcome:
        """Stop the lane's running worker warm, if one still runs, then start a new one;
        recorded as `restart-broker` is: `pid` (the old one's, None if none ran), `new_pid`.

        The old one goes first: two live workers with a short visibility timeout each
        send the parts the other holds (kombu #337), which is not the restart measured.
        """
        old = lane.oldest_running_worker()
        exit_code = None if old is None else old.stop(grace_s=fault.grace)
        new = self._stack.start_worker(lane.name)
        pid = None if old is None else old.pid
        return {"pid": pid, "exit_code": exit_code, "new_pid": new.pid}

    def _oldest_unfrozen(self, lane: Lane) -> Worker:
        with self._lock:
            frozen = {worker.pid for worker in self._frozen.get(lane.name, [])}
        for worker in lane.workers:
            if worker.alive() and worker.pid not in frozen:
                return worker
        raise RuntimeError(f"lane {lane.name!r} has no running worker that is not frozen")

    def _net_window(self, lane: Lane, fault: Fault) -> Outcome:
        """Delay, cut or black-hole the lane's proxy to its broker or API for the window;
        or leave its open connections half-open, for good."""
        assert fault.target is not None
        proxy = getattr(lane, "proxies", {}).get(fault.target)  # Proxy, or RemoteProxy
        if proxy is None:
            raise RuntimeError(f"lane {lane.name!r} has no proxy to the {fault.target}")
        if fault.action == "net-half-open":
            return {"connections": proxy.half_open()}
        assert fault.duration_s is not None
        mode = NET_MODES[fault.action]
        proxy.switch(mode, fault.delay_s or 0.0)
        in_effect_from = time.time()  # the switch answered: in force (on compose, an HTTP call)
        try:
            self._cancelled.wait(fault.duration_s)
        finally:
            in_effect_until = time.time()
            proxy.switch(None)
        return {
            "connections": proxy.connections,
            "in_effect_from": in_effect_from,
            "in_effect_until": in_effect_until,
        }

    def _inject_stack(self, fault: Fault) -> Outcome:
        if fault.action in ("restart-broker", "stop-broker"):
            keep = fault.keep_data is not False
            pid = self._stack.stop_broker(keep_data=keep)
            down_at = time.time()
            if fault.duration_s is not None:  # bounded; the stack's stop ends it early
                self._cancelled.wait(fault.duration_s)
            new_pid = self._stack.start_broker()
            return {"pid": pid, "new_pid": new_pid, "down_s": time.time() - down_at}
        return self._api_window(fault)

    def _api_window(self, fault: Fault) -> Outcome:
        """Switch the mock's behaviours for `duration_s`, then back to what they were."""
        assert fault.duration_s is not None
        with MockAdmin(self._stack.mock_url) as admin:
            before = admin.get_behaviours()
            sections: dict[str, Any] = {}
            if fault.action == "api-outage":
                window = Outage(duration_s=fault.duration_s, answer=fault.answer or OUTAGE_ANSWER)
                sections["failures"] = before["failures"] | {
                    "outages": [window.model_dump(mode="json")]
                }
            elif fault.action == "api-latency":
                assert fault.latency is not None
                sections["latency"] = before["latency"] | {
                    "default": fault.latency.model_dump(mode="json"),
                    "per_phone_number": {},
                }
            else:
                if fault.throughput is not None:
                    sections["throughput"] = fault.throughput.model_dump(mode="json")
                if fault.pair_rate is not None:
                    sections["pair_rate"] = fault.pair_rate.model_dump(mode="json")
            admin.patch_behaviours(sections)
            in_effect_from = time.time()
            try:
                self._cancelled.wait(fault.duration_s)
            finally:  # switched back even when the run stops: the mock stops next anyway
                in_effect_until = time.time()
                admin.patch_behaviours({name: before[name] for name in sections})
        return {"in_effect_from": in_effect_from, "in_effect_until": in_effect_until}
