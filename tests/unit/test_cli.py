"""The CLI's exit-status contract where a run fails for a reason that is not a verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import cli

pytestmark = pytest.mark.unit


def test_a_run_that_fails_midway_exits_2_with_its_traceback_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 1 means "a lane differs from its expectation"; a crash must not look like one."""

    def broken_run(*_: object, **__: object) -> None:
        raise RuntimeError("mock admin GET /_mock/journal: HTTP 500")

    monkeypatch.setattr(cli, "run_scenario", broken_run)
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
