"""The seed's report as production ran it: every pool delivers every part on time."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import RunScenario, assert_exactly_once_in_order_on_time, each_pool

# The suite's core: every pool delivers every part on time. It stays in the default selection.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.pools,
    pytest.mark.core,
    pytest.mark.timeout(300),
]


@pytest.fixture(scope="module")
def outcome(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("incident", 0.25)


@each_pool
def test_every_part_arrives_exactly_once_in_order_and_on_time(
    outcome: RunOutcome, pool: str
) -> None:
    assert_exactly_once_in_order_on_time(outcome, pool)
