"""How a fault reads in the terminal's tables and the reports, counted from the trigger."""

from __future__ import annotations

import pytest

from harness.fault_record import FaultRecord
from harness.wording import describe_fault, seconds

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("fault", "line"),
    [
        pytest.param(
            {"action": "kill-worker", "lane": "solo", "pid": 41, "scheduled_at": 101.0}
            | {"begun_at": 101.0, "done_at": 101.02},
            "kill-worker solo (pid 41) at 1.00-1.02 s, scheduled 1.00 s",
            id="done",
        ),
        pytest.param(
            {"action": "kill-worker", "lane": "solo", "done_at": 101.5},
            "kill-worker solo at 1.50-1.50 s",
            id="before-begun_at-was-recorded",
        ),
        pytest.param(
            {"action": "kill-pool-process", "lane": "prefork", "pid": 52, "worker_pid": 50}
            | {"part": 1, "scheduled_at": 101.0, "begun_at": 101.0, "done_at": 101.02},
            "kill-pool-process prefork (pid 52 of worker 50, running part 1) at 1.00-1.02 s, "
            "scheduled 1.00 s",
            id="pool-process",
        ),
        pytest.param(
            {"action": "kill-pool-process", "lane": "prefork", "pid": 51, "worker_pid": 50}
            | {"begun_at": 101.0, "done_at": 101.02},
            "kill-pool-process prefork (pid 51 of worker 50, idle) at 1.00-1.02 s",
            id="pool-process-idle",
        ),
        pytest.param(
            {"action": "start-worker", "lane": "solo", "begun_at": 102.0, "done_at": 109.0}
            | {"error": "ServerStartError: no ready line"},
            "start-worker solo at 2.00-9.00 s: FAILED: ServerStartError: no ready line",
            id="failed",
        ),
        pytest.param(
            {"action": "start-worker", "lane": "solo", "begun_at": 102.0, "done_at": 103.0}
            | {"cancelled": True},
            "start-worker solo at 2.00-3.00 s: cancelled, the run was stopping",
            id="cancelled",
        ),
    ],
)
def test_a_fault_is_described_from_the_trigger(fault: dict, line: str) -> None:
    assert describe_fault(FaultRecord.model_validate(fault), trigger_at=100.0) == line


def test_a_duration_reads_in_hundredths_or_as_a_dash() -> None:
    assert (seconds(0.254), seconds(None)) == ("0.25", "-")
