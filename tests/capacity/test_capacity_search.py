"""A tiny capacity search on real stacks: two lanes, two steps each, short loads.

What is checked is the output's structure and its sanity, not a knee (that depends on the
machine): every step is a harness run of its own with Locust's files, the search made the
step its rule asks for, each step's figures agree with its round's checks, and a higher
offered rate never reports a lower p95 lateness by more than the run's stated noise.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import cli
from harness.capacity.results import CapacityResults, read_capacity
from harness.capacity.runner import Capacity, capacity_scenario
from harness.capacity.search import Outcome, knee
from harness.report.capacity import write_capacity_reports
from harness.results import read_results
from harness.scenario import parse_scenario

pytestmark = [pytest.mark.integration, pytest.mark.capacity, pytest.mark.timeout(300)]

TINY = """
name = "capacity-tiny"
description = "Two steps per lane: 5 parts 1 s apart, the API answering in 0.2 s."

[flow]
messages = 5
spacing_s = 1.0

[api.latency]
default = { model = "fixed", value_s = 0.2 }

[tolerances]
on_time_s = 1.0
missing_after_s = 10.0

[capacity]
load_s = 10
growth = 2
max_steps = 2
repeat = false
noise_s = 0.5

[[lanes]]
name = "solo"
pool = "solo"

[[lanes]]
name = "threads"
pool = "threads"
concurrency = 4
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario = capacity_scenario(parse_scenario(TINY, "capacity-tiny.toml"))
    directory = tmp_path_factory.mktemp("capacity")
    Capacity(scenario, directory, TINY).run()
    write_capacity_reports(directory)
    return directory


@pytest.fixture(scope="module")
def found(run_dir: Path) -> CapacityResults:
    return read_capacity(run_dir)


def test_every_lane_made_its_two_steps_side_by_side(found: CapacityResults) -> None:
    assert found.complete
    assert [c.lane for c in found.configs] == ["solo", "threads"]
    for config in found.configs:
        assert [s.round for s in config.steps] == [1, 2]
        assert config.stopped == "max-steps"
        assert not any(s.repeat for s in config.steps)


def test_each_step_follows_the_search_rule(found: CapacityResults) -> None:
    growth = found.settings.growth
    for config in found.configs:
        first, second = config.steps
        assert config.theory is not None
        expected = first.rate_rps * growth if first.passed else first.rate_rps / growth
        assert second.rate_rps == pytest.approx(max(expected, 1 / found.settings.load_s))
        outcomes = [(s.rate_rps, s.passed) for s in config.steps]
        assert config.knee_rps == max((r for r, kept in outcomes if kept), default=None)
        if config.knee_rps is not None:
            assert config.of_theory == pytest.approx(config.knee_rps / config.theory.bound_rps)


def test_each_step_agrees_with_its_rounds_own_checks(found: CapacityResults, run_dir: Path) -> None:
    for config in found.configs:
        for step in config.steps:
            stored = read_results(run_dir / step.run_dir)
            lane = next(lane for lane in stored.lanes if lane.lane == config.lane)
            assert stored.complete
            assert lane.expected_messages == step.parts_expected == step.requests * found.parts
            assert lane.delivered == step.delivered
            assert lane.ledger is not None
            assert lane.ledger.lost + lane.ledger.failed == step.lost
            # Locust paces each lane at its own rate, never beyond it (each of the round's
            # users may start one request at the load's end); on a busy machine, below it.
            users = stored.load.load["users"] if stored.load else 0
            assert 1 <= step.requests <= step.rate_rps * found.settings.load_s + users
            # Each lane's requests come 1 / rate apart (on a busy machine, further): the
            # first sent late by up to one interval shortens the span by that much.
            assert step.offered_rps is not None
            assert step.offered_rps <= step.rate_rps * (step.requests - 1) / (step.requests - 2)
            assert step.passed == (
                step.lost == 0
                and step.lateness_p95_s is not None
                and step.lateness_p95_s <= found.on_time_s
            )
            assert (run_dir / step.run_dir / "locust_stats.csv").stat().st_size > 0


def test_a_higher_rate_never_reports_a_lower_p95_beyond_the_noise(found: CapacityResults) -> None:
    for config in found.configs:
        steps = sorted(config.steps, key=lambda s: s.rate_rps)
        for low, high in itertools.pairwise(steps):
            assert low.lateness_p95_s is not None
            assert high.lateness_p95_s is not None
            assert high.lateness_p95_s >= low.lateness_p95_s - found.noise_s, config.lane


def test_the_theory_is_measured_from_the_steps(found: CapacityResults) -> None:
    for config in found.configs:
        bounds = config.theory
        assert bounds is not None
        assert bounds.mean_send_from == "measured"
        # Every send waits for the API's fixed latency, whatever else it does.
        assert bounds.mean_send_s >= 0.2
        assert bounds.slots == (1 if config.pool == "solo" else 4)
        assert bounds.bound_rps == min(
            b for b in (bounds.pool_rps, bounds.api_rps, bounds.cpu_rps) if b is not None
        )
        outcomes = [Outcome(s.rate_rps, s.passed, s.repeat) for s in config.steps]
        assert knee(outcomes).rate == config.knee_rps


def test_the_reports_hold_every_step_and_are_redrawn_the_same(
    found: CapacityResults, run_dir: Path
) -> None:
    markdown = (run_dir / "report.md").read_text()
    for config in found.configs:
        for step in config.steps:
            assert step.run_dir in markdown
    assert (run_dir / "plots" / "capacity.svg").read_text().startswith("<svg")
    before = (run_dir / "report.html").read_text()
    done = CliRunner().invoke(cli.app, ["report", str(run_dir)])
    assert done.exit_code == 0, done.output
    assert (run_dir / "report.html").read_text() == before
    assert json.loads((run_dir / "results.json").read_text())["kind"] == "capacity"
