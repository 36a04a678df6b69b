"""`harness stack`, run as users run it: a subprocess from the shell."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.processes import start_server
from harness.waiting import wait_for

from .test_stack_lifecycle import STOP_DEADLINE_S, survivors

pytestmark = [pytest.mark.integration, pytest.mark.lifecycle]

HARNESS = [sys.executable, "-m", "harness"]
PARTS = 3


def recorded_pids(run_dir: Path) -> set[int]:
    return set(json.loads((run_dir / "processes.json").read_text()).values())


def sent_parts(log: Path) -> int:
    return log.read_text().count("TASK SENT") if log.exists() else 0


def test_a_held_stack_runs_the_fixtures_flow_and_ctrl_c_stops_everything(
    harness_run_dir: Path,
) -> None:
    run_dir = harness_run_dir
    argv = [*HARNESS, "stack", "--pool", "solo", "--pool", "gevent", "--fixtures"]
    argv += ["--parts", str(PARTS), "--spacing", "0.2", "--api-latency", "0.05"]
    argv += ["--concurrency", "4", "--out", str(run_dir)]
    holder = start_server(
        argv, re.compile(r"The stack is up"), timeout_s=STOP_DEADLINE_S, env={"COLUMNS": "200"}
    )
    try:
        logs = [run_dir / "worker-solo.log", run_dir / "worker-gevent.log"]
        wait_for(
            lambda: [sent_parts(log) for log in logs],
            lambda counts: counts == [PARTS, PARTS],
            timeout_s=STOP_DEADLINE_S,
            what=f"{PARTS} parts sent by each lane",
        )
        pids = recorded_pids(run_dir)
        os.kill(holder.pid, signal.SIGINT)
        code = holder.popen.wait(timeout=STOP_DEADLINE_S)
    finally:
        holder.stop(grace_s=STOP_DEADLINE_S)
    assert code == 130, holder.output
    assert "interrupted: every process was stopped" in holder.output
    assert "concurrency: 4 (gevent)" in (run_dir / "worker-gevent.log").read_text()
    assert {"worker-solo.log", "worker-gevent.log", "broker.log"} <= {
        path.name for path in run_dir.iterdir()
    }
    assert survivors(pids) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stack", "--pool", "greenlet"], "unknown pool(s) ['greenlet']; allowed: solo, prefork"),
        (["stack", "--parts", "0"], "Invalid value for '--parts'"),
        (["stack", "--broker-url", "redis://127.0.0.1:1/0"], "cannot reach the broker"),
        (
            ["stack", "--spacing", "5000"],
            "FIXTURES_SPACING_S: Input should be less than or equal to 3600 (got '5000.0')",
        ),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [*HARNESS, *argv, "--out", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=STOP_DEADLINE_S,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in " ".join((done.stdout + done.stderr).split())
    assert not (run_dir / "processes.json").exists() or survivors(recorded_pids(run_dir)) == []
