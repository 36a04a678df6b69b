"""The `[zoo]` table's validation, the zoo's entries, `harness zoo` listing them, and the
zoo report's outcome per lane."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from harness import cli
from harness.report.zoo import ZooCell, lane_outcome, setup_of, zoo_summary
from harness.results import LaneResult, read_results
from harness.scenario import LaneScenario, Scenario, ScenarioError, validate_scenario
from harness.scenario.zoo import tracker_label
from harness.scenario.zoo_files import zoo_entries, zoo_entry, zoo_paths

pytestmark = pytest.mark.unit

ZOO = {
    "id": "some-bug",
    "title": "A bug",
    "trackers": ["https://github.com/celery/kombu/issues/337"],
    "mechanism": "How it happens.",
    "affects": {"releases": ["kombu 5.7.0"], "pools": ["solo"], "brokers": ["valkey"]},
    "reasons": ["duplicated"],
    "bug_lanes": ["bug"],
    "fix_lanes": ["fix"],
    "fixed_by": "a setting",
    "status": "reproduced",
    "tried": "2 runs: duplicated in both.",
}


def scenario(**zoo: Any) -> dict[str, Any]:
    return {
        "name": "zoo-some-bug",
        "description": "A bug beside its fix.",
        "tolerances": {"on_time_s": 2.0},
        "lanes": [
            {"name": "bug", "pool": "solo", "expect": "fail", "because": ["duplicated"]},
            {"name": "fix", "pool": "solo"},
            {"name": "other", "pool": "threads"},
        ],
        "zoo": ZOO | zoo,
    }


def test_a_valid_table_reads_with_each_lane_s_role() -> None:
    read = validate_scenario(scenario(), "zoo.toml")
    assert read.zoo is not None
    assert [read.zoo.role(n) for n in ("bug", "fix", "other")] == ["bug", "fix", None]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"bug_lanes": ["nope"]}, "zoo.bug_lanes: ['nope'] are not lanes"),
        ({"fix_lanes": ["nope"]}, "zoo.fix_lanes: ['nope'] are not lanes"),
        ({"fix_lanes": ["bug"]}, "both bug_lanes and fix_lanes"),
        ({"bug_lanes": []}, "bug_lanes"),
        ({"reasons": ["missing"]}, "must expect = 'fail' with because including ['missing']"),
        ({"bug_lanes": ["other"], "fix_lanes": []}, "lane other must expect = 'fail'"),
        ({"fix_lanes": ["bug"], "bug_lanes": ["other"], "status": "not reproduced"}, "bug's own"),
        ({"trackers": ["celery#337"]}, "trackers"),
        ({"trackers": []}, "trackers"),
        ({"status": "fixed"}, "status"),
        ({"tried": ""}, "tried"),
        ({"affects": {"releases": ["x"], "pools": ["nope"], "brokers": ["valkey"]}}, "pools"),
        ({"colour": "red"}, "colour"),
        ({"varies": {"fix": "1 of 2 runs"}}, "zoo.varies: ['fix'] are not bug_lanes"),
        ({"varies": {"bug": "1 of 2 runs"}}, "at least one must show the bug in every run"),
        ({"varies": {"bug": "1 of 2"}, "status": "not reproduced"}, "only a reproduced entry"),
    ],
)
def test_a_wrong_table_is_refused_naming_the_field(change: dict[str, Any], said: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(said)):
        validate_scenario(scenario(**change), "zoo.toml")


def test_an_entry_not_reproduced_may_expect_its_bug_lanes_to_pass() -> None:
    data = scenario(status="not reproduced", bug_lanes=["other"], fix_lanes=[])
    assert validate_scenario(data, "zoo.toml").zoo is not None


def test_a_bug_lane_may_vary_beside_one_that_does_not() -> None:
    data = scenario(
        bug_lanes=["bug", "other"],
        varies={"other": "the bug in 1 of 2 runs; in the other every part once"},
    )
    data["lanes"][2] |= {"expect": "fail", "because": ["duplicated"]}
    read = validate_scenario(data, "zoo.toml")
    assert read.zoo is not None
    assert list(read.zoo.varies) == ["other"]
    assert read.only(["bug", "fix"]).zoo.varies == {}  # type: ignore[union-attr]


def test_picking_lanes_keeps_the_table_s_own_and_drops_it_without_a_bug_lane() -> None:
    read = validate_scenario(scenario(), "zoo.toml")
    picked = read.only(["bug", "other"]).scaled(0.5)
    assert picked.zoo is not None
    assert (picked.zoo.bug_lanes, picked.zoo.fix_lanes) == (["bug"], [])
    assert read.only(["fix"]).scaled(0.5).zoo is None


def test_tracker_links_said_short() -> None:
    assert tracker_label("https://github.com/celery/kombu/issues/337") == "kombu#337"
    assert tracker_label("https://github.com/celery/celery/pull/10151") == "celery PR #10151"
    assert tracker_label("https://github.com/rabbitmq/rabbitmq-server/issues/1") == (
        "rabbitmq-server#1"
    )
    assert tracker_label("https://example.org/x") == "https://example.org/x"


def test_every_zoo_file_is_an_entry_with_its_own_id() -> None:
    entries = zoo_entries()
    assert len(entries) == len(zoo_paths()) >= 6
    ids = [s.zoo.id for s, _ in entries if s.zoo is not None]
    assert len(set(ids)) == len(ids)
    for read, path in entries:
        assert zoo_entry(read.zoo.id if read.zoo else "") == path
        assert read.name == f"zoo-{read.zoo.id if read.zoo else ''}", path
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        assert "TO BE FILLED" not in raw["zoo"]["tried"], path
        assert isinstance(read, Scenario)


def test_an_unknown_entry_is_refused_naming_the_entries() -> None:
    with pytest.raises(ScenarioError, match=r"no zoo entry 'nope'; entries: .*pool-in-settings"):
        zoo_entry("nope")


def test_harness_zoo_lists_every_entry() -> None:
    done = CliRunner().invoke(cli.app, ["zoo"], env={"COLUMNS": "400"})
    assert done.exit_code == 0, done.output
    for read, _ in zoo_entries():
        assert read.zoo is not None
        assert read.zoo.id in done.output
        assert read.zoo.status in done.output
        assert tracker_label(read.zoo.trackers[0]) in done.output


def test_harness_zoo_run_refuses_an_unknown_entry_with_exit_2() -> None:
    done = CliRunner().invoke(cli.app, ["zoo", "run", "nope"])
    assert done.exit_code == 2, done.output
    assert "no zoo entry 'nope'" in done.output


def _lane(name: str, verdict: str, codes: list[str]) -> LaneResult:
    fields: dict[str, Any] = dict.fromkeys(LaneResult.model_fields)
    fields |= {"lane": name, "verdict": verdict, "reason_codes": codes}
    return LaneResult.model_construct(**fields)


@pytest.mark.parametrize(
    ("lane", "verdict", "codes", "complete", "outcome"),
    [
        ("bug", "fail", ["duplicated", "late"], True, "reproduced"),
        ("bug", "fail", ["late"], True, "not reproduced"),
        ("bug", "pass", [], True, "not reproduced"),
        ("fix", "pass", [], True, "fixed"),
        ("fix", "fail", ["late"], True, "fixed"),
        ("fix", "fail", ["duplicated"], True, "not fixed"),
        ("bug", "fail", ["duplicated"], False, "incomplete"),
    ],
)
def test_each_lane_s_outcome(
    lane: str, verdict: str, codes: list[str], complete: bool, outcome: str
) -> None:
    table = validate_scenario(scenario(), "zoo.toml").zoo
    assert table is not None
    assert lane_outcome(table, _lane(lane, verdict, codes), complete) == outcome


def test_the_findings_page_lists_every_entry() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "findings" / "zoo.md").read_text(
        encoding="utf-8"
    )
    for read, _ in zoo_entries():
        assert read.zoo is not None
        assert f"`{read.zoo.id}`" in page, read.zoo.id
        assert read.zoo.status in page


def test_the_committed_zoo_report_links_the_runs_it_holds() -> None:
    """reports/zoo/ is one directory: each outcome links a run drawn beside the table, each
    run reached the verdicts its scenario expected, and each entry has a run there."""
    zoo = Path(__file__).resolve().parents[2] / "reports" / "zoo"
    table = (zoo / "zoo.md").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(([a-z0-9-]+)/report\.md\)", table))
    regenerate = "regenerate it: uv run harness zoo report reports/zoo/*/"
    assert links == {p.name for p in zoo.iterdir() if p.is_dir()}, regenerate
    for link in links:
        assert (zoo / link / "report.html").is_file()
        assert read_results(zoo / link).as_expected, link
    assert {s.zoo.id for s, _ in zoo_entries() if s.zoo is not None} <= links, regenerate


def test_the_github_workflow_runs_every_entry_as_a_job_of_its_matrix(
    pytestconfig: pytest.Config,
) -> None:
    """One job per entry: an entry added without its job would never run there."""
    workflow = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "zoo.yml"
    jobs = yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"]
    listed = jobs["entry"]["strategy"]["matrix"]["entry"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {scenario.zoo.id for scenario, _ in zoo_entries() if scenario.zoo}
    commands = " ".join(step.get("run", "") for step in jobs["entry"]["steps"])
    assert 'pytest -m zoo -k "${{ matrix.entry }}"' in commands
    for option in re.findall(r"--stagger-[a-z-]+", commands):
        pytestconfig.getoption(option)  # ValueError for an option no plugin registered


def _cell(link: str, role: str, outcome: str, release: str, setup: str = "a") -> ZooCell:
    table = validate_scenario(scenario(), "zoo.toml").zoo
    assert table is not None
    cell = ZooCell(table, role, role, release, "solo", "valkey", outcome, [], link, setup)  # type: ignore[arg-type]
    return cell


def test_the_summary_counts_reproduced_runs_and_release_pairs() -> None:
    """A release pair is a reproduced bug lane beside a fixed lane on another release, set
    up alike; a setting's fix (same release), or a fix on another release that is also set
    up otherwise, is not one."""
    summary = zoo_summary(
        [
            _cell("pair", "bug", "reproduced", "celery 5.6.2"),
            _cell("pair", "fix", "fixed", "celery 5.6.3"),
            _cell("setting", "bug", "reproduced", "celery 5.7.0", setup="a"),
            _cell("setting", "fix", "fixed", "celery 5.7.0", setup="b"),
            _cell("both", "bug", "reproduced", "celery 5.6.2", setup="a"),
            _cell("both", "fix", "fixed", "celery 5.7.0", setup="b"),
            _cell("unfixed", "bug", "reproduced", "celery 5.6.2"),
            _cell("unfixed", "fix", "not fixed", "celery 5.6.3"),
            _cell("absent", "bug", "not reproduced", "celery 5.6.2"),
            _cell("absent", "fix", "fixed", "celery 5.6.3"),
        ]
    )
    assert summary.reproduced == ["pair", "setting", "both", "unfixed"]
    assert summary.release_pairs == ["pair"]
    assert summary.not_reproduced == ["absent"]


def test_a_lane_s_setup_is_all_but_its_releases_and_expectations() -> None:
    lane = {"name": "bug", "pool": "prefork", "concurrency": 2, "settings": {"SEND_MAX_RETRIES": 1}}
    release = {"celery": "5.6.2", "kombu": "5.6.2", "packages": {"redis": "6.4.0"}}
    expects = {"expect": "fail", "because": ["missing"], "why": "the bug"}
    base = setup_of(LaneScenario.model_validate(lane))
    assert setup_of(LaneScenario.model_validate(lane | release | expects | {"name": "x"})) == base
    for other in ({"pool": "threads"}, {"concurrency": 3}, {"settings": {"SEND_MAX_RETRIES": 2}}):
        assert setup_of(LaneScenario.model_validate(lane | other)) != base, other
