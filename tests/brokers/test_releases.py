"""Lanes on older Celery releases next to the locked one, each from its own environment.

The incident is on time and a SIGKILLed worker loses its ETA parts on Redis on every
release: it is the broker's ack emulation, not a release's bug.
"""

from __future__ import annotations

from importlib import metadata

import pytest

from harness.run import RunOutcome
from tests.pools.conftest import (
    assert_as_expected,
    assert_exactly_once_in_order_on_time,
    assert_held_parts_never_run,
)

from .conftest import RunScenario, faults

pytestmark = [pytest.mark.integration, pytest.mark.brokers, pytest.mark.timeout(600)]
RELEASES = ["5-3", "5-5", "locked"]


@pytest.fixture(scope="module")
def outcome(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("releases", 0.25)


@pytest.mark.parametrize("release", RELEASES)
def test_each_lane_runs_the_release_it_pins(outcome: RunOutcome, release: str) -> None:
    for kind in ("incident", "killed"):
        name = f"{kind}-{release}"
        lane, result = outcome.scenario.lane(name), outcome.lane(name)
        expected = lane.pins or {p: metadata.version(p) for p in ("celery", "kombu")}
        assert result.pins == lane.pins
        assert {p: result.versions[p] for p in expected} == expected, name


@pytest.mark.parametrize("release", RELEASES)
def test_the_incident_is_on_time_on_every_release(outcome: RunOutcome, release: str) -> None:
    assert_exactly_once_in_order_on_time(outcome, f"incident-{release}")


@pytest.mark.parametrize("release", RELEASES)
def test_a_killed_worker_loses_the_parts_it_received_on_every_release(
    outcome: RunOutcome, release: str
) -> None:
    lane = f"killed-{release}"
    done = faults(outcome, lane)
    assert_held_parts_never_run(outcome, lane, done["kill-worker"], done["start-worker"])
    assert_as_expected(outcome, lane)
