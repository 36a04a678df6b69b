"""An API slower than the spacing: solo falls behind by (latency - spacing) a part, plus
its own cost per part; the concurrent pools keep up."""

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
    """Part n waits for the n sends before it, so it is late by n x (send cycle - spacing).

    The cycle is the API's latency plus the worker's own cost per part (its timer, the task,
    the HTTP round trip), which is measured here rather than assumed: over 21 parts a few
    tens of ms each add up past the tolerance, and that cost is the machine's, not the pool's.
    """
    scenario = outcome.scenario
    latency = scenario.api["latency"]["default"]["value_s"]
    spacing = scenario.flow.spacing_s
    tolerance = scenario.tolerances.on_time_s
    history = parts(outcome, "solo")
    assert [m.accepted for m in history] == [1] * scenario.expected_messages
    starts = [m.started for m in history]
    assert all(start is not None for start in starts)
    cycle = (starts[-1] - starts[0]) / (len(starts) - 1)  # type: ignore[operator]
    assert cycle >= latency, f"solo started a part every {cycle:.3f} s: faster than {latency} s"
    for message in history:
        assert message.lateness_s is not None
        floor = message.seq * (latency - spacing)  # what the latency alone makes it
        expected = message.seq * (cycle - spacing)
        assert message.lateness_s >= floor - tolerance, (
            f"part {message.seq}: {message.lateness_s:.3f} s late, under the {floor:.3f} s "
            f"that {latency} s answers {spacing} s apart make it"
        )
        assert abs(message.lateness_s - expected) <= tolerance, (
            f"part {message.seq}: {message.lateness_s:.3f} s late, expected {expected:.3f} s "
            f"at one send every {cycle:.3f} s"
        )
    assert outcome.lane("solo").reason_codes == ["late"]
    assert_as_expected(outcome, "solo")


@pytest.mark.parametrize("pool", CONCURRENT_POOLS)
def test_concurrent_pools_stay_on_time(outcome: RunOutcome, pool: str) -> None:
    assert_exactly_once_in_order_on_time(outcome, pool)
