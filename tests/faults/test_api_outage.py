"""An API outage (HTTP 503) for a window: without retries the parts due then fail with
Meta's code, on every pool; retried with backoff they are all sent, late."""

from __future__ import annotations

import pytest

from harness.nemesis import OUTAGE_ANSWER
from harness.run import RunOutcome

from .conftest import RunScenario, assert_as_expected, each_pool, fault_of, ledger, parts

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def outage(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("api-outage", 0.25)


def in_window(outcome: RunOutcome, lane: str) -> list[int]:
    """Parts whose first send reached the API while the outage was on."""
    window = fault_of(outcome, "api-outage", None)
    return [
        m.seq
        for m in parts(outcome, lane)
        if m.api_requests and window.begun_at <= m.api_requests[0].received_at < window.done_at
    ]


@each_pool
def test_without_retries_the_parts_due_in_the_outage_fail_with_metas_code(
    outage: RunOutcome, pool: str
) -> None:
    book = ledger(outage, pool)
    hit = in_window(outage, pool)
    assert hit, "no part met the outage"
    failed = [m.seq for m in parts(outage, pool) if m.status == "failed"]
    # Every part that failed met the outage, and with no retry it was tried once. (In two
    # suite runs a threads part whose first send met the outage was accepted later all
    # the same; not seen when the lane runs alone: an open question, so not asserted.)
    assert failed
    assert set(failed) <= set(hit)
    assert book.failed == len(failed)
    assert book.failed_codes == {str(OUTAGE_ANSWER.code): len(failed)}
    assert all(m.attempts == 1 for m in parts(outage, pool) if m.status == "failed")
    assert book.lost == 0
    assert book.duplicated == 0
    assert_as_expected(outage, pool)


@each_pool
def test_retried_with_backoff_every_part_is_sent_once_the_outage_ones_late(
    outage: RunOutcome, pool: str
) -> None:
    lane = f"{pool}-retry"
    book = ledger(outage, lane)
    hit = in_window(outage, lane)
    assert hit, "no part met the outage"
    assert (book.failed, book.lost, book.duplicated) == (0, 0, 0)
    assert [m.accepted for m in parts(outage, lane)] == [1] * outage.scenario.expected_messages
    late = {
        m.seq
        for m in parts(outage, lane)
        if m.lateness_s is not None and m.lateness_s > outage.scenario.tolerances.on_time_s
    }
    assert late
    assert late <= set(hit), f"late {sorted(late)}, in the outage {hit}"
    assert book.late == len(late)
    assert_as_expected(outage, lane)
