"""Latency jitter above the spacing: concurrent pools complete sends out of order, solo
keeps order (and falls behind)."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import CONCURRENT_POOLS, RunScenario, assert_as_expected, parts

pytestmark = [pytest.mark.integration, pytest.mark.pools, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def outcome(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("jittery-api", 0.25)


def test_solo_keeps_order(outcome: RunOutcome) -> None:
    lane = outcome.lane("solo")
    assert lane.delivered == outcome.scenario.expected_messages
    assert (lane.receipt_inversions, lane.response_inversions) == (0, 0)
    assert_as_expected(outcome, "solo")


@pytest.mark.parametrize("pool", CONCURRENT_POOLS)
def test_concurrent_pools_complete_sends_out_of_order(outcome: RunOutcome, pool: str) -> None:
    lane = outcome.lane(pool)
    assert lane.delivered == outcome.scenario.expected_messages
    assert lane.duplicated == 0
    assert lane.response_inversions > 0
    responses = [m.api_responded_at for m in parts(outcome, pool)]
    assert responses != sorted(responses), "answers came back in seq order"
    assert_as_expected(outcome, pool)
