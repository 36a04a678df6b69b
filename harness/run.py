"""Run a scenario: stack up, one "fixtures" request per recipient and lane, follow the
history until every part is settled (or missing), judge, write the run directory.

`run_scenario` is the Python API; the CLI and the regression suite both use it. Every
lane runs side by side on one stack, so a matrix takes one schedule, not one per pool.
However the run ends (done, Ctrl-C, SIGTERM, an error), every process is stopped by
PID and the results gathered so far are written, marked incomplete if cut short.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from .bot.flow import correlation_for
from .bot.store import OutboxRecord
from .checks import LaneVerdict
from .external_history import SentRequest, build_external_history
from .history import MessageHistory, build_history
from .load.driver import LoadDriver, LoadPlan
from .load.figures import expected_requests, load_result
from .load.lanes import LoadLane
from .mock_admin import MockAdmin
from .nemesis import Nemesis
from .results import (
    HISTORY,
    LaneResult,
    Results,
    harness_version,
    judge,
    lane_result,
    run_as_expected,
    versions,
    write_atomic,
    write_jsonl,
    write_results,
)
from .scenario import BROKER_ACTIONS, Scenario, ScenarioError
from .signals import deferred
from .stack import LaneSpec, StackSpec, make_stack
from .stack.backend import Backend, Lane, Stack
from .stack.external import ExternalLaneError, last_lines
from .stack.prepare import prepare
from .workload import inbound_text, new_inbound_id, post_inbound

POLL_S = 0.25
MAX_POLL_S = 5.0  # however long a reading took (a timed-out one: 10 s), poll again by then
# The last reading before a verdict: a mock busy with a load's backlog gets this long.
STRICT_READ_S = 60.0
# Locust's own start (imports) and shutdown (statistics written), beyond the load's time.
LOAD_SLACK_S = 20.0


def stack_spec(scenario: Scenario, broker_url: str | None = None) -> StackSpec:
    """The local stack a (scaled) scenario runs on: one lane per scenario lane."""
    return StackSpec(
        lanes=[
            LaneSpec(
                name=lane.name,
                pool=lane.pool,
                concurrency=lane.concurrency,
                pool_from_settings=lane.pool_set_by == "settings",
                env=lane.env,
                broker=lane.broker,
                broker_url=lane.broker_url,
                pins=lane.pins,
                external=lane.external,
            )
            for lane in scenario.lanes
        ],
        broker_url=broker_url,
        bot_env=scenario.env,
        mock_behaviours=scenario.api,
        rabbitmq=scenario.rabbitmq,
        proxied=scenario.proxied,
    )


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


@dataclass
class _Sources:
    """The evidence as last read (the mock's journal, each lane's worker events) and the
    history built from it with each lane's outbox."""

    journal: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    history: dict[str, list[MessageHistory]] = field(default_factory=dict)


class _Collector:
    """Reads each lane's store and the journal (incrementally) into histories.

    What the store held once is kept: a broker restarted empty (a fault) loses the bot's
    outbox and events with the queue, and the evidence of what happened before must not
    go with them. While the broker is down, the last reading stands.
    """

    def __init__(self, stack: Stack, spacing_s: float) -> None:
        self.stack = stack
        self.spacing_s = spacing_s
        self.mock = MockAdmin(stack.mock_url)
        self.sources = _Sources()
        # Only a lane of one's own is told apart by the texts sent; the replica's parts
        # carry their id, and a reply's texts are kilobytes each, re-read every poll.
        self.stale = False  # the last journal read timed out
        self.bodies = any(lane.task_events is not None for lane in stack.lanes.values())
        self._outbox: dict[str, dict[str, OutboxRecord]] = {name: {} for name in stack.lanes}
        self._events: dict[str, dict[bytes, dict[str, Any]]] = {name: {} for name in stack.lanes}

    def _read_stores(self) -> None:
        """Each replica lane's outbox and events (an external lane has no store)."""
        for name, lane in self.stack.lanes.items():
            if lane.task_events is not None:
                continue
            outbox, events = lane.store.outbox(), lane.store.events()
            self._outbox[name].update((record.message_id, record) for record in outbox)
            self._events[name].update((orjson.dumps(event), event) for event in events)

    def collect(self, strict: bool = False) -> _Sources:
        """Outbox and events first, then the journal: a part the outbox calls sent was
        answered by the mock before the bot wrote that, so its journal entry is read too.

        An external lane has no outbox: Celery's task events stand in for its events.
        A journal read that times out leaves the last reading (`stale`); `strict`, it is
        given longer, and raises if even that is not enough."""
        lanes = self.stack.lanes
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            self._read_stores()  # the broker down or loading (a fault): keep the last reading
        outboxes = {name: list(self._outbox[name].values()) for name in lanes}
        events = {name: list(self._events[name].values()) for name in lanes}
        events |= {
            name: lane.task_events.snapshot()
            for name, lane in lanes.items()
            if lane.task_events is not None
        }
        # Entries are completed in place when the mock answers: re-read from the first open one.
        journal = self.sources.journal
        done = next((i for i, e in enumerate(journal) if e["responded_at"] is None), len(journal))
        after = journal[done - 1]["seq"] if done else 0
        try:
            timeout = STRICT_READ_S if strict else None
            page = self.mock.journal(timeout, after_seq=after, body=self.bodies)
            journal = journal[:done] + page
            self.stale = False
        except httpx.TimeoutException:  # a mock saturated by a load: read it again later
            if strict:
                raise
            self.stale = True
        history: dict[str, list[MessageHistory]] = {}
        for name, lane in lanes.items():
            sent = [e for e in journal if e.get("phone_number_id") == lane.phone_number_id]
            if lane.task_events is None:
                history[name] = build_history(name, outboxes[name], events[name], sent)
            else:
                history[name] = self._external(lane, events[name], sent)
        self.sources = _Sources(journal=journal, events=events, history=history)
        return self.sources

    def _external(
        self, lane: Lane, events: list[dict[str, Any]], sent: list[dict[str, Any]]
    ) -> list[MessageHistory]:
        """A lane of one's own: its parts from the journal and Celery's task events."""
        assert lane.spec.external is not None
        found = build_external_history(
            lane.name,
            lane.spec.external,
            [SentRequest(*request) for request in lane.requests],
            events,
            sent,
            self.spacing_s,
        )
        if found.unmatched and not any(m.api_requests for m in found.history):
            worker = lane.oldest_running_worker() or lane.worker
            raise ExternalLaneError(
                f"lane {lane.name}: part_regex {lane.spec.external.part_regex!r} matches none "
                f"of the {len(found.unmatched)} texts sent (first: {found.unmatched[0]!r}); "
                f"the worker's last lines:\n{last_lines(worker.output)}"
            )
        return found.history

    def close(self) -> None:
        self.mock.close()


def _settled(history: list[MessageHistory], expected: int) -> bool:
    """Every part queued, and each sent or failed for good."""
    return len(history) >= expected and all(m.status in ("sent", "failed") for m in history)


def send_fixtures(
    stack: Stack,
    recipients: int = 1,
    on_answered: Callable[[str], None] | None = None,
) -> list[str]:
    """One signed "fixtures" request per recipient and lane; the errors, if any.

    Lanes are sent to one after another: each lane's schedule counts from its own
    requests, and queuing every lane at once on a small machine would make part 0 late.
    `on_answered(lane)` is called as soon as a lane's requests are answered.
    """
    errors: list[str] = []
    with httpx.Client(timeout=10) as client:
        for lane in stack.lanes.values():
            errors += _send_lane(client, lane, recipients)
            if on_answered is not None:
                on_answered(lane.name)
    return errors


def _send_lane(client: httpx.Client, lane: Lane, recipients: int) -> list[str]:
    errors: list[str] = []
    external = lane.spec.external
    keyword = external.keyword if external is not None else lane.settings.fixtures_keyword
    for n in range(recipients):
        inbound_id = new_inbound_id()
        payload = inbound_text(
            phone_number_id=lane.phone_number_id,
            sender=lane.recipient(n),
            text=keyword,
            message_id=inbound_id,
        )
        # An external lane's schedule counts from here: its parts are due seq * spacing later.
        lane.requests.append((correlation_for(inbound_id), lane.recipient(n), time.time()))
        try:
            answer = post_inbound(
                client, lane.webhook_url, payload, lane.settings.whatsapp_app_secret
            )
        except httpx.HTTPError as exc:
            errors.append(f"{lane.name}: request {correlation_for(inbound_id)}: {exc}")
            continue
        if answer.status_code != 200:
            errors.append(
                f"{lane.name}: the webhook answered {answer.status_code} "
                f"to request {correlation_for(inbound_id)}"
            )
    return errors


def load_plan(scenario: Scenario, stack: Stack) -> LoadPlan:
    """Every lane's webhook under the scenario's [load], judged by its own flow."""
    assert scenario.load is not None
    first = next(iter(stack.lanes.values()))
    return LoadPlan(
        load=scenario.load,
        lanes=[
            LoadLane(lane.name, lane.phone_number_id, lane.webhook_url)
            for lane in stack.lanes.values()
        ],
        mock_url=stack.mock_url,
        parts=scenario.flow.messages,
        spacing_s=scenario.flow.spacing_s,
        missing_grace_s=scenario.tolerances.missing_after_s,
        app_secret=first.settings.whatsapp_app_secret,
        fixtures_keyword=first.settings.fixtures_keyword,
    )


def _concurrency(events: list[dict[str, Any]]) -> int | None:
    """As the worker reported it; a solo worker runs one task at a time, whatever it was told."""
    ready = [e for e in events if e.get("event") == "worker_ready"]
    if not ready:
        return None
    return 1 if ready[-1].get("pool") == "solo" else ready[-1].get("concurrency")


def _worker_versions(events: list[dict[str, Any]]) -> dict[str, str]:
    """Python, Celery, kombu, ... as the lane's (first) worker reported them."""
    ready = [e for e in events if e.get("event") == "worker_ready" and e.get("versions")]
    return dict(ready[0]["versions"]) if ready else {}


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
        self.collector: _Collector | None = None
        self.sources = _Sources()
        self.complete = False
        self.load: LoadDriver | None = None
        self.load_exit_code: int | None = None

    def start(self, on_started: Callable[[Stack], None] | None) -> None:
        self.stack.start()
        self.stack_start_s = time.time() - self.started_at
        self.broker_version = ", ".join(sorted(set(self.stack.broker_versions.values()))) or None
        if on_started is not None:
            on_started(self.stack)
        self.collector = _Collector(self.stack, self.scenario.flow.spacing_s)

    def trigger(self) -> None:
        """Re-apply the mock's failures (outage windows count from now), then send."""
        assert self.collector is not None
        self.collector.mock.patch_behaviours({"failures": self.scenario.api["failures"]})
        if self.scenario.load is not None:
            self.load = LoadDriver(load_plan(self.scenario, self.stack), self.stack.run_dir)
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
            for name, history in self.sources.history.items()
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
        while True:
            elapsed = time.time() - self.trigger_at
            began = time.monotonic()
            if self.nemesis.busy():  # a worker still starting, a window still open: the
                # parts it holds up are not missing until missing_after_s after it is done
                deadline_s = max(deadline_s, elapsed + scenario.tolerances.missing_after_s)
            self.sources = self.collector.collect()
            requests = self.requests()
            settled = {
                name: _settled(
                    history,
                    scenario.expected_messages
                    if requests is None
                    else len(requests.get(name, [])) * scenario.flow.messages,
                )
                for name, history in self.sources.history.items()
            }
            load_done = self.load is None or self.load.finished()
            if on_progress is not None:
                verdicts = judge(scenario, self.sources.history, requests)
                on_progress(Progress(scenario, elapsed, deadline_s, verdicts, settled))
            if (load_done and all(settled.values()) and self.nemesis.done()) or (
                elapsed >= deadline_s
            ):
                break
            elapsed = time.time() - self.trigger_at
            # Following takes at most a fifth of a core: under a load, each reading is
            # longer (more parts), and reading as often would take the machine from the
            # stack it measures.
            pause = min(max(POLL_S, 4 * (time.monotonic() - began)), MAX_POLL_S)
            time.sleep(max(0.0, min(pause, deadline_s - elapsed)))
        if self.collector.stale:  # no verdict on a journal that could not be read
            self.sources = self.collector.collect(strict=True)
        self.verdict_at = time.time()
        self.complete = True

    def last_look(self) -> None:
        """Cut short, with the stack still up: collect once more, best effort."""
        if self.collector is not None:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                self.sources = self.collector.collect()

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
        verdicts = judge(self.scenario, self.sources.history, requests)
        faults = self.nemesis.injected()
        events = self.sources.events
        lanes = [
            lane_result(
                verdict,
                self.scenario,
                _concurrency(events.get(name, [])),
                self.stack.broker_versions.get(name),
                _worker_versions(events.get(name, [])),
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
                _write_run(run_dir, results, run.sources)
    return RunOutcome(run_dir, scenario, results, run.sources.history, verdicts)


def _write_run(run_dir: Path, results: Results, sources: _Sources) -> None:
    """history.jsonl, the raw journal and events, then results.json (written last)."""
    write_jsonl(run_dir / HISTORY, [m for lane in sources.history.values() for m in lane])
    write_jsonl(run_dir / "journal.jsonl", sources.journal)
    write_jsonl(
        run_dir / "events.jsonl",
        [{"lane": name} | event for name, events in sources.events.items() for event in events],
    )
    write_results(run_dir, results)
