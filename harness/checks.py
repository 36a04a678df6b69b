"""Checks: pure functions of a lane's history that return figures and the reasons it fails.

The ledger (each expected part on time, late, duplicated, failed or lost), delivery
(missing, duplicated), order (inversions by API receipt and by API response),
lateness (api_received_at - (queued_at + countdown)) against the scenario's tolerances,
and a verdict per lane compared with what the scenario expects of it. No I/O: the
same history always gives the same verdict, so stored results can be checked again.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .bot.flow import message_id_for
from .history import MessageHistory, split_message_id
from .scenario import LaneScenario, Reason, Tolerances

OrderBy = Literal["api_receipt", "api_response"]
PartState = Literal["on_time", "late", "duplicated", "failed", "lost"]
PART_STATES: tuple[PartState, ...] = ("on_time", "late", "duplicated", "failed", "lost")
LostStage = Literal["never_queued", "queued", "received", "started", "sent"]
LOST_STAGES: dict[str, str] = {  # where a lost part stopped, furthest evidence first
    "never_queued": "never queued",
    "queued": "queued, never received by a worker",
    "received": "received by a worker, never started",
    "started": "started, never sent to the API",
    "sent": "sent, never accepted by the API",
}


@dataclass(frozen=True)
class Finding:
    """One reason a lane fails: a `scenario.Reason` code and a sentence naming parts."""

    code: Reason
    text: str


@dataclass(frozen=True)
class Delivery:
    expected: int
    delivered: int
    missing: list[str]  # message ids not accepted by the API, queued or not
    duplicated: list[str]  # message ids the API accepted more than once
    unexpected: list[str]  # message ids the API accepted that no request asked for


@dataclass(frozen=True)
class Order:
    by: OrderBy
    inversions: int  # pairs of parts of one request whose times disagree with their seq
    first: str | None  # the first adjacent inversion, in words


@dataclass(frozen=True)
class Lateness:
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    late: list[tuple[str, float]]  # (part, lateness) beyond on_time_s
    early: list[tuple[str, float]]  # (part, lateness) before -early_s


@dataclass(frozen=True)
class Entry:
    """One expected part's line in the ledger: its state, and for a lost part the stage it
    stopped at, for a failed one the error code the API last answered (None: no code)."""

    part: str
    state: PartState
    stage: LostStage | None = None
    error_code: int | None = None


@dataclass(frozen=True)
class Ledger:
    """Every part the lane's requests asked for, each in exactly one state."""

    entries: list[Entry]

    def count(self, state: PartState) -> int:
        return sum(1 for entry in self.entries if entry.state == state)

    @property
    def counts(self) -> dict[PartState, int]:
        return {state: self.count(state) for state in PART_STATES}

    @property
    def lost_at(self) -> dict[str, int]:
        """Lost parts by the stage where they stopped; every stage, zeros included."""
        return {
            stage: sum(1 for entry in self.entries if entry.stage == stage) for stage in LOST_STAGES
        }

    @property
    def failed_codes(self) -> dict[str, int]:
        """Failed parts by the API's error code (`none`: failed with no code, e.g. a timeout)."""
        codes: dict[str, int] = {}
        for entry in self.entries:
            if entry.state == "failed":
                key = "none" if entry.error_code is None else str(entry.error_code)
                codes[key] = codes.get(key, 0) + 1
        return dict(sorted(codes.items()))


@dataclass(frozen=True)
class LaneVerdict:
    lane: str
    delivery: Delivery
    receipt_order: Order
    response_order: Order
    lateness: Lateness
    order_by: OrderBy
    reasons: list[Finding]
    ledger: Ledger
    expected_verdict: Literal["pass", "fail"]
    expected_reasons: list[Reason] = field(default_factory=list)
    expected_or_reasons: list[Reason] = field(default_factory=list)

    @property
    def verdict(self) -> Literal["pass", "fail"]:
        return "fail" if self.reasons else "pass"

    @property
    def codes(self) -> list[Reason]:
        return list(dict.fromkeys(finding.code for finding in self.reasons))

    @property
    def order(self) -> Order:
        return self.receipt_order if self.order_by == "api_receipt" else self.response_order

    @property
    def as_expected(self) -> bool:
        if self.verdict != self.expected_verdict:
            return False
        outcomes = [self.expected_reasons]
        if self.expected_or_reasons:
            outcomes.append(self.expected_or_reasons)
        return any(set(reasons) <= set(self.codes) for reasons in outcomes)

    @property
    def mismatch(self) -> str | None:
        """Why the lane did not do what the scenario expects, or None."""
        if self.as_expected:
            return None
        expected = self.expected_verdict
        either = expected_reasons_text(self.expected_reasons, self.expected_or_reasons)
        if either:
            expected += f" ({either})"
        got = self.verdict + (f" ({', '.join(self.codes)})" if self.codes else "")
        return f"expected {expected}, got {got}"


def expected_reasons_text(reasons: Sequence[str], or_reasons: Sequence[str]) -> str:
    """`missing`, `missing, late`, or with a second outcome `missing | late`."""
    return " | ".join(", ".join(codes) for codes in (reasons, or_reasons) if codes)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _namer(history: Sequence[MessageHistory]) -> Callable[[str], str]:
    """Parts are named by seq (`part 7`); with several requests per lane, by message id."""
    if len({m.correlation_id for m in history}) > 1:
        return lambda message_id: message_id

    def by_seq(message_id: str) -> str:
        parts = split_message_id(message_id)
        return message_id if parts is None else f"part {parts[1]}"

    return by_seq


def expected_parts(
    history: Sequence[MessageHistory],
    expected: int,
    requests: int = 1,
    correlations: Sequence[str] | None = None,
) -> list[tuple[str, MessageHistory | None]]:
    """Every part the requests asked for, with its record (None: no record at all).

    Each request must get seq 0 .. expected/requests - 1. The requests asked for are
    `correlations` when known (a load test logs each one it sent), else the first
    `requests` (by correlation id); a request with no record at all stands for
    `expected/requests` parts named `(request N never answered)`.
    """
    per_request = expected // requests if requests else 0
    by_request: dict[str, dict[int, MessageHistory]] = defaultdict(dict)
    for m in history:
        by_request[m.correlation_id][m.seq] = m
    answered = (
        sorted(by_request)[:requests]
        if correlations is None
        else [c for c in correlations if c in by_request]
    )
    parts = [
        (message_id_for(correlation, seq), by_request[correlation].get(seq))
        for correlation in answered
        for seq in range(per_request)
    ]
    for n in range(len(answered), requests):
        parts += [(f"(request {n + 1} never answered)", None)] * per_request
    return parts


def delivery(
    history: Sequence[MessageHistory],
    expected: int,
    requests: int = 1,
    correlations: Sequence[str] | None = None,
) -> Delivery:
    """Each request must get seq 0 .. expected/requests - 1, each accepted by the API once.

    A part is missing whether it was never queued or never sent; a request with no part at
    all counts whole. A part beyond the reply's length, or of a request too many, is
    unexpected, so it cannot stand in for a missing one. `correlations` names the requests
    when they are known (a load test logs each one it sent); else any `requests` count.
    """
    parts = expected_parts(history, expected, requests, correlations)
    delivered = sum(1 for _, m in parts if m is not None and m.accepted >= 1)
    missing = [part for part, m in parts if m is None or m.accepted < 1]
    asked = {part for part, m in parts if m is not None}
    return Delivery(
        expected=expected,
        delivered=delivered,
        missing=missing,
        duplicated=[m.message_id for m in history if m.accepted > 1],
        unexpected=[m.message_id for m in history if m.accepted and m.message_id not in asked],
    )


def order(history: Sequence[MessageHistory], by: OrderBy) -> Order:
    """Inversions within each request: pairs where a higher seq came first (ties are not)."""
    name = _namer(history)
    requests: dict[str, list[tuple[float, int, MessageHistory]]] = defaultdict(list)
    for m in history:
        at = m.api_received_at if by == "api_receipt" else m.api_responded_at
        if at is not None:
            requests[m.correlation_id].append((at, m.seq, m))
    verb = "reached the API" if by == "api_receipt" else "was answered"
    inversions = 0
    first: tuple[float, str] | None = None
    for timeline in requests.values():
        timeline.sort(key=lambda item: (item[0], item[1]))
        seqs = [seq for _, seq, _ in timeline]
        inversions += sum(1 for i, a in enumerate(seqs) for b in seqs[i + 1 :] if a > b)
        for (at_a, seq_a, a), (at_b, seq_b, b) in itertools.pairwise(timeline):
            if seq_a > seq_b:
                text = (
                    f"{name(a.message_id)} {verb} {at_b - at_a:.3f} s before {name(b.message_id)}"
                )
                if first is None or at_a < first[0]:
                    first = (at_a, text)
                break
    return Order(by=by, inversions=inversions, first=first[1] if first else None)


def lost_stage(m: MessageHistory | None) -> LostStage:
    """How far a part the API never accepted got, by the furthest evidence of it."""
    if m is None:
        return "never_queued"
    if m.api_requests:
        return "sent"
    if m.started is not None:
        return "started"
    if m.received is not None:
        return "received"
    return "queued" if m.queued_at is not None else "never_queued"


def _error_code(m: MessageHistory) -> int | None:
    """The code the bot recorded when it gave up, else the API's last refusal's code."""
    if m.error_code is not None:
        return m.error_code
    refused = [r for r in m.api_requests if r.outcome != "accepted" and r.error_code is not None]
    return refused[-1].error_code if refused else None


def entry(part: str, m: MessageHistory | None, on_time_s: float) -> Entry:
    """One part's state: accepted twice or more, duplicated; once, late beyond `on_time_s`
    or on time (a part whose due time is unknown counts on time: nothing says it was late);
    never, failed if the bot gave up on it, else lost at the stage where it stopped."""
    if m is not None and m.accepted >= 2:
        return Entry(part, "duplicated")
    if m is not None and m.accepted == 1:
        late = m.lateness_s is not None and m.lateness_s > on_time_s
        return Entry(part, "late" if late else "on_time")
    if m is not None and m.status == "failed":
        return Entry(part, "failed", error_code=_error_code(m))
    return Entry(part, "lost", stage=lost_stage(m))


def ledger(
    history: Sequence[MessageHistory],
    expected: int,
    requests: int,
    on_time_s: float,
    correlations: Sequence[str] | None = None,
) -> Ledger:
    """Each part the requests asked for in exactly one state: the entries sum to `expected`.

    Parts no request asked for are not in it (the `unexpected` check names them); early
    parts count on time (the `early` check names them).
    """
    return Ledger(
        [
            entry(part, m, on_time_s)
            for part, m in expected_parts(history, expected, requests, correlations)
        ]
    )


def lateness(history: Sequence[MessageHistory], tolerances: Tolerances) -> Lateness:
    name = _namer(history)
    measured = [(m, m.lateness_s) for m in history if m.lateness_s is not None]
    values = [late for _, late in measured]
    return Lateness(
        p50_s=percentile(values, 50),
        p95_s=percentile(values, 95),
        max_s=max(values, default=None),
        late=[(name(m.message_id), v) for m, v in measured if v > tolerances.on_time_s],
        early=[(name(m.message_id), v) for m, v in measured if v < -tolerances.early_s],
    )


def _parts(n: int) -> str:
    return "part" if n == 1 else "parts"


def _its(items: Sequence[object]) -> str:
    return "its" if len(items) == 1 else "their"


def _n_parts(items: Sequence[object]) -> str:
    """`1 part` / `3 parts`."""
    return f"{len(items)} {_parts(len(items))}"


def _count(items: Sequence[object]) -> str:
    """`1 part was` / `3 parts were`."""
    return f"{_n_parts(items)} {'was' if len(items) == 1 else 'were'}"


def _where_stuck(book: Ledger) -> str:
    """How far the missing parts got: this tells a lost message from one never run, and
    both from one the bot gave up on with the API's error code."""
    said = [f"{n} {LOST_STAGES[stage]}" for stage, n in book.lost_at.items() if n]
    codes = book.failed_codes
    if codes:
        said.append(
            f"{book.count('failed')} failed ("
            + ", ".join(
                f"{n} with no error code" if code == "none" else f"{n} with error {code}"
                for code, n in codes.items()
            )
            + ")"
        )
    return "; ".join(said)


def _listed(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_lane(
    history: Sequence[MessageHistory],
    lane: LaneScenario,
    tolerances: Tolerances,
    expected_messages: int,
    requests: int = 1,
    correlations: Sequence[str] | None = None,
) -> LaneVerdict:
    """Every check on one lane's history, and the reasons it fails (none: it passes).

    `expected_messages` counts the parts of all `requests` (one reply each), named by
    `correlations` when known.
    """
    name = _namer(history)
    by_id = {m.message_id: m for m in history}
    book = ledger(history, expected_messages, requests, tolerances.on_time_s, correlations)
    got = delivery(history, expected_messages, requests, correlations)
    receipt, response = order(history, "api_receipt"), order(history, "api_response")
    late = lateness(history, tolerances)
    reasons: list[Finding] = []
    if got.missing:
        reasons.append(
            Finding(
                "missing",
                f"{len(got.missing)} of {expected_messages} {_parts(expected_messages)} "
                f"never reached the API ({_listed([name(i) for i in got.missing])}): "
                + _where_stuck(book),
            )
        )
    if got.duplicated:
        named = [f"{name(i)} x{by_id[i].accepted}" for i in got.duplicated]
        reasons.append(
            Finding(
                "duplicated", f"{_count(got.duplicated)} sent more than once ({_listed(named)})"
            )
        )
    if got.unexpected:
        named = _listed([name(i) for i in got.unexpected])
        reasons.append(
            Finding(
                "unexpected", f"{_count(got.unexpected)} sent that no request asked for ({named})"
            )
        )
    chosen = receipt if tolerances.order_by == "api_receipt" else response
    if chosen.inversions:
        reasons.append(
            Finding(
                "out-of-order",
                f"{chosen.inversions} order inversions by {tolerances.order_by.replace('_', ' ')}"
                f"; first: {chosen.first}",
            )
        )
    if late.late:
        worst = max(late.late, key=lambda item: item[1])
        reasons.append(
            Finding(
                "late",
                f"{_n_parts(late.late)} reached the API more than {tolerances.on_time_s:g} s "
                f"after {_its(late.late)} due time (worst: {worst[0]}, {worst[1]:.2f} s late)",
            )
        )
    if late.early:
        worst = min(late.early, key=lambda item: item[1])
        reasons.append(
            Finding(
                "early",
                f"{_n_parts(late.early)} reached the API more than {tolerances.early_s:g} s "
                f"before {_its(late.early)} due time (worst: {worst[0]}, {-worst[1]:.2f} s early)",
            )
        )
    return LaneVerdict(
        lane=lane.name,
        delivery=got,
        receipt_order=receipt,
        response_order=response,
        lateness=late,
        order_by=tolerances.order_by,
        reasons=reasons,
        ledger=book,
        expected_verdict=lane.expect,
        expected_reasons=list(lane.because),
        expected_or_reasons=list(lane.or_because),
    )
