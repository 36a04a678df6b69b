"""`uv run pytest` on a suite using the plugin, signalled as a CI job's cancel or time limit.

The suite is a user's own (its own directory and pytest.ini, the plugin loaded through its
entry point), holding one long run. SIGTERM and SIGINT to the group tear the session down
through pytest (partial results written, nothing for the reaper to kill); SIGKILL to
pytest leaves the reaper to kill the run's stack.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.reaper import LOG as REAPER_LOG
from harness.results import RESULTS

from .trials import ROOT, Command, listed, log_has

pytestmark = [pytest.mark.integration, pytest.mark.shutdown]

SCENARIO = """
name = "long-held"
description = "Parts 0.5 s apart for a minute on two pools, to be interrupted."

[flow]
messages = 120
spacing_s = 0.5

[tolerances]
on_time_s = 0.5
missing_after_s = 5.0

[[lanes]]
name = "solo"
pool = "solo"

[[lanes]]
name = "gevent"
pool = "gevent"
concurrency = 4
"""
HELD = """
def test_held(stagger_run):
    stagger_run({scenario!r})
"""
NAMES = {"broker", "mock", "bot-solo", "bot-gevent", "worker-solo", "worker-gevent"}


def launched(run_dir: Path) -> bool:
    return set(listed(run_dir)) >= NAMES


def sending(run_dir: Path) -> bool:
    logs = [run_dir / "worker-solo.log", run_dir / "worker-gevent.log"]
    return all(log_has(log, "TASK SENT") for log in logs)


MOMENTS: dict[str, Callable[[Path], bool]] = {
    "every process launched": launched,
    "parts in flight": sending,
}


def held_session(tmp_path: Path) -> tuple[Command, Path]:
    """A user's suite in its own directory, run by `uv run pytest` with the plugin."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "long-held.toml").write_text(SCENARIO)
    (suite / "test_held.py").write_text(HELD.format(scenario=str(suite / "long-held.toml")))
    runs = tmp_path / "runs"
    argv = ["--project", str(ROOT), "pytest", "test_held.py", "-q", "-p", "no:cacheprovider"]
    argv += ["--stagger-runs-dir", str(runs), "--stagger-keep-runs"]
    return Command(argv, cwd=suite), runs / "long-held-0"


@pytest.mark.parametrize(
    ("signum", "moment"),
    [
        (signal.SIGTERM, "every process launched"),
        (signal.SIGTERM, "parts in flight"),
        (signal.SIGINT, "parts in flight"),
    ],
)
def test_a_signal_to_the_group_tears_the_session_down(
    tmp_path: Path, signum: int, moment: str
) -> None:
    kind = f"plugin, {signal.Signals(signum).name} to the group"
    command, run_dir = held_session(tmp_path)
    command.start(tmp_path / "uv.log", lambda: MOMENTS[moment](run_dir))
    command.signal_group(signum)
    trial = command.finish(kind, moment, run_dir=run_dir)
    output = command.output()
    assert trial.left == [], f"{trial.left}\n{output}"
    assert "KeyboardInterrupt" in output, output
    assert trial.exit_code == 2, output  # pytest: interrupted
    assert (run_dir / RESULTS).exists(), "the run's teardown wrote its partial results"
    assert not (run_dir / REAPER_LOG).exists(), (run_dir / REAPER_LOG).read_text()


def test_sigkill_to_pytest_leaves_nothing(tmp_path: Path) -> None:
    kind = "plugin, SIGKILL to pytest"
    command, run_dir = held_session(tmp_path)
    command.start(tmp_path / "uv.log", lambda: sending(run_dir))
    session = command.child("bin/pytest")
    assert session is not None, command.output()
    session.kill()
    trial = command.finish(kind, "parts in flight", run_dir=run_dir)
    assert trial.left == [], f"{trial.left}\n{command.output()}"
    killed = (run_dir / REAPER_LOG).read_text()
    assert f"the harness (PID {session.pid}) ended with these running" in killed
    assert "worker-gevent" in killed, killed
