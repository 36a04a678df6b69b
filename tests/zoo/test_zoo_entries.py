"""The bug zoo as regression tests: each entry's scenario run on a real stack, once per
session, and each of its lanes judged by its role: a bug lane shows the bug (it fails
with every reason the entry names), a fix lane shows the fix (it passes, or fails for
none of them), and every lane reaches the verdict its scenario expects. A bug lane the
entry says varies (`zoo.varies`, with how often) shows the bug or recovers: every part
sent exactly once.

Entries run at half their length, or at their `min_time_scale` where a timer or a
restart that does not scale decides the outcome (kombu's restore sweep, RabbitMQ's
consumer_timeout check, Celery's reconnect); those also carry the `zoo_full` marker, and
entries with a lane on RabbitMQ the `zoo_rabbitmq` marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.expect import assert_as_expected
from harness.pytest_plugin import RunScenario
from harness.report.zoo import lane_outcome
from harness.scenario import Scenario
from harness.scenario.zoo_files import zoo_entries

pytestmark = [pytest.mark.integration, pytest.mark.zoo, pytest.mark.timeout(600)]

SCALE = 0.5
ENTRIES = {scenario.zoo.id: (scenario, path) for scenario, path in zoo_entries() if scenario.zoo}


def scale_of(scenario: Scenario) -> float:
    return max(SCALE, scenario.min_time_scale or 0.0)


def marks_of(scenario: Scenario) -> list[pytest.MarkDecorator]:
    """`zoo_full` for an entry at full length, `zoo_rabbitmq` for one with a lane on
    RabbitMQ (it needs rabbitmq-server): CI spreads the set over its runners by them."""
    marks = [pytest.mark.zoo_full] if scale_of(scenario) >= 1 else []
    if any(lane.broker == "rabbitmq" for lane in scenario.lanes):
        marks.append(pytest.mark.zoo_rabbitmq)
    return marks


LANES = [
    pytest.param(entry, lane, marks=marks_of(scenario))
    for entry, (scenario, _) in ENTRIES.items()
    for lane in [*scenario.zoo.bug_lanes, *scenario.zoo.fix_lanes]  # type: ignore[union-attr]
]


@pytest.mark.parametrize(("entry", "lane"), LANES)
def test_each_lane_shows_the_bug_or_the_fix(
    stagger_run: RunScenario, entry: str, lane: str
) -> None:
    """The entry runs once (the plugin keeps each run for the session), its lanes in turn."""
    scenario, path = ENTRIES[entry]
    outcome = stagger_run(Path(path), time_scale=scale_of(scenario))
    zoo = scenario.zoo
    assert zoo is not None
    result = outcome.lane(lane)
    shown = lane_outcome(zoo, result, outcome.results.complete)
    if lane in zoo.varies and shown == "not reproduced":
        # The other outcome its runs came to (`zoo.varies` says how often): recovered,
        # every part sent exactly once.
        counts = (result.delivered, result.missing, result.duplicated)
        assert counts == (result.expected_messages, 0, 0), (counts, result.reasons)
        return
    wanted = {"bug": "reproduced" if zoo.status == "reproduced" else "not reproduced"}
    assert shown == wanted.get(zoo.role(lane) or "", "fixed"), (shown, result.reasons)
    assert_as_expected(outcome, lane)
