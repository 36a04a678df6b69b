"""Capacity: the search, the theory, the grid and the command line's refusals, in isolation.

The search is driven by made-up outcomes (a configuration that keeps every rate up to a
true knee on time, and none above); the whole search on real stacks is in
tests/capacity/.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness import cli
from harness.capacity.results import CapacityResults, ConfigResult, StepResult, read_capacity
from harness.capacity.runner import (
    Capacity,
    CapacityError,
    capacity_scenario,
    equal_knees,
    round_scenario,
    step_lateness,
    with_options,
)
from harness.capacity.search import Next, Outcome, knee, next_step
from harness.capacity.theory import Theory, mean_latency, theory
from harness.history import MessageHistory
from harness.report.capacity import (
    capacity_svg,
    knee_rows,
    render_html,
    render_markdown,
    write_capacity_reports,
)
from harness.scenario import CapacitySettings, load_scenario, parse_scenario

pytestmark = pytest.mark.unit


def search(true_knee: float, config: CapacitySettings, first: float, least: float) -> list[Outcome]:
    """Run the search against a configuration that keeps exactly the rates <= true_knee."""
    steps: list[Outcome] = []
    for _ in range(100):
        step, _stopped = next_step(steps, config, first, least)
        if step is None:
            return steps
        steps.append(Outcome(step.rate, step.rate <= true_knee, step.repeat))
    raise AssertionError("the search did not end")


@settings(max_examples=300, deadline=None)
@given(
    true_knee=st.floats(0.001, 2000),
    first=st.floats(0.01, 100),
    max_steps=st.integers(1, 12),
    resolution=st.floats(0.05, 1),
    growth=st.floats(1.2, 4),
)
def test_the_search_is_bounded_and_its_knee_lies_below_the_true_one(
    true_knee: float, first: float, max_steps: int, resolution: float, growth: float
) -> None:
    config = CapacitySettings(max_steps=max_steps, resolution=resolution, growth=growth)
    least = 1 / config.load_s
    steps = search(true_knee, config, first, least)
    assert 1 <= len(steps) <= max_steps
    assert all(least <= s.rate <= config.max_rate for s in steps)
    found = knee(steps)
    if found.rate is not None:
        assert found.rate <= true_knee
    if found.above is not None:
        assert found.above > true_knee
    _, stopped = next_step(steps, config, first, least)
    if stopped == "bracketed":
        assert found.rate is not None
        assert found.above is not None
        assert found.above <= found.rate * (1 + resolution) * (1 + 1e-9)


def test_grow_until_not_kept_then_bisect_then_repeat_the_knee() -> None:
    config = CapacitySettings(growth=2, resolution=0.25, max_steps=8)
    steps = search(3.0, config, first=1.0, least=0.01)
    rates = [round(s.rate, 3) for s in steps]
    # 1 kept, 2 kept, 4 not; bisect: 2.828 kept, 3.364 not, 3.084 not (3.084/2.828 < 1.25)
    assert rates[:3] == [1.0, 2.0, 4.0]
    assert rates[3] == round(math.sqrt(8), 3)
    assert steps[-1].repeat
    assert steps[-1].rate == knee(steps).rate
    assert [s.repeat for s in steps].count(True) == 1


def test_a_first_rate_not_kept_comes_down_and_stops_at_the_least_rate() -> None:
    config = CapacitySettings(growth=2, max_steps=10, repeat=False)
    steps = search(0.0, config, first=1.0, least=0.1)  # nothing is ever kept on time
    assert [s.rate for s in steps] == pytest.approx([1.0, 0.5, 0.25, 0.125, 0.1])
    assert next_step(steps, config, 1.0, 0.1) == (None, "min-rate")
    assert knee(steps).rate is None


def test_a_repeat_not_kept_takes_the_knee_down_and_marks_it_unstable() -> None:
    steps = [Outcome(1, True), Outcome(2, True), Outcome(4, False), Outcome(2, False, True)]
    found = knee(steps)
    assert (found.rate, found.above, found.stable) == (1, 2, False)


def test_the_search_stops_at_the_highest_rate_allowed() -> None:
    config = CapacitySettings(growth=2, max_rate=4, max_steps=10, repeat=False)
    steps = search(1000, config, first=1, least=0.1)
    assert [s.rate for s in steps] == [1, 2, 4]
    assert next_step(steps, config, 1, 0.1) == (None, "max-rate")


def test_theory_takes_the_lowest_bound_and_solo_has_one_slot() -> None:
    solo = theory(
        pool="solo", concurrency=8, parts=22, mean_send_s=0.5, measured=True,
        api_mps=80, cpu_s_per_part=None, cores=2,
    )  # fmt: skip
    assert solo.slots == 1
    assert solo.pool_rps == pytest.approx(1 / 0.5 / 22)
    assert solo.limited_by == "pool"
    assert solo.bound_rps == solo.pool_rps
    gevent = theory(
        pool="gevent", concurrency=1000, parts=22, mean_send_s=0.5, measured=True,
        api_mps=80, cpu_s_per_part=0.01, cores=2,
    )  # fmt: skip
    assert gevent.api_rps == pytest.approx(80 / 22)
    assert gevent.cpu_rps == pytest.approx(1 / 0.01 / 22)  # one process: one core
    assert gevent.limited_by == "api"
    prefork = theory(
        pool="prefork", concurrency=8, parts=22, mean_send_s=0.01, measured=True,
        api_mps=None, cpu_s_per_part=0.01, cores=2,
    )  # fmt: skip
    assert prefork.cpu_rps == pytest.approx(2 / 0.01 / 22)
    assert prefork.limited_by == "cpu"


@pytest.mark.parametrize(
    ("model", "mean"),
    [
        ({"model": "none"}, 0.0),
        ({"model": "fixed", "value_s": 0.4}, 0.4),
        ({"model": "uniform", "low_s": 0.3, "high_s": 0.8}, 0.55),
        ({"model": "lognormal", "median_s": 0.5, "sigma": 0.5}, 0.5 * math.exp(0.125)),
    ],
)
def test_a_latency_models_mean_is_the_mocks_own(model: dict[str, object], mean: float) -> None:
    assert mean_latency(model) == pytest.approx(mean, rel=0.02, abs=1e-9)


def _config(lane: str, knee_rps: float | None, above: float | None) -> ConfigResult:
    return ConfigResult(
        lane=lane, pool="threads", concurrency=4, settings={}, steps=[], knee_rps=knee_rps,
        above_rps=above, resolution=None, stable=True, repeat_p95_spread_s=None,
        stopped="bracketed", theory=None, of_theory=None,
    )  # fmt: skip


def test_knees_whose_ranges_overlap_are_equal() -> None:
    configs = [
        _config("a", 1.0, 1.2),
        _config("b", 1.1, 1.4),
        _config("c", 2.0, 2.4),
        _config("d", 2.3, None),
        _config("e", None, 0.1),
    ]
    assert equal_knees(configs) == [["a", "b"], ["c", "d"]]


def test_a_lost_part_counts_as_late_by_the_grace() -> None:
    def part(seq: int, late: float) -> MessageHistory:
        return MessageHistory(
            lane="l", message_id=f"m{seq}", correlation_id="c", seq=seq, queued_at=100.0,
            countdown_s=seq, api_received_at=100.0 + seq + late,
        )  # fmt: skip

    assert step_lateness([part(0, 0.1), part(1, 0.2)], lost=2, grace_s=30) == pytest.approx(
        [0.1, 0.2, 30, 30]
    )


def test_the_grid_expands_concurrencies_and_refuses_what_it_cannot_measure() -> None:
    incident, _ = load_scenario("incident")
    grid = capacity_scenario(with_options(incident, concurrencies=[2, 8]))
    assert [(lane.name, lane.concurrency) for lane in grid.lanes] == [
        ("solo", None), ("prefork-2", 2), ("prefork-8", 8), ("threads-2", 2),
        ("threads-8", 8), ("gevent-2", 2), ("gevent-8", 8),
    ]  # fmt: skip
    assert all(lane.expect == "pass" for lane in grid.lanes)
    faulty, _ = load_scenario("worker-killed")
    with pytest.raises(CapacityError, match=r"remove its \[\[faults\]\]"):
        capacity_scenario(faulty)
    loaded, _ = load_scenario("load-steady")
    with pytest.raises(CapacityError, match=r"remove its \[load\] table"):
        capacity_scenario(loaded)
    with pytest.raises(CapacityError, match="load_s"):
        with_options(incident, load_s=-1)


def test_a_round_gives_each_lane_its_rate_and_a_grace_that_lets_twice_the_knee_drain() -> None:
    incident, _ = load_scenario("incident")
    wanted = {"solo": Next(0.05), "gevent": Next(1.2, repeat=True)}
    scenario = round_scenario(capacity_scenario(incident), wanted, load_s=60)
    assert [lane.name for lane in scenario.lanes] == ["solo", "gevent"]
    assert scenario.load is not None
    assert scenario.load.rates == {"solo": 0.05, "gevent": 1.2}
    assert scenario.load.fixtures_share == 1.0
    assert scenario.load.workers == 0
    assert scenario.tolerances.missing_after_s == incident.tolerances.missing_after_s + 60


def test_a_scenario_table_is_validated_and_scaled() -> None:
    text = """
name = "c"
description = "d"
[tolerances]
on_time_s = 2.0
[capacity]
load_s = 40
noise_s = 0.4
max_rate = 10
[[lanes]]
name = "solo"
pool = "solo"
"""
    scenario = parse_scenario(text, "c.toml").scaled(0.5)
    assert scenario.capacity is not None
    assert (scenario.capacity.load_s, scenario.capacity.noise_s) == (20, 0.2)
    assert scenario.capacity.max_rate == 20
    with pytest.raises(ValueError, match=r"capacity\.max_steps"):
        parse_scenario(text.replace("max_rate = 10", "max_steps = 0"), "c.toml")


def test_rates_need_a_steady_load_in_one_process_for_every_lane() -> None:
    base = """
name = "r"
description = "d"
[tolerances]
on_time_s = 2.0
[load]
users = 1
run_time_s = 10
rates = { solo = 0.5 }
[[lanes]]
name = "solo"
pool = "solo"
"""
    assert parse_scenario(base, "r.toml").load.rates == {"solo": 0.5}  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="rates need shape = 'steady'"):
        parse_scenario(base.replace("users = 1", 'users = 1\nshape = "spike"'), "r.toml")
    with pytest.raises(ValueError, match="rates need one Locust process"):
        parse_scenario(base.replace("users = 1", "users = 1\nworkers = 2"), "r.toml")
    with pytest.raises(ValueError, match="give a rate for every lane"):
        parse_scenario(base.replace("{ solo = 0.5 }", "{ gevent = 0.5 }"), "r.toml")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["worker-killed"], "remove its [[faults]]"),
        (["incident", "--load-s", "0"], "load_s"),
        (["incident", "--max-steps", "99"], "max_steps"),
        (["incident", "--concurrency", "0"], "concurrencies"),
        (["incident", "--pool", "nope"], "has no lane or pool"),
    ],
)
def test_bad_capacity_options_exit_2_naming_the_problem(
    args: list[str], says: str, tmp_path: Path
) -> None:
    done = CliRunner().invoke(cli.app, ["capacity", *args, "--out", str(tmp_path / "run")])
    assert done.exit_code == 2, done.output
    assert says in " ".join(done.output.split())
    assert not (tmp_path / "run").exists()


def _results() -> CapacityResults:
    step = StepResult(
        round=1, rate_rps=0.5, offered_rps=0.5, repeat=False, requests=5, parts_expected=110,
        delivered=108, lost=2, late=9, duplicated=0, out_of_order=1, lateness_p50_s=0.1,
        lateness_p95_s=30.0, lateness_max_s=30.0, p95_at_least=True, passed=False, mean_send_s=0.6,
        worker_cpu_s_per_part=0.011, machine_busy=0.4, run_dir="steps/round-1",
    )  # fmt: skip
    kept = step.model_copy(
        update={"rate_rps": 0.25, "lost": 0, "lateness_p95_s": 0.2, "passed": True,
                "p95_at_least": False, "round": 2, "run_dir": "steps/round-2"}
    )  # fmt: skip
    config = _config("solo", 0.25, 0.5).model_copy(update={"steps": [step, kept]})
    incident, _ = load_scenario("incident")
    return CapacityResults(
        scenario="incident", description="d <b>", time_scale=1, complete=True, started_at=0,
        finished_at=1, settings=CapacitySettings(), parts=22, spacing_s=2, on_time_s=2,
        missing_after_s=90, latency={"model": "uniform"}, api_mps=80, cores=2, busy_before=0.5,
        noise_s=0.5,
        configs=[config], equal=[], versions={"celery": "5.7.0"},
        scenario_definition=incident.model_dump(mode="json"),
    )  # fmt: skip


def test_the_reports_show_every_step_and_escape_what_comes_from_files() -> None:
    results = _results()
    markdown = render_markdown(results)
    assert ">=30.00" in markdown.replace("\\>", ">")
    assert "steps/round-2" in markdown
    page = render_html(results, capacity_svg(results))
    assert "d &lt;b&gt;" in page
    assert "<svg" in page
    assert knee_rows(results)[0][3] == "0.25"
    assert knee_rows(results)[0][5] == "0.5"


def _fake_round(search: Capacity, kept_up_to: float) -> None:
    """Rounds that take no time: a step is kept on time at rates up to `kept_up_to`."""

    def run_round(number: int, wanted: dict[str, Next]) -> dict[str, StepResult]:
        steps = {}
        for name, step in wanted.items():
            kept = step.rate <= kept_up_to
            result = (
                _results()
                .configs[0]
                .steps[1 if kept else 0]
                .model_copy(update={"round": number, "rate_rps": step.rate, "repeat": step.repeat})
            )
            search.configs[name].steps.append(result)
            steps[name] = result
        return steps

    search._round = run_round  # type: ignore[method-assign]


def test_the_loop_writes_every_step_and_ends_within_its_steps(tmp_path: Path) -> None:
    incident, _ = load_scenario("incident")
    search = Capacity(capacity_scenario(incident.only(["solo", "gevent"])), tmp_path, None)
    _fake_round(search, kept_up_to=0.05)
    written: list[tuple[bool, int]] = []

    def after_round(_: object) -> None:
        stored = read_capacity(tmp_path)  # on disk after each round, marked incomplete
        written.append((stored.complete, sum(len(c.steps) for c in stored.configs)))

    done = search.run(on_round=after_round)
    assert written
    assert all(not complete for complete, _ in written)
    assert [steps for _, steps in written] == sorted({steps for _, steps in written})
    assert done.complete
    assert read_capacity(tmp_path) == done
    for config in done.configs:
        assert 1 <= len(config.steps) <= done.settings.max_steps
        assert config.knee_rps is None or config.knee_rps <= 0.05
        assert config.stopped is not None


def test_no_round_begins_that_would_end_past_the_budget(tmp_path: Path) -> None:
    incident, _ = load_scenario("incident")
    budget = with_options(incident.only(["solo"]), budget_s=10)  # less than one round
    search = Capacity(capacity_scenario(budget), tmp_path, None)
    _fake_round(search, kept_up_to=1)
    done = search.run()
    assert done.configs[0].steps == []
    assert done.configs[0].stopped == "budget"


@pytest.mark.parametrize(
    "model", [CapacityResults, ConfigResult, StepResult, Theory, CapacitySettings]
)
def test_the_docs_document_every_capacity_field(model: type[CapacityResults]) -> None:
    """The how-to's `[capacity]` table and the results.json reference's capacity section."""
    docs = Path(__file__).parents[2] / "docs"
    how_to = (docs / "how-to" / "find-capacity.md").read_text()
    reference = (docs / "reference" / "results.md").read_text()
    start = reference.index("\n## Capacity runs")
    section = reference[start : reference.index("\n## ", start + 1)]
    documented = set(re.findall(r"`(\w+)`", how_to + section))
    assert set(model.model_fields) - documented == set()


def test_the_committed_sample_is_drawn_again_from_its_own_files(tmp_path: Path) -> None:
    """reports/capacity holds a real full-length run on the default grid."""
    stored = Path(__file__).parents[2] / "reports" / "capacity"
    results = read_capacity(stored)
    assert results.complete
    assert results.time_scale == 1
    assert [c.pool for c in results.configs] == ["solo", "prefork", "threads", "gevent"]
    for name in ("results.json", "scenario.toml"):
        (tmp_path / name).write_bytes((stored / name).read_bytes())
    write_capacity_reports(tmp_path)
    # Drawing is deterministic: a sample that differs was not redrawn after a report change.
    for drawn in ("report.md", "report.html", "plots/capacity.svg"):
        assert (tmp_path / drawn).read_bytes() == (stored / drawn).read_bytes(), drawn


def test_the_last_step_is_kept_for_the_repeat() -> None:
    config = CapacitySettings(growth=2, max_steps=3, max_rate=1000)
    steps = search(100.0, config, first=1.0, least=0.01)
    assert [(s.rate, s.repeat) for s in steps] == [(1.0, False), (2.0, False), (2.0, True)]
    assert next_step(steps, config, 1.0, 0.01) == (None, "max-steps")
