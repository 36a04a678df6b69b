"""Meta's pair rate limit drained for a window: without retries the parts over it fail
with code 131056, on every pool; retried with backoff they are all sent, late."""

from __future__ import annotations

import math

import pytest

from harness.history import MessageHistory
from harness.run import RunOutcome

from .conftest import RunScenario, assert_as_expected, each_pool, fault_of, ledger, parts

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]

PAIR_RATE_HIT = 131056  # Meta's "pair rate limit hit"


@pytest.fixture(scope="module")
def limited(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("api-rate-limit", 0.25)


def refused(message: MessageHistory) -> bool:
    """The API answered one of the part's sends with the pair rate limit's code."""
    return any(r.error_code == PAIR_RATE_HIT for r in message.api_requests)


def assert_the_limit_held(outcome: RunOutcome, lane: str) -> None:
    """No more sends accepted in the window than the token bucket allows, and none refused
    outside it: the parts were held back by the limit, not by anything else."""
    window = fault_of(outcome, "api-rate-limit", None)
    rate = window.pair_rate
    assert rate is not None
    requests = [r for m in parts(outcome, lane) for r in m.api_requests]
    inside = [r for r in requests if window.begun_at <= r.received_at < window.done_at]
    assert any(r.error_code == PAIR_RATE_HIT for r in inside), "no send met the limit"
    assert all(
        r.error_code != PAIR_RATE_HIT
        for r in requests
        if not window.begun_at <= r.received_at <= window.done_at
    )
    # Counted only while the mock surely had the limit: a send between the fault's start
    # and the mock's answer to the switch may have met the old behaviours.
    assert window.in_effect_from is not None
    assert window.in_effect_until is not None
    surely = [r for r in inside if window.in_effect_from <= r.received_at < window.in_effect_until]
    allowed = rate.burst + math.ceil(window.duration_s / rate.period_s)
    assert sum(r.outcome == "accepted" for r in surely) <= allowed


@each_pool
def test_without_retries_the_parts_over_the_limit_fail_with_metas_code(
    limited: RunOutcome, pool: str
) -> None:
    assert_the_limit_held(limited, pool)
    book = ledger(limited, pool)
    history = parts(limited, pool)
    failed = [m.seq for m in history if m.status == "failed"]
    assert failed
    assert failed == [m.seq for m in history if refused(m)]
    assert all(m.attempts == 1 and m.error_code == PAIR_RATE_HIT for m in history if refused(m))
    assert book.failed_codes == {str(PAIR_RATE_HIT): len(failed)}
    assert (book.lost, book.duplicated) == (0, 0)
    assert_as_expected(limited, pool)


@each_pool
def test_retried_with_backoff_every_part_is_sent_once_the_held_back_ones_late(
    limited: RunOutcome, pool: str
) -> None:
    lane = f"{pool}-retry"
    assert_the_limit_held(limited, lane)
    book = ledger(limited, lane)
    history = parts(limited, lane)
    assert (book.failed, book.lost, book.duplicated) == (0, 0, 0)
    assert [m.accepted for m in history] == [1] * limited.scenario.expected_messages
    on_time_s = limited.scenario.tolerances.on_time_s
    late = {m.seq for m in history if m.lateness_s is not None and m.lateness_s > on_time_s}
    held = {m.seq for m in history if refused(m)}
    assert late
    assert late <= held, f"late {sorted(late)}, held back by the limit {sorted(held)}"
    assert book.late == len(late)
    assert_as_expected(limited, lane)
