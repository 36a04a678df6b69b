"""Run a scenario, as its conductor: the stack up (`stack_plan`, `stack`), one "fixtures"
request per recipient and lane sent (`workload`) or a load driven (`load`), faults on time
(`nemesis`), the evidence followed into histories (`evidence`) until every part is settled
(or missing), judged (`verdict`), the run directory written (`results`).

`run_scenario` is the Python API; the CLI and the regression suite both use it. Every
lane runs side by side on one stack, so a matrix takes one schedule, not one per pool.
However the run ends (done, Ctrl-C, SIGTERM, an error), every process is stopped by
PID and the results gathered so far are written, marked incomplete if cut short.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .checks import LaneVerdict
from .evidence import Collector, Evidence
from .history import History, MessageHistory, is_settled
from .load.driver import LoadDriver, LoadPlan
from .load.figures import expected_requests, load_result
from .nemesis import Nemesis, check_backend, check_broker
from .results import (
    HISTORY,
    LaneResult,
    Results,
    harness_version,
    versions,
    write_atomic,
    write_jsonl,
    write_results,
)
from .scenario import Scenario
from .signals import deferred
from .stack import make_stack
from .stack.backend import Backend, Stack
from .stack.prepare import prepare
from .stack_plan import stack_spec
from .verdict import judge, lane_result, run_as_expected
from .waiting import wait_for
from .workload import send_fixtures

# Besides its own names, where callers have always found them: the stack a scenario asks
# for, the broker check and the sender.
__all__ = [
    "Progress",
    "RunOutcome",
    "check_broker",
    "run_scenario",
    "send_fixtures",
    "stack_spec",
]

POLL_S = 0.25
MAX_POLL_S = 5.0  # however long a reading took (a timed-out one: 10 s), poll again by then
# Locust's own start (imports) and shutdown (statistics written), beyond the load's time.
LOAD_SLACK_S = 20.0


@dataclass
class Progress:
    """A snapshot while the run goes on: per lane, the verdict so far."""

    scenario: Scenario
    elapsed_s: float
    deadline_s: float
    verdicts: dict[str, LaneVerdict]
    settled: dict[str, bool]


@dataclass
class RunOutcome:
    """What a run found; `results` is what results.json holds."""

    run_dir: Path
    scenario: Scenario
    results: Results
    history: dict[str, list[MessageHistory]]
    verdicts: dict[str, LaneVerdict]

    def lane(self, name: str) -> LaneResult:
        return next(lane for lane in self.results.lanes if lane.lane == name)


class _Run:
    """One run's state, from the stack's start to the results written last."""

    def __init__(
        self, scenario: Scenario, stack: Stack, backend: Backend, command: str | None
    ) -> None:
        self.scenario = scenario
        self.stack = stack
        self.backend = backend
        self.command = command
        self.started_at = time.time()
        self.stack_start_s: float | None = None
        self.trigger_at: float | None = None
        self.triggered_s = 0.0  # how long sending the requests took
        self.verdict_at: float | None = None
        self.trigger_errors: list[str] = []
        self.nemesis = Nemesis(stack, scenario)
        self.broker_version: str | None = None
        self.collector: Collector | None = None
        self.evidence = Evidence()
        self.complete = False
        self.load: LoadDriver | None = None
        self.load_exit_code: int | None = None

    def start(self, on_started: Callable[[Stack], None] | None) -> None:
        self.stack.start()
        self.stack_start_s = time.time() - self.started_at
        self.broker_version = ", ".join(sorted(set(self.stack.broker_versions.values()))) or None
        if on_started is not None:
            on_started(self.stack)
        self.collector = Collector(self.stack, self.scenario.flow.spacing_s)

    def trigger(self) -> None:
        """Re-apply the mock's failures (outage windows count from now), then send."""
        assert self.collector is not None
        self.collector.mock.patch_behaviours({"failures": self.scenario.api["failures"]})
        if self.scenario.load is not None:
            plan = LoadPlan.for_stack(self.scenario, self.stack)
            self.load = LoadDriver(plan, self.stack.run_dir)
            self.load.start()
            self.trigger_at = time.time()  # faults count from the load's start
            for lane in self.stack.lanes:
                self.nemesis.start_lane(lane)
            self.nemesis.start_stack()
            return
        self.trigger_at = time.time()
        self.trigger_errors = send_fixtures(  # each lane's faults count from its answers
            self.stack, self.scenario.flow.recipients, self.nemesis.start_lane
        )
        self.nemesis.start_stack()  # the stack's faults count from every lane's answers
        self.triggered_s = time.time() - self.trigger_at

    def requests(self) -> dict[str, list[str]] | None:
        """Under load, each lane's requests so far (None: one request per recipient)."""
        if self.load is None:
            return None
        queued = {
            name: {m.correlation_id for m in history}
            for name, history in self.evidence.history.items()
        }
        lanes: dict[str, set[str]] = {name: set() for name in self.stack.lanes}
        return expected_requests(self.load.requests(), lanes | queued)

    def follow(self, on_progress: Callable[[Progress], None] | None) -> None:
        """Poll until every lane settles (and every fault is done) or the deadline passes.

        The deadline counts from the last request sent, so no part is missing before its
        due time plus `missing_after_s`, however long the requests took to send; and from
        the end of a fault still being done (a worker starting on a busy machine takes
        seconds at any time scale), so a part it holds up is judged late, not missing.
        """
        assert self.collector is not None
        assert self.trigger_at is not None
        scenario = self.scenario
        deadline_s = (
            self.triggered_s + scenario.flow.schedule_s + scenario.tolerances.missing_after_s
        )
        if scenario.load is not None:
            deadline_s += scenario.load.run_time_s + LOAD_SLACK_S
        read_s = 0.0  # how long the last reading took

        def reading() -> bool:
            """Read the evidence once, say the progress; True once following can stop."""
            nonlocal deadline_s, read_s
            elapsed = time.time() - self.trigger_at
            began = time.monotonic()
            if self.nemesis.busy():  # a worker still starting, a window still open: the
                # parts it holds up are not missing until missing_after_s after it is done
                deadline_s = max(deadline_s, elapsed + scenario.tolerances.missing_after_s)
            self.evidence = self.collector.collect()
            requests = self.requests()
            settled = {
                name: is_settled(
                    history,
                    scenario.expected_messages
                    if requests is None
                    else len(requests.get(name, [])) * scenario.flow.messages,
                )
                for name, history in self.evidence.history.items()
            }
            load_done = self.load is None or self.load.finished()
            if on_progress is not None:
                verdicts = judge(scenario, self.evidence.history, requests)
                on_progress(Progress(scenario, elapsed, deadline_s, verdicts, settled))
            read_s = time.monotonic() - began
            return (load_done and all(settled.values()) and self.nemesis.done()) or (
                elapsed >= deadline_s
            )

        def next_reading_in() -> float:
            """Following takes at most a fifth of a core: under a load, each reading is
            longer (more parts), and reading as often would take the machine from the
            stack it measures. Never past the deadline."""
            left = deadline_s - (time.time() - self.trigger_at)
            return max(0.0, min(max(POLL_S, 4 * read_s), MAX_POLL_S, left))

        # The deadline is the run's own (it moves while a fault is being done): reaching it
        # ends the following, and the parts not there by then are judged missing.
        wait_for(reading, timeout_s=math.inf, interval_s=next_reading_in, what="the run's end")
        if self.collector.stale:  # no verdict on a journal that could not be read
            self.evidence = self.collector.collect(strict=True)
        self.verdict_at = time.time()
        self.complete = True

    def last_look(self) -> None:
        """Cut short, with the stack still up: collect once more, best effort."""
        if self.collector is not None:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                self.evidence = self.collector.collect()

    def stop(self) -> None:
        """Locust, then the stack; a signal meanwhile is raised once all of it is stopped."""
        with deferred():
            self.nemesis.cancel()
            try:
                if self.load is not None:  # before the stack: its last figures need the mock
                    self.load_exit_code = self.load.stop()
            finally:
                try:
                    if self.collector is not None:
                        self.collector.close()
                finally:
                    self.stack.stop()
                    self.nemesis.join(timeout_s=5.0)  # a fault begun ends with the stack

    def results(self) -> tuple[Results, dict[str, LaneVerdict]]:
        requests = self.requests()
        verdicts = judge(self.scenario, self.evidence.history, requests)
        faults = self.nemesis.injected()
        evidence = self.evidence
        lanes = [
            lane_result(
                verdict,
                self.scenario,
                evidence.concurrency(name),
                self.stack.broker_versions.get(name),
                evidence.worker_versions(name),
                self.backend,
            )
            for name, verdict in verdicts.items()
        ]
        load = None
        if self.load is not None and self.scenario.load is not None and requests is not None:
            load = load_result(
                self.scenario.load,
                self.load.requests(),
                requests,
                self.load.summary(),
                self.load_exit_code,
                self.trigger_at or self.started_at,
            )
        results = Results(
            harness_version=harness_version(),
            command=self.command,
            scenario=self.scenario.name,
            description=self.scenario.description,
            time_scale=self.scenario.time_scale,
            complete=self.complete,
            as_expected=run_as_expected(self.complete, lanes, faults, load),
            started_at=self.started_at,
            finished_at=time.time(),
            stack_start_s=self.stack_start_s,
            trigger_at=self.trigger_at,
            verdict_at=self.verdict_at,
            versions=versions(self.broker_version),
            lanes=lanes,
            trigger_errors=self.trigger_errors,
            faults=faults,
            scenario_definition=self.scenario.model_dump(mode="json"),
            load=load,
        )
        return results, verdicts


def run_scenario(
    scenario: Scenario,
    run_dir: Path,
    *,
    broker_url: str | None = None,
    source_text: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_started: Callable[[Stack], None] | None = None,
    backend: Backend = "local",
    command: str | None = None,
) -> RunOutcome:
    """Run a scaled scenario (see `Scenario.scaled`) and write its run directory.

    `source_text` is the scenario file, kept verbatim as scenario.toml. `backend` brings
    the stack up as local processes or as compose containers. A KeyboardInterrupt
    (Ctrl-C, or SIGTERM under `signals.orderly_shutdown`) stops the run; the partial results
    are written before it propagates. A lane whose broker does not answer, or whose
    versions cannot be installed, raises LaneError before anything is started or written
    (a lane the compose backend cannot run: StackError). `command` is the command line
    that asked for the run, kept in results.json so a report says how it was made.
    """
    check_broker(scenario, broker_url)
    check_backend(scenario, backend)
    spec = stack_spec(scenario, broker_url)
    stack = make_stack(backend, prepare(spec) if backend == "local" else spec, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if source_text is not None:
        write_atomic(run_dir / "scenario.toml", source_text)
    run = _Run(scenario, stack, backend, command)
    try:
        run.start(on_started)
        run.trigger()
        run.follow(on_progress)
    except BaseException:
        run.last_look()
        raise
    finally:
        try:
            run.stop()
        finally:
            with deferred():  # a signal now would leave no results.json
                results, verdicts = run.results()
                _write_run(run_dir, results, run.evidence)
    return RunOutcome(run_dir, scenario, results, run.evidence.history, verdicts)


def _write_run(run_dir: Path, results: Results, evidence: Evidence) -> None:
    """history.jsonl (messages, then faults), the raw journal and events, then results.json
    (written last)."""
    history = History(messages=evidence.history, faults=results.faults)
    write_jsonl(run_dir / HISTORY, history.lines())
    write_jsonl(run_dir / "journal.jsonl", evidence.journal)
    write_jsonl(run_dir / "events.jsonl", evidence.event_rows())
    write_results(run_dir, results)
