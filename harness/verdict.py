"""The verdict: each lane's history judged against its scenario, and the run's.

`judge` checks every lane (harness.checks does the checking); `lane_result` turns a
lane's verdict into the figures and verdict results.json records (`LaneResult`);
`run_as_expected` decides the run's; `judge_again` judges a stored run's history again,
as `harness check` does. harness.results writes and reads what comes out.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .checks import LaneVerdict, Ledger, check_lane
from .fault_record import FaultRecord
from .history import MessageHistory
from .load.figures import LoadResult
from .scenario import Scenario


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


def run_as_expected(
    complete: bool,
    lanes: list[LaneResult],
    faults: list[FaultRecord],
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
        and not any(fault.failed for fault in faults)
    )


def judge_again(
    scenario: Scenario,
    history: dict[str, list[MessageHistory]],
    stored: list[LaneResult],
    load: LoadResult | None,
) -> list[LaneResult]:
    """A stored run's lanes judged again from its history, by today's checks."""
    verdicts = judge(scenario, history, load_requests(load))
    by_name = {lane.lane: lane for lane in stored}
    return [
        _again(lane_result(v, scenario, None), by_name.get(name)) for name, v in verdicts.items()
    ]


def _again(judged: LaneResult, stored: LaneResult | None) -> LaneResult:
    """A lane judged again keeps what only the run could know: its worker's and broker's
    replies and where it ran (a schema 1 file's broker_server and backend stay unknown)."""
    if stored is None:
        return judged
    kept = ("concurrency", "broker_version", "broker_server", "backend", "versions")
    return judged.model_copy(update={field: getattr(stored, field) for field in kept})
