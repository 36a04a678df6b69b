"""The ledger: every part the requests asked for ends a run in exactly one state.

Arbitrary histories (any mix of records, missing records, strays, duplicates, failures)
always sum to the parts expected and agree with the delivery check; drops, duplicates
and reorders injected into a clean run are always caught, in the ledger and the verdict.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.checks import (
    LOST_STAGES,
    PART_STATES,
    LaneVerdict,
    check_lane,
    delivery,
    ledger,
    lost_stage,
)
from harness.history import ApiRequest, MessageHistory
from harness.results import LedgerCounts
from tests.unit.test_checks import LANE, Run, clean_runs

pytestmark = pytest.mark.unit

PROPERTY = settings(max_examples=200, deadline=None)
CORRELATIONS = ("0000aaaa", "1111bbbb", "2222cccc", "3333dddd")
STATUSES = ("queued", "sending", "sent", "failed", "unknown")
ERROR_CODES = (None, 131056, 130429, 131026, 131000)
TIMES = st.one_of(st.none(), st.floats(min_value=1.6e9, max_value=1.6e9 + 600))


@st.composite
def api_requests(draw: st.DrawFn) -> ApiRequest:
    accepted = draw(st.booleans())
    received = draw(st.floats(min_value=1.6e9, max_value=1.6e9 + 600))
    return ApiRequest(
        received_at=received,
        responded_at=draw(st.one_of(st.none(), st.just(received + 0.1))),
        outcome="accepted" if accepted else draw(st.sampled_from(["error", "reset", "hang"])),
        http_status=200 if accepted else draw(st.sampled_from([None, 400, 429, 503])),
        error_code=None if accepted else draw(st.sampled_from(ERROR_CODES)),
    )


@st.composite
def records(draw: st.DrawFn, max_seq: int) -> MessageHistory:
    """Any record a run could hold, whatever state its sources left it in."""
    correlation = draw(st.sampled_from(CORRELATIONS))
    seq = draw(st.integers(min_value=0, max_value=max_seq))
    requests = draw(st.lists(api_requests(), max_size=4))
    first = next((r for r in requests if r.outcome == "accepted"), None)
    queued_at = draw(TIMES)
    return MessageHistory(
        lane=LANE.name,
        message_id=f"{correlation}-{seq:03d}",
        correlation_id=correlation,
        seq=seq,
        queued_at=queued_at,
        countdown_s=None if queued_at is None else draw(st.floats(min_value=0, max_value=60)),
        received=draw(TIMES),
        started=draw(TIMES),
        status=draw(st.sampled_from(STATUSES)),
        error_code=draw(st.sampled_from(ERROR_CODES)),
        api_requests=requests,
        accepted=sum(1 for r in requests if r.outcome == "accepted"),
        api_received_at=None if first is None else first.received_at,
        api_responded_at=None if first is None else first.responded_at,
    )


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[MessageHistory], int, int]:
    """A history of up to 4 requests (maybe fewer answered, maybe strays), and what was asked."""
    per_request = draw(st.integers(min_value=1, max_value=12))
    requests = draw(st.integers(min_value=1, max_value=3))
    found = draw(st.lists(records(per_request + 2), max_size=40))
    unique = list({m.message_id: m for m in found}.values())  # one record per message id
    return unique, per_request * requests, requests


@PROPERTY
@given(drawn=histories(), on_time_s=st.floats(min_value=0.5, max_value=10))
def test_the_ledger_sums_to_the_parts_expected(
    drawn: tuple[list[MessageHistory], int, int], on_time_s: float
) -> None:
    """Exactly one state per part asked for, whatever the history holds."""
    history, expected, requests = drawn

    book = ledger(history, expected, requests, on_time_s)
    counts = LedgerCounts.of(book)

    assert len(book.entries) == expected
    assert sum(book.counts.values()) == expected
    assert counts.total == expected
    assert set(book.counts) == set(PART_STATES)
    assert sum(counts.lost_at.values()) == counts.lost
    assert set(counts.lost_at) == set(LOST_STAGES)
    assert sum(counts.failed_codes.values()) == counts.failed


@PROPERTY
@given(drawn=histories(), on_time_s=st.floats(min_value=0.5, max_value=10))
def test_the_ledger_agrees_with_the_delivery_check(
    drawn: tuple[list[MessageHistory], int, int], on_time_s: float
) -> None:
    """Delivered = on time + late + duplicated; missing = failed + lost, part for part."""
    history, expected, requests = drawn

    book = ledger(history, expected, requests, on_time_s)
    got = delivery(history, expected, requests)

    assert book.count("on_time") + book.count("late") + book.count("duplicated") == got.delivered
    assert [e.part for e in book.entries if e.state in ("failed", "lost")] == got.missing
    doubled = {e.part for e in book.entries if e.state == "duplicated"}
    assert doubled <= set(got.duplicated)  # a stray sent twice is unexpected, not in the ledger


def test_a_lost_part_names_the_furthest_stage_it_reached() -> None:
    base = MessageHistory(lane="solo", message_id="0000aaaa-000", correlation_id="0000aaaa", seq=0)
    sent = ApiRequest(received_at=1.0, outcome="hang")

    assert lost_stage(None) == "never_queued"
    assert lost_stage(base) == "never_queued"
    assert lost_stage(base.model_copy(update={"queued_at": 1.0})) == "queued"
    assert lost_stage(base.model_copy(update={"queued_at": 1.0, "received": 2.0})) == "received"
    assert lost_stage(base.model_copy(update={"received": 2.0, "started": 3.0})) == "started"
    assert lost_stage(base.model_copy(update={"started": 3.0, "api_requests": [sent]})) == "sent"


def test_a_failed_part_carries_the_apis_error_code() -> None:
    refused = ApiRequest(received_at=1.0, outcome="error", http_status=400, error_code=131026)
    part = MessageHistory(
        lane="solo",
        message_id="0000aaaa-000",
        correlation_id="0000aaaa",
        seq=0,
        queued_at=0.5,
        status="failed",
        api_requests=[refused],
    )

    book = ledger([part], 1, 1, on_time_s=2.0)

    assert book.counts["failed"] == 1
    assert book.failed_codes == {"131026": 1}
    recorded = part.model_copy(update={"error_code": 131056})  # what the bot recorded wins
    assert ledger([recorded], 1, 1, on_time_s=2.0).failed_codes == {"131056": 1}


# -- injected faults are always caught ----------------------------------------------------------

FAULTS = settings(max_examples=120, deadline=None)


def check(run: Run, history: list[MessageHistory]) -> LaneVerdict:
    return check_lane(history, LANE, run.tolerances, run.parts)


@FAULTS
@given(run=clean_runs())
def test_a_clean_run_is_all_on_time(run: Run) -> None:
    verdict = check(run, run.history)

    assert verdict.ledger.counts == {
        "on_time": run.parts,
        "late": 0,
        "duplicated": 0,
        "failed": 0,
        "lost": 0,
    }


@FAULTS
@given(
    run=clean_runs(),
    data=st.data(),
    stage=st.sampled_from(["never_queued", "queued", "received", "started", "sent"]),
)
def test_a_dropped_part_is_lost_at_its_stage_and_fails_the_lane(
    run: Run, data: st.DataObject, stage: str
) -> None:
    """A part dropped anywhere between the outbox and the API is lost, and the lane fails."""
    seq = data.draw(st.integers(min_value=0, max_value=run.parts - 1))
    cut = {"accepted": 0, "api_received_at": None, "api_responded_at": None, "status": "queued"}
    reached = {
        "never_queued": {},
        "queued": {"queued_at": run.history[seq].queued_at},
        "received": {"received": 1.0},
        "started": {"received": 1.0, "started": 1.1},
        "sent": {"started": 1.1, "api_requests": [ApiRequest(received_at=1.2, outcome="hang")]},
    }[stage]
    if stage == "never_queued":
        history = [m for m in run.history if m.seq != seq]
    else:
        blank = {"queued_at": None, "received": None, "started": None, "api_requests": []}
        history = run.replaced(seq, **(cut | blank | reached))

    verdict = check(run, history)

    assert verdict.ledger.count("lost") == 1
    assert verdict.ledger.lost_at[stage] == 1
    assert verdict.verdict == "fail"
    assert "missing" in verdict.codes
    assert LOST_STAGES[stage] in next(f.text for f in verdict.reasons if f.code == "missing")


@FAULTS
@given(run=clean_runs(), data=st.data())
def test_a_duplicated_part_is_counted_once_as_duplicated(run: Run, data: st.DataObject) -> None:
    seq = data.draw(st.integers(min_value=0, max_value=run.parts - 1))
    copies = data.draw(st.integers(min_value=2, max_value=5))

    verdict = check(run, run.replaced(seq, accepted=copies))

    assert verdict.ledger.count("duplicated") == 1
    assert verdict.ledger.count("on_time") == run.parts - 1
    assert "duplicated" in verdict.codes


@FAULTS
@given(run=clean_runs(min_parts=2), data=st.data())
def test_reordered_parts_are_caught_and_the_ledger_still_sums(
    run: Run, data: st.DataObject
) -> None:
    """Two parts swapping their place at the API: out of order, every part still accounted."""
    i = data.draw(st.integers(min_value=0, max_value=run.parts - 2))
    j = data.draw(st.integers(min_value=i + 1, max_value=run.parts - 1))
    a, b = run.history[i], run.history[j]
    history = run.replaced(
        i, api_received_at=b.api_received_at, api_responded_at=b.api_responded_at
    )
    history[j] = b.model_copy(
        update={"api_received_at": a.api_received_at, "api_responded_at": a.api_responded_at}
    )
    run = replace(run, tolerances=run.tolerances.model_copy(update={"order_by": "api_receipt"}))

    verdict = check(run, history)

    assert "out-of-order" in verdict.codes
    assert sum(verdict.ledger.counts.values()) == run.parts
    assert verdict.ledger.count("on_time") + verdict.ledger.count("late") == run.parts
    assert verdict.ledger.count("late") == len(verdict.lateness.late)


@FAULTS
@given(run=clean_runs(min_parts=3), data=st.data())
def test_faults_together_each_land_in_their_own_state(run: Run, data: st.DataObject) -> None:
    """A drop, a duplicate and a failure on distinct parts: one of each, the rest on time."""
    dropped, doubled, failed = data.draw(
        st.lists(
            st.integers(min_value=0, max_value=run.parts - 1), min_size=3, max_size=3, unique=True
        )
    )
    history = run.replaced(doubled, accepted=2)
    history = [
        m.model_copy(
            update={
                "accepted": 0,
                "api_received_at": None,
                "api_responded_at": None,
                "status": "failed" if m.seq == failed else "sending",
                "error_code": 131056 if m.seq == failed else None,
            }
        )
        if m.seq in (dropped, failed)
        else m
        for m in history
    ]

    verdict = check(run, history)

    assert verdict.ledger.counts == {
        "on_time": run.parts - 3,
        "late": 0,
        "duplicated": 1,
        "failed": 1,
        "lost": 1,
    }
    assert verdict.ledger.failed_codes == {"131056": 1}
    assert {"missing", "duplicated"} <= set(verdict.codes)
    assert "1 failed (1 with error 131056)" in next(
        f.text for f in verdict.reasons if f.code == "missing"
    )
