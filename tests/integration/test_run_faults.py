"""Faults on a schedule, through `run_scenario` (the CLI's code path) on a real stack.

`kill-worker` SIGKILLs a lane's worker after it has received the ETA messages: the parts
not yet due are never started, and the checks must call them missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run import run_scenario
from harness.scenario import parse_scenario

pytestmark = pytest.mark.integration

KILLED = """
name = "killed-worker"
description = "The worker is killed with the parts not yet due still in its hands."

[flow]
messages = 6
spacing_s = 1.0

[tolerances]
on_time_s = 0.5
missing_after_s = 1.0

[[lanes]]
name = "solo"
pool = "solo"
expect = "fail"
because = ["missing"]

[[faults]]
at_s = 1.5
action = "kill-worker"
lane = "solo"
"""


@pytest.mark.faults  # a whole run with a fault: with the fault suite
@pytest.mark.timeout(90)
def test_a_worker_killed_after_receiving_the_parts_never_runs_the_rest(tmp_path: Path) -> None:
    scenario = parse_scenario(KILLED, "killed-worker").scaled()
    kill_at = scenario.faults[0].at_s

    outcome = run_scenario(scenario, tmp_path / "run")

    lane = outcome.lane("solo")
    assert outcome.results.complete, lane
    assert outcome.results.as_expected, lane
    assert [fault.action for fault in outcome.results.faults] == ["kill-worker"]
    history = outcome.history["solo"]
    due_before_kill = [m for m in history if (m.countdown_s or 0) < kill_at]
    due_after_kill = [m for m in history if (m.countdown_s or 0) > kill_at]
    assert due_before_kill
    assert due_after_kill
    # Every part reached the worker as an ETA message; those due after the kill never ran.
    assert all(m.received is not None for m in history)
    assert all(m.accepted == 1 for m in due_before_kill)
    assert all(m.started is None and m.accepted == 0 for m in due_after_kill)
    assert lane.verdict == "fail"
    assert lane.missing == len(due_after_kill)
    assert lane.reason_codes == ["missing"]
