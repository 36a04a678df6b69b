"""What a report shows, derived once from a run's results and history.

The Markdown and HTML writers and the plots all read a `Report`, so every format shows
the same figures, and each lane keeps one colour and one marker in every plot. Times
are seconds since the trigger (the first request posted), the x axis of the timelines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..checks import ledger
from ..history import MessageHistory
from ..results import (
    LaneResult,
    LedgerCounts,
    Results,
    load_requests,
    read_history,
    read_results,
    results_path,
)

# Okabe & Ito's colour-blind-safe palette (yellow left out: it vanishes on white paper),
# each with its own marker shape, so lanes stay apart in grey print too.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
SYMBOLS = ("●", "■", "▲", "◆", "▼", "✚", "✖")  # the markers as text, for the HTML tables
LATENESS_PLOT = "lateness.svg"
# Where a lane's ledger comes from: results.json, or (results written before the ledger)
# the history judged again as a fresh run judges it; "not recorded" when neither can say.
LedgerSource = Literal["recorded", "history", "not recorded"]
LOAD_PLOT = "load.svg"


@dataclass(frozen=True)
class Style:
    """How a lane is drawn everywhere: its colour and its marker."""

    colour: str
    marker: str  # matplotlib's name
    symbol: str  # the same shape as a character


@dataclass(frozen=True)
class Part:
    """One part on a timeline; times in seconds since the trigger, None if it never happened."""

    seq: int
    due_s: float | None
    received_s: float | None = None  # the API received the first accepted send
    responded_s: float | None = None  # the API answered it
    lateness_s: float | None = None
    late: bool = False
    extra_accepted_s: tuple[float, ...] = ()  # further accepted sends: duplicates
    refused_s: tuple[float, ...] = ()  # sends the API refused or never answered (retried)
    overtaken: bool = False  # a later part of its request came first, in the judged order

    @property
    def missing(self) -> bool:
        return self.received_s is None


@dataclass(frozen=True)
class Lane:
    """A lane's stored figures (`result`), its style and what the plots and table add."""

    result: LaneResult
    style: Style
    parts: list[Part]
    faults_s: list[tuple[str, float]]  # (what, seconds since the trigger) per fault injected
    why: str  # the scenario's explanation of the expected verdict
    or_because: list[str]  # the scenario's second outcome's reasons, if a race decides
    ledger: LedgerCounts | None  # as stored, else judged from the history; None: unknown
    ledger_source: LedgerSource

    @property
    def name(self) -> str:
        return self.result.lane

    @property
    def plot(self) -> str:
        """Its timeline's file name."""
        return f"timeline-{re.sub(r'[^A-Za-z0-9_-]', '_', self.name)}.svg"

    @property
    def last_answer_s(self) -> float | None:
        """When the API answered this lane's last delivered part."""
        return max((p.responded_s for p in self.parts if p.responded_s is not None), default=None)

    @property
    def throughput_per_s(self) -> float | None:
        """Parts delivered per second, from the trigger to the last API answer.

        A lane that keeps up finishes with its schedule; one that falls behind finishes
        later, so it shows a lower figure for the same parts. A lane that lost parts has
        none: its last answer says nothing of how fast it got through the schedule.
        """
        last = self.last_answer_s
        if last is None or last <= 0 or self.result.missing:
            return None
        return self.result.delivered / last

    @property
    def lateness(self) -> list[float]:
        return [p.lateness_s for p in self.parts if p.lateness_s is not None]


@dataclass(frozen=True)
class Report:
    """A stored run, ready to render."""

    results: Results
    lanes: list[Lane]
    scenario_text: str | None  # scenario.toml, verbatim, if the run directory has it

    @property
    def plots(self) -> list[str]:
        """Every plot's file name: the lateness across lanes, a timeline per lane, and the
        load over time when a load test ran."""
        load = [LOAD_PLOT] if self.results.load is not None else []
        return [LATENESS_PLOT, *(lane.plot for lane in self.lanes), *load]


def lane_styles(names: list[str]) -> dict[str, Style]:
    """One style per lane in the run's lane order; beyond the palette, colours repeat."""
    return {
        name: Style(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)], SYMBOLS[i % len(SYMBOLS)])
        for i, name in enumerate(names)
    }


def origin(results: Results) -> float:
    """Time zero of every plot: the trigger, or the run's start if it never got that far."""
    return results.trigger_at if results.trigger_at is not None else results.started_at


def _part(m: MessageHistory, zero: float, on_time_s: float, overtaken: bool) -> Part:
    def since(at: float | None) -> float | None:
        return None if at is None else at - zero

    accepted = sorted(r.received_at for r in m.api_requests if r.outcome == "accepted")
    lateness = m.lateness_s
    return Part(
        seq=m.seq,
        due_s=since(m.due),
        received_s=since(m.api_received_at),
        responded_s=since(m.api_responded_at),
        lateness_s=lateness,
        late=lateness is not None and lateness > on_time_s,
        extra_accepted_s=tuple(at - zero for at in accepted[1:]),
        refused_s=tuple(r.received_at - zero for r in m.api_requests if r.outcome != "accepted"),
        overtaken=overtaken,
    )


def _overtaken(history: list[MessageHistory], order_by: str) -> set[str]:
    """Message ids of parts some later part of the same request beat to the API, in the
    order the lane is judged by (API receipt or API response)."""

    def at(m: MessageHistory) -> float | None:
        return m.api_received_at if order_by == "api_receipt" else m.api_responded_at

    found: set[str] = set()
    by_request: dict[str, list[MessageHistory]] = {}
    for m in history:
        by_request.setdefault(m.correlation_id, []).append(m)
    for parts in by_request.values():
        earliest_later = float("inf")  # the first time any higher seq got there
        for m in sorted(parts, key=lambda m: m.seq, reverse=True):
            time = at(m)
            if time is None:
                continue
            if earliest_later < time:
                found.add(m.message_id)
            earliest_later = min(earliest_later, time)
    return found


def _never_queued(history: list[MessageHistory], messages: int, spacing_s: float) -> list[Part]:
    """Parts of the reply with no record at all, placed at their nominal due time."""
    seen = {m.seq for m in history}
    return [Part(seq, seq * spacing_s) for seq in range(messages) if seq not in seen]


def lane_ledger(
    result: LaneResult,
    records: list[MessageHistory],
    recipients: int,
    load: dict[str, list[str]] | None,
) -> tuple[LedgerCounts | None, LedgerSource]:
    """The lane's ledger as stored; for results written before the ledger, judged from
    the history with every request's parts, as a fresh run judges them (a load run's
    requests as its load recorded them). Never invented: a ledger that does not agree
    with the stored delivered and missing counts, or a load lane with no recorded
    requests, is "not recorded"."""
    if result.ledger is not None:
        return result.ledger, "recorded"
    if load is not None and result.lane not in load:
        return None, "not recorded"
    correlations = None if load is None else load[result.lane]
    requests = recipients if correlations is None else len(correlations)
    book = LedgerCounts.of(
        ledger(records, result.expected_messages, requests, result.on_time_s, correlations)
    )
    if not agrees(book, result):
        return None, "not recorded"
    return book, "history"


def agrees(book: LedgerCounts, result: LaneResult) -> bool:
    """A ledger that sums to the parts expected, and counts as delivered (on time, late,
    duplicated) and as missing (failed, lost) what the lane's figures say."""
    return (
        book.total == result.expected_messages
        and book.on_time + book.late + book.duplicated == result.delivered
        and book.failed + book.lost == result.missing
    )


def build_report(
    results: Results, history: dict[str, list[MessageHistory]], scenario_text: str | None = None
) -> Report:
    zero = origin(results)
    definition = results.scenario_definition
    flow = definition.get("flow", {})
    messages, spacing_s = int(flow.get("messages", 0)), float(flow.get("spacing_s", 0))
    recipients = int(flow.get("recipients", 1))
    why = {lane.get("name"): lane.get("why", "") for lane in definition.get("lanes", [])}
    either = {lane.get("name"): lane.get("or_because", []) for lane in definition.get("lanes", [])}
    styles = lane_styles([lane.lane for lane in results.lanes])
    lanes = []
    for result in results.lanes:
        records = history.get(result.lane, [])
        overtaken = _overtaken(records, result.order_by)
        parts = [_part(m, zero, result.on_time_s, m.message_id in overtaken) for m in records]
        parts += _never_queued(records, messages, spacing_s)
        faults = [
            (fault.action + (" FAILED" if fault.failed else ""), at - zero)
            for fault in results.faults
            if fault.lane in (result.lane, None)  # None: a fault on the whole stack
            and (at := fault.at) is not None
        ]
        book, source = lane_ledger(result, records, recipients, load_requests(results.load))
        lanes.append(
            Lane(
                result=result,
                style=styles[result.lane],
                parts=sorted(parts, key=lambda p: p.seq),
                faults_s=faults,
                why=why.get(result.lane) or "",
                or_because=list(either.get(result.lane) or []),
                ledger=book,
                ledger_source=source,
            )
        )
    return Report(results=results, lanes=lanes, scenario_text=scenario_text)


def load_report(run_dir: Path) -> Report:
    """A run directory's results.json and history.jsonl (and scenario.toml, if there).

    Raises `ResultsError` naming the file when either cannot be read.
    """
    results = read_results(run_dir)
    directory = results_path(run_dir).parent
    scenario = directory / "scenario.toml"
    text = scenario.read_text(encoding="utf-8", errors="replace") if scenario.is_file() else None
    return build_report(results, read_history(directory), text)
