"""The CLI's exit-status contract where a run fails for a reason that is not a verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import cli
from harness.cli import runs
from harness.scenario import scenario_json_schema

pytestmark = pytest.mark.unit


def test_a_run_that_fails_midway_exits_2_with_its_traceback_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 1 means "a lane differs from its expectation"; a crash must not look like one."""

    def broken_run(*_: object, **__: object) -> None:
        raise RuntimeError("mock admin GET /_mock/journal: HTTP 500")

    monkeypatch.setattr(runs, "run_scenario", broken_run)
    out = tmp_path / "run"

    done = CliRunner().invoke(
        cli.app, ["run", "incident", "--time-scale", "0.25", "--out", str(out)]
    )

    assert done.exit_code == 2, done.output
    assert "the run failed: RuntimeError: mock admin GET /_mock/journal: HTTP 500" in done.output
    assert "broken_run" in (out / "error.txt").read_text()


def test_out_naming_a_file_is_refused(tmp_path: Path) -> None:
    taken = tmp_path / "results.json"
    taken.write_text("{}")

    done = CliRunner().invoke(cli.app, ["run", "incident", "--out", str(taken)])

    assert done.exit_code == 2
    assert "is a file; give a directory" in " ".join(done.output.split())
    assert taken.read_text() == "{}"


def test_scenarios_checks_files_without_running_them(tmp_path: Path) -> None:
    """Writing a scenario: every bad file is named, the good ones listed, nothing started."""
    good = tmp_path / "good.toml"
    good.write_text(
        'name = "good"\ndescription = "d"\n[tolerances]\non_time_s = 1.0\n'
        '[[lanes]]\nname = "solo"\npool = "solo"\n'
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace('pool = "solo"', 'pool = "greenlet"'))

    done = CliRunner().invoke(cli.app, ["scenarios", str(good), str(bad)], env={"COLUMNS": "200"})

    assert done.exit_code == 2
    assert f"{bad}: 1 invalid setting(s)" in done.output
    assert "lanes.0.pool" in done.output
    assert "good" in done.output.split(str(bad))[-1]  # the good one is still listed


def test_scenarios_refuses_a_time_scale_under_the_floors() -> None:
    done = CliRunner().invoke(
        cli.app, ["scenarios", "incident", "--time-scale", "0.1"], env={"COLUMNS": "200"}
    )

    assert done.exit_code == 2
    assert "use a time scale of at least 0.25" in " ".join(done.output.split())


def test_load_options_on_a_scenario_without_load_are_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"

    done = CliRunner().invoke(cli.app, ["run", "incident", "--workers", "2", "--out", str(out)])

    assert done.exit_code == 2
    assert "has no [load] table" in " ".join(done.output.split())
    assert not out.exists()


def test_a_bad_load_bound_on_the_command_line_names_the_option(tmp_path: Path) -> None:
    done = CliRunner().invoke(
        cli.app,
        ["run", "load-steady", "--max-fail-ratio", "-1", "--out", str(tmp_path / "run")],
        env={"COLUMNS": "200"},
    )

    assert done.exit_code == 2
    assert "thresholds.max_fail_ratio: Input should be greater than or equal to 0" in done.output
    assert not (tmp_path / "run").exists()


def test_schema_prints_the_scenarios_json_schema() -> None:
    """`harness schema > scenario.schema.json` gives an editor the schema the docs are made from."""
    done = CliRunner().invoke(cli.app, ["schema"])

    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == scenario_json_schema()
