"""Assertions on a run's outcome that fail with the harness's own sentences.

A test that says `assert_delivered(outcome, "gevent")` fails with what the checks found
("lane gevent: part 5 reached the API 3.20 s after its due time (allowed 0.5 s)"), not
with a bare `assert False`. Each helper reads only the outcome: no process, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # harness.run imports Celery: only its type is needed here
    from .history import MessageHistory
    from .run import RunOutcome

__all__ = [
    "assert_as_expected",
    "assert_delivered",
    "assert_fails_with",
    "assert_on_time",
    "part_sentences",
]


def _history(outcome: RunOutcome, lane: str) -> list[MessageHistory]:
    if lane not in outcome.history and lane not in {r.lane for r in outcome.results.lanes}:
        lanes = ", ".join(r.lane for r in outcome.results.lanes)
        raise AssertionError(
            f"scenario {outcome.scenario.name!r} has no lane {lane!r}; lanes: {lanes}"
        )
    return sorted(outcome.history.get(lane, []), key=lambda m: (m.correlation_id, m.seq))


def _name(message: MessageHistory, several: bool) -> str:
    return message.message_id if several else f"part {message.seq}"


def part_sentences(outcome: RunOutcome, lane: str) -> list[str]:
    """One sentence per part off its schedule: late, early, sent twice, or never sent."""
    tolerances = outcome.scenario.tolerances
    history = _history(outcome, lane)
    several = len({m.correlation_id for m in history}) > 1
    sentences: list[str] = []
    for message in history:
        name = _name(message, several)
        late = message.lateness_s
        if message.accepted == 0:
            sentences.append(f"{name} never reached the API ({_stage(message)})")
        elif late is not None and late > tolerances.on_time_s:
            sentences.append(
                f"{name} reached the API {late:.2f} s after its due time "
                f"(allowed {tolerances.on_time_s:g} s)"
            )
        elif late is not None and late < -tolerances.early_s:
            sentences.append(
                f"{name} reached the API {-late:.2f} s before its due time "
                f"(allowed {tolerances.early_s:g} s early)"
            )
        if message.accepted > 1:
            sentences.append(f"{name} was sent {message.accepted} times")
    return sentences


def _stage(message: MessageHistory) -> str:
    if message.started is not None:
        return "started, never accepted"
    if message.received is not None:
        return "received by a worker, never started"
    if message.queued_at is not None:
        return "queued, never received"
    return "never queued"


def _fail(lane: str, sentences: Sequence[str]) -> None:
    if sentences:
        raise AssertionError(f"lane {lane}: " + "; ".join(sentences))


def assert_on_time(outcome: RunOutcome, lane: str) -> None:
    """Every part the lane sent reached the API within the scenario's on-time bounds."""
    _fail(
        lane,
        [s for s in part_sentences(outcome, lane) if "due time" in s],
    )


def assert_delivered(outcome: RunOutcome, lane: str) -> None:
    """Every part reached the API exactly once, in order and on time: the lane passes."""
    _history(outcome, lane)
    result = outcome.lane(lane)
    if result.verdict == "pass":
        return
    # The part-by-part sentences first (they name each part), then the checks' own reasons.
    sentences = part_sentences(outcome, lane)
    _fail(lane, [*sentences[:10], *[r for r in result.reasons if r not in sentences]])


def assert_as_expected(outcome: RunOutcome, lane: str | None = None) -> None:
    """The lane (or every lane) reached the verdict its scenario expects, reasons included."""
    if not outcome.results.complete:
        raise AssertionError(f"run of {outcome.scenario.name!r} was cut short: figures are partial")
    results = outcome.results.lanes if lane is None else [outcome.lane(lane)]
    for result in results:
        if not result.as_expected:
            _fail(result.lane, [str(result.mismatch), *result.reasons])


def assert_fails_with(outcome: RunOutcome, lane: str, *codes: str) -> None:
    """The lane failed, for at least these reasons (missing, late, out-of-order, ...)."""
    _history(outcome, lane)
    result = outcome.lane(lane)
    absent = [code for code in codes if code not in result.reason_codes]
    if result.verdict == "pass":
        _fail(lane, [f"expected a failure ({', '.join(codes) or 'any'}), but every check passed"])
    if absent:
        got = ", ".join(result.reason_codes)
        _fail(lane, [f"expected failure for {', '.join(absent)}, got {got}", *result.reasons])
