"""The run directory's files and `results.json`, the stable contract for machines.

`results.json` holds the figures and verdict of each lane (`LaneResult`), the scenario
as run (scaled) and its time scale, and the versions of every component.
`history.jsonl` holds one `MessageHistory` per line, so `harness check` can judge a
stored run again with `recheck`. Fields are only ever added within a schema version.
"""

from __future__ import annotations

import json
import platform
from collections import defaultdict
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from mock_meta_api.config import describe_validation_error

from .checks import LaneVerdict, Ledger, check_lane
from .errors import InputError
from .history import MessageHistory
from .load.figures import LoadResult
from .scenario import STACK_ACTIONS, Scenario

# 2 added `harness_version`, `command`, and per lane `backend` and `broker_server`;
# version 1 files are still read (those fields None).
SCHEMA_VERSION = 2
RESULTS = "results.json"
HISTORY = "history.jsonl"
PACKAGES = ("celery", "kombu", "gevent", "redis", "httpx", "stagger-harness")


class BrokerServer(BaseModel):
    """The broker as it answered: what the lane's URL reached, not what the scenario named."""

    name: str = Field(description="valkey, redis or rabbitmq, from the server's own reply.")
    version: str

    @classmethod
    def parse(cls, said: str | None) -> BrokerServer | None:
        """From a stack's `name version` (e.g. `redis 7.0.15`); None when nothing answered."""
        if not said:
            return None
        name, _, version = said.partition(" ")
        return cls(name=name, version=version or "?")

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class LedgerCounts(BaseModel):
    """Each part the lane's requests asked for, counted in exactly one state."""

    on_time: int
    late: int
    duplicated: int
    failed: int = Field(description="The bot gave up on it; `failed_codes` says with which code.")
    lost: int = Field(description="Never accepted, not given up: `lost_at` says where it stopped.")
    lost_at: dict[str, int] = Field(
        description="never_queued, queued, received, started, sent: the furthest stage reached."
    )
    failed_codes: dict[str, int] = Field(
        description="The API's error code per failed part (`none`: no code, e.g. a timeout)."
    )

    @classmethod
    def of(cls, book: Ledger) -> LedgerCounts:
        return cls(**book.counts, lost_at=book.lost_at, failed_codes=book.failed_codes)

    @property
    def total(self) -> int:
        return self.on_time + self.late + self.duplicated + self.failed + self.lost


class LaneResult(BaseModel):
    """One lane's figures and verdict."""

    lane: str
    pool: str
    pool_set_by: str
    concurrency: int | None = Field(
        description="As the worker reported it at start-up (solo: 1, whatever it was told)."
    )
    broker: str = Field(
        default="valkey", description="valkey, redis or rabbitmq: as the scenario names it."
    )
    broker_version: str | None = Field(default=None, description="As the broker reported it.")
    broker_server: BrokerServer | None = Field(
        default=None, description="The broker as it answered (absent before schema 2)."
    )
    backend: Literal["local", "compose"] | None = Field(
        default=None, description="Where the lane ran (absent before schema 2)."
    )
    pins: dict[str, str] = Field(
        default_factory=dict, description="The versions the lane asked for (none: the lock's)."
    )
    versions: dict[str, str] = Field(
        default_factory=dict,
        description="Python, Celery, kombu, ... as the lane's worker reported them at start-up.",
    )
    expected_messages: int
    delivered: int
    missing: int
    duplicated: int
    unexpected: int = Field(default=0, description="Parts sent that no request asked for.")
    order_by: Literal["api_receipt", "api_response"]
    order_inversions: int = Field(description="Inversions in the order the scenario judges.")
    receipt_inversions: int
    response_inversions: int
    first_inversion: str | None
    lateness_p50_s: float | None
    lateness_p95_s: float | None
    lateness_max_s: float | None
    late: int
    early: int
    on_time_s: float
    verdict: Literal["pass", "fail"]
    expected_verdict: Literal["pass", "fail"]
    expected_reasons: list[str]
    reasons: list[str] = Field(description="One sentence per failed check.")
    reason_codes: list[str] = Field(
        description="missing, duplicated, unexpected, out-of-order, late, early"
    )
    as_expected: bool
    mismatch: str | None
    ledger: LedgerCounts | None = Field(
        default=None,
        description="Each expected part on time, late, duplicated, failed or lost (absent in "
        "results written before the ledger).",
    )

    @property
    def broker_label(self) -> str:
        """What answered (`redis 7.0.15`), else what the scenario named (old results)."""
        if self.broker_server is not None:
            return str(self.broker_server)
        return self.broker_version or self.broker

    @property
    def broker_name(self) -> str:
        """The server's own name (`redis`), else what the scenario named (old results)."""
        return self.broker_server.name if self.broker_server is not None else self.broker


class Results(BaseModel):
    """What `results.json` holds."""

    schema_version: Literal[1, 2] = SCHEMA_VERSION
    harness_version: str | None = Field(
        default=None, description="stagger-harness's own version (absent before schema 2)."
    )
    command: str | None = Field(
        default=None, description="The command line that made the run, when the CLI did."
    )
    scenario: str
    description: str
    time_scale: float
    complete: bool = Field(description="False when the run was interrupted: figures are partial.")
    as_expected: bool = Field(
        description="Every lane reached the verdict its scenario expects; every fault was done."
    )
    started_at: float
    finished_at: float
    stack_start_s: float | None
    trigger_at: float | None = Field(description="When the first request was posted (epoch s).")
    verdict_at: float | None = Field(
        default=None, description="When every lane had settled, or the deadline passed."
    )
    versions: dict[str, str]
    lanes: list[LaneResult]
    trigger_errors: list[str] = Field(default_factory=list)
    faults: list[dict[str, Any]] = Field(default_factory=list)
    scenario_definition: dict[str, Any] = Field(
        description="The scenario as run: its lanes, with every duration already scaled."
    )
    load: LoadResult | None = Field(
        default=None, description="A load test's figures per lane (scenarios with [load])."
    )


class ResultsError(InputError):
    """Stored results that cannot be read; the message names the file and what is wrong."""


def harness_version() -> str:
    """The installed stagger-harness's version, as results.json records it."""
    try:
        return metadata.version("stagger-harness")
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(broker: str | None) -> dict[str, str]:
    """Python, Celery, kombu, gevent, redis-py, httpx, the harness and the broker.

    Read from package metadata: the harness process never imports gevent.
    """
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["broker"] = broker or "unknown"
    return found


def lane_result(
    verdict: LaneVerdict,
    scenario: Scenario,
    concurrency: int | None,
    broker_version: str | None = None,
    versions: dict[str, str] | None = None,
    backend: Literal["local", "compose"] | None = None,
) -> LaneResult:
    lane = scenario.lane(verdict.lane)
    late = verdict.lateness
    return LaneResult(
        lane=lane.name,
        pool=lane.pool,
        pool_set_by=lane.pool_set_by,
        concurrency=concurrency,
        broker=lane.broker,
        broker_version=broker_version,
        broker_server=BrokerServer.parse(broker_version),
        backend=backend,
        pins=lane.pins,
        versions=versions or {},
        expected_messages=verdict.delivery.expected,
        delivered=verdict.delivery.delivered,
        missing=len(verdict.delivery.missing),
        duplicated=len(verdict.delivery.duplicated),
        unexpected=len(verdict.delivery.unexpected),
        order_by=verdict.order_by,
        order_inversions=verdict.order.inversions,
        receipt_inversions=verdict.receipt_order.inversions,
        response_inversions=verdict.response_order.inversions,
        first_inversion=verdict.order.first,
        lateness_p50_s=late.p50_s,
        lateness_p95_s=late.p95_s,
        lateness_max_s=late.max_s,
        late=len(late.late),
        early=len(late.early),
        on_time_s=scenario.tolerances.on_time_s,
        verdict=verdict.verdict,
        expected_verdict=verdict.expected_verdict,
        expected_reasons=list(verdict.expected_reasons),
        reasons=[finding.text for finding in verdict.reasons],
        reason_codes=verdict.codes,
        as_expected=verdict.as_expected,
        mismatch=verdict.mismatch,
        ledger=LedgerCounts.of(verdict.ledger),
    )


def judge(
    scenario: Scenario,
    history: dict[str, list[MessageHistory]],
    requests: dict[str, list[str]] | None = None,
) -> dict[str, LaneVerdict]:
    """Every lane of the (scaled) scenario checked against its history.

    `requests` names each lane's requests when a load test made them (their number is
    known only once it ran); otherwise each lane had one request per recipient.
    """
    verdicts = {}
    for lane in scenario.lanes:
        mine = history.get(lane.name, [])
        if requests is None:
            expected, count = scenario.expected_messages, scenario.flow.recipients
            verdicts[lane.name] = check_lane(mine, lane, scenario.tolerances, expected, count)
            continue
        correlations = requests.get(lane.name, [])
        verdicts[lane.name] = check_lane(
            mine,
            lane,
            scenario.tolerances,
            len(correlations) * scenario.flow.messages,
            len(correlations),
            correlations,
        )
    return verdicts


def load_requests(load: LoadResult | None) -> dict[str, list[str]] | None:
    """The requests each lane's verdict judges, as a load test recorded them."""
    return None if load is None else {lane.lane: lane.correlations for lane in load.lanes}


# -- files ---------------------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def write_results(run_dir: Path, results: Results) -> Path:
    path = run_dir / RESULTS
    write_atomic(path, results.model_dump_json(indent=2) + "\n")
    return path


def write_jsonl(path: Path, rows: list[Any]) -> None:
    lines = [
        row.model_dump_json() if isinstance(row, BaseModel) else json.dumps(row) for row in rows
    ]
    write_atomic(path, "".join(line + "\n" for line in lines))


def results_path(path: Path) -> Path:
    """A run directory or its results.json."""
    return path / RESULTS if path.is_dir() else path


def read_results(path: Path) -> Results:
    file = results_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"{file}: cannot read results: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return Results.model_validate_json(text)
    except ValidationError as exc:
        raise ResultsError(describe_validation_error(exc, str(file))) from None


def read_history(run_dir: Path) -> dict[str, list[MessageHistory]]:
    file = run_dir / HISTORY
    by_lane: dict[str, list[MessageHistory]] = defaultdict(list)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ResultsError(f"{file}: cannot read the history: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(lines, start=1):
        try:
            record = MessageHistory.model_validate_json(line)
        except ValidationError as exc:
            raise ResultsError(describe_validation_error(exc, f"{file}:{number}")) from None
        by_lane[record.lane].append(record)
    return dict(by_lane)


def run_as_expected(
    complete: bool,
    lanes: list[LaneResult],
    faults: list[dict[str, Any]],
    load: LoadResult | None = None,
) -> bool:
    """A run is as expected when it ran to the end, every lane reached the verdict its
    scenario expects, every fault was done (a fault not done: not the scenario), and a load
    test ran with no lane expected to pass past a threshold (one expected to fail may)."""
    within = load is None or (
        load.error is None
        and not any(
            load.exceeded_by(lane.lane) for lane in lanes if lane.expected_verdict == "pass"
        )
    )
    return (
        complete
        and within
        and all(lane.as_expected for lane in lanes)
        and not any(fault.get("error") for fault in faults)
    )


def recheck(path: Path) -> tuple[Results, Results]:
    """The stored results, and the same run judged again from its stored history."""
    stored = read_results(path)
    run_dir = results_path(path).parent
    try:
        scenario = Scenario.model_validate(stored.scenario_definition)
    except ValidationError as exc:
        source = f"{results_path(path)}: scenario_definition"
        raise ResultsError(describe_validation_error(exc, source)) from None
    verdicts = judge(scenario, read_history(run_dir), load_requests(stored.load))
    by_name = {lane.lane: lane for lane in stored.lanes}
    lanes = [
        _again(lane_result(v, scenario, None), by_name.get(name)) for name, v in verdicts.items()
    ]
    again = stored.model_copy(
        update={
            "lanes": lanes,
            "as_expected": run_as_expected(stored.complete, lanes, stored.faults, stored.load),
        }
    )
    return stored, again


def _again(judged: LaneResult, stored: LaneResult | None) -> LaneResult:
    """A lane judged again keeps what only the run could know: its worker's and broker's
    replies and where it ran (a schema 1 file's broker_server and backend stay unknown)."""
    if stored is None:
        return judged
    kept = ("concurrency", "broker_version", "broker_server", "backend", "versions")
    return judged.model_copy(update={field: getattr(stored, field) for field in kept})


def seconds(value: float | None) -> str:
    """A duration in the tables and reports: `0.25`, or `-` when there is none."""
    return "-" if value is None else f"{value:.2f}"


def fault_at(fault: dict[str, Any]) -> float | None:
    """When a fault recorded in results.json struck (epoch s): when it began, else when done.

    Results written before faults recorded `begun_at` have only `done_at`.
    """
    at = fault.get("begun_at", fault.get("done_at"))
    return None if at is None else float(at)


def describe_fault(fault: dict[str, Any], trigger_at: float | None) -> str:
    """`stop-worker solo (pid 41) at 1.30-2.10 s, scheduled 1.30 s`, or why it failed.

    Times count from the trigger.
    """
    done_at = fault.get("done_at")
    begun_at = fault_at(fault)
    zero = trigger_at if trigger_at is not None else begun_at
    action = fault.get("action", "?")
    on_stack = "the stack" if action in STACK_ACTIONS else "every lane"
    text = f"{action} {fault.get('lane') or on_stack}"
    if fault.get("pid"):
        text += f" (pid {fault['pid']}" + (
            f", then {fault['new_pid']})" if fault.get("new_pid") else ")"
        )
    elif fault.get("new_pid"):  # a worker restarted after the old one had exited
        text += f" (none running, then pid {fault['new_pid']})"
    if zero is not None and begun_at is not None and done_at is not None:
        text += f" at {begun_at - zero:.2f}-{done_at - zero:.2f} s"
    if zero is not None and fault.get("scheduled_at") is not None:
        text += f", scheduled {fault['scheduled_at'] - zero:.2f} s"
    if fault.get("cancelled"):
        return text + ": cancelled, the run was stopping"
    if fault.get("error"):
        return text + f": FAILED: {fault['error']}"
    return text
