"""The pool regression suite: shipped scenarios run on real stacks, judged per message.

Each module runs one scenario once, every lane side by side (the pytest plugin's
`stagger_run`, on the CLI's code path), and its tests, parametrised by pool, assert on
that run. Scenarios run time scaled; every tolerance comes from the scaled scenario.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.history import MessageHistory
from harness.run import RunOutcome
from harness.scenario import Scenario

POOLS = ("solo", "prefork", "threads", "gevent")
CONCURRENT_POOLS = ("prefork", "threads", "gevent")
each_pool = pytest.mark.parametrize("pool", POOLS)

RunScenario = Callable[..., RunOutcome]


@pytest.fixture(scope="session")
def run_shipped(stagger_run: RunScenario) -> RunScenario:
    """Run a shipped scenario at a time scale, once per session (the plugin's `stagger_run`)."""

    def run(name: str, time_scale: float, broker_url: str | None = None) -> RunOutcome:
        return stagger_run(name, time_scale=time_scale, broker_url=broker_url)

    return run


def parts(outcome: RunOutcome, lane: str) -> list[MessageHistory]:
    """The lane's parts in seq order (one request per lane in these scenarios)."""
    return sorted(outcome.history[lane], key=lambda message: message.seq)


def assert_exactly_once_in_order_on_time(outcome: RunOutcome, lane: str) -> None:
    """Every part reached the API exactly once, in seq order, within the scenario's bounds."""
    scenario: Scenario = outcome.scenario
    tolerances = scenario.tolerances
    history = parts(outcome, lane)
    assert [m.seq for m in history] == list(range(scenario.expected_messages))
    for message in history:
        assert message.accepted == 1, f"{lane} part {message.seq}: {message.accepted} accepted"
        assert message.lateness_s is not None
        assert -tolerances.early_s <= message.lateness_s <= tolerances.on_time_s, (
            f"{lane} part {message.seq}: {message.lateness_s:.3f} s late, "
            f"allowed {-tolerances.early_s:g}..{tolerances.on_time_s:g} s"
        )
    receipts = [m.api_received_at for m in history]
    assert receipts == sorted(receipts), f"{lane}: parts reached the API out of seq order"
    result = outcome.lane(lane)
    assert (result.verdict, result.as_expected) == ("pass", True), result.reasons


def assert_as_expected(outcome: RunOutcome, lane: str) -> None:
    """The lane's verdict is the one its scenario expects, with the reasons it names."""
    result = outcome.lane(lane)
    assert outcome.results.complete
    assert result.as_expected, result.mismatch
