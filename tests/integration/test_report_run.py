"""`harness run` writes report.md and report.html after results.json, also when interrupted.

Real runs on the local stack (small scenarios, one solo lane); the reports' contents are
tested in tests/unit/test_report.py, here only that a run leaves them and says where.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from harness.report import REPORT_HTML, REPORT_MD
from harness.results import RESULTS, read_results
from harness.waiting import wait_for

from .test_cli_run import RUN_TIMEOUT_S, finish, flat, harness, start_harness
from .test_stack_lifecycle import STOP_DEADLINE_S

# Whole runs on real stacks: with the CLI's end-to-end runs (not in the default selection).
pytestmark = [pytest.mark.integration, pytest.mark.lifecycle]

SCENARIO = """
name = "report-{name}"
description = "{messages} parts 0.5 s apart on solo."

[flow]
messages = {messages}
spacing_s = 0.5

[tolerances]
on_time_s = 0.5
missing_after_s = 5.0

[[lanes]]
name = "solo"
pool = "solo"
"""


def scenario(tmp_path: Path, name: str, messages: int) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SCENARIO.format(name=name, messages=messages))
    return path


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def assert_reports(run_dir: Path, output: str) -> str:
    """Both reports are there, announced, and drawn from this run; the HTML's text."""
    assert f"report: {run_dir / REPORT_MD} and {run_dir / REPORT_HTML}" in flat(output)
    html = (run_dir / REPORT_HTML).read_text(encoding="utf-8")
    results = read_results(run_dir)
    assert f"{results.lanes[0].delivered}/{results.lanes[0].expected_messages}" in html
    assert '<figure id="plot-timeline-solo"><svg' in html
    assert (run_dir / "plots" / "timeline-solo.svg").is_file()
    markdown = (run_dir / REPORT_MD).read_text(encoding="utf-8")
    assert "| solo | solo |" in markdown
    assert (run_dir / RESULTS).stat().st_mtime <= (run_dir / REPORT_HTML).stat().st_mtime
    return html


@pytest.mark.timeout(RUN_TIMEOUT_S + STOP_DEADLINE_S)
def test_a_run_writes_both_reports_after_its_results(tmp_path: Path, harness_run_dir: Path) -> None:
    short = scenario(tmp_path, "short", 5)
    done = harness("run", str(short), "--out", str(harness_run_dir), timeout_s=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr

    html = assert_reports(harness_run_dir, done.stdout)
    assert "every lane reached the verdict its scenario expects" in html


@pytest.mark.timeout(RUN_TIMEOUT_S + STOP_DEADLINE_S)
def test_an_interrupted_run_writes_reports_marked_partial(
    tmp_path: Path, harness_run_dir: Path
) -> None:
    long = scenario(tmp_path, "long", 40)
    runner = start_harness("run", str(long), "--out", str(harness_run_dir))
    log = harness_run_dir / "worker-solo.log"  # TASK SENT: the API accepted a part
    try:
        wait_for(lambda: runner.poll() is not None or "TASK SENT" in read(log), timeout_s=60)
        assert runner.poll() is None, "the run ended before it could be interrupted"
        runner.send_signal(signal.SIGINT)
    finally:
        output = finish(runner, timeout_s=STOP_DEADLINE_S)

    assert runner.returncode == 130, output
    html = assert_reports(harness_run_dir, output)
    assert "INTERRUPTED: the run was cut short, figures are partial" in html
