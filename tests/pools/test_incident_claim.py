"""The report's own claim, measured: pool solo chosen by a settings value, `--concurrency
20` on the command line, a Redis broker (the machine's own), realistic latency.

Solo keeps up. The team's fix, gevent chosen the same way, is never monkey-patched and
runs nothing: every part is received, none started; eventlet, the same.
"""

from __future__ import annotations

import json

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


@pytest.mark.parametrize("pool", ["gevent", "eventlet"])
def test_a_green_pool_set_by_settings_receives_every_part_and_starts_none(
    outcome: RunOutcome, pool: str
) -> None:
    history = parts(outcome, pool)
    assert len(history) == outcome.scenario.expected_messages
    assert all(m.received is not None and m.started is None for m in history)
    assert all(m.accepted == 0 for m in history)
    assert outcome.lane(pool).missing == outcome.scenario.expected_messages
    assert_as_expected(outcome, pool)


@pytest.mark.parametrize("pool", ["gevent", "eventlet"])
def test_a_green_pool_on_the_command_line_delivers_every_part_on_time(
    outcome: RunOutcome, pool: str
) -> None:
    assert_exactly_once_in_order_on_time(outcome, f"{pool}-argv")


@pytest.mark.parametrize(
    ("lane", "patched"),
    [("gevent", False), ("gevent-argv", True), ("eventlet", False), ("eventlet-argv", True)],
)
def test_only_a_green_pool_on_the_command_line_is_monkey_patched(
    outcome: RunOutcome, lane: str, patched: bool
) -> None:
    """As each worker reported it at start-up: Celery patches only for `-P` on argv."""
    lines = (outcome.run_dir / "events.jsonl").read_text().splitlines()
    ready = [
        event
        for event in map(json.loads, lines)
        if event["lane"] == lane and event["event"] == "worker_ready"
    ]
    pool = outcome.lane(lane).pool
    assert [event["pool"] for event in ready] == [pool]
    assert ready[0][f"{pool}_patched"] is patched
