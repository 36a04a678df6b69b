"""The report's own claim, measured: pool solo chosen by a settings value, `--concurrency
20` on the command line, a Redis broker (the machine's own), realistic latency.

Solo keeps up. The team's fix, gevent chosen the same way, is never monkey-patched and
runs nothing: every part is received, none started.
"""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import RunScenario, assert_as_expected, assert_exactly_once_in_order_on_time, parts

pytestmark = [pytest.mark.integration, pytest.mark.pools, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def outcome(run_shipped: RunScenario, external_redis_url: str) -> RunOutcome:
    return run_shipped("settings-solo", 0.25, broker_url=external_redis_url)


def test_solo_set_by_settings_with_concurrency_20_delivers_every_part_on_time(
    outcome: RunOutcome,
) -> None:
    assert outcome.lane("solo").pool_set_by == "settings"
    assert_exactly_once_in_order_on_time(outcome, "solo")


def test_gevent_set_by_settings_receives_every_part_and_starts_none(outcome: RunOutcome) -> None:
    history = parts(outcome, "gevent")
    assert len(history) == outcome.scenario.expected_messages
    assert all(m.received is not None and m.started is None for m in history)
    assert all(m.accepted == 0 for m in history)
    assert outcome.lane("gevent").missing == outcome.scenario.expected_messages
    assert_as_expected(outcome, "gevent")


def test_gevent_on_the_command_line_delivers_every_part_on_time(outcome: RunOutcome) -> None:
    assert_exactly_once_in_order_on_time(outcome, "gevent-argv")
