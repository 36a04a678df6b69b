"""An API slower than the spacing: solo falls behind by (latency - spacing) a part; the
concurrent pools keep up."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import (
    CONCURRENT_POOLS,
    RunScenario,
    assert_as_expected,
    assert_exactly_once_in_order_on_time,
    parts,
)

pytestmark = [pytest.mark.integration, pytest.mark.pools, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def outcome(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("slow-api", 0.25)


def test_solo_delivers_every_part_once_but_later_by_latency_minus_spacing_each(
    outcome: RunOutcome,
) -> None:
    scenario = outcome.scenario
    latency = scenario.api["latency"]["default"]["value_s"]
    behind = latency - scenario.flow.spacing_s  # how much later each part starts than the last
    history = parts(outcome, "solo")
    assert [m.accepted for m in history] == [1] * scenario.expected_messages
    for message in history:
        assert message.lateness_s is not None
        expected = message.seq * behind
        assert abs(message.lateness_s - expected) <= scenario.tolerances.on_time_s, (
            f"part {message.seq}: {message.lateness_s:.3f} s late, expected {expected:.3f} s"
        )
    assert outcome.lane("solo").reason_codes == ["late"]
    assert_as_expected(outcome, "solo")


@pytest.mark.parametrize("pool", CONCURRENT_POOLS)
def test_concurrent_pools_stay_on_time(outcome: RunOutcome, pool: str) -> None:
    assert_exactly_once_in_order_on_time(outcome, pool)
