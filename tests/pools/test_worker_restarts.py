"""A worker SIGKILLed after it received the ETA parts, then restarted: the parts stay
unacked in Redis for the visibility timeout, on every pool ("1 of 22 sent, the rest
received and never started"). Warm shutdowns and a short visibility timeout lose nothing.
"""

from __future__ import annotations

import pytest

from harness.fault_record import FaultRecord
from harness.run import RunOutcome

from .conftest import (
    RunScenario,
    assert_as_expected,
    assert_held_parts_never_run,
    assert_twice_only_where_the_ack_was_lost,
    each_pool,
    parts,
)

pytestmark = [pytest.mark.integration, pytest.mark.pools, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def killed(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("worker-killed", 0.25)


@pytest.fixture(scope="module")
def deployed(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("worker-deploy", 0.25)


def _faults(outcome: RunOutcome, lane: str) -> dict[str, FaultRecord]:
    done: dict[str, FaultRecord] = {
        fault.action: fault for fault in outcome.results.faults if fault.lane == lane
    }
    assert all(fault.error is None for fault in done.values()), done
    return done


@each_pool
def test_a_killed_worker_never_runs_the_parts_it_received(killed: RunOutcome, pool: str) -> None:
    """Part 0 is sent; every part due after the kill that the killed worker had fetched
    is never started, neither by it nor by the restarted one."""
    faults = _faults(killed, pool)
    first = parts(killed, pool)[0]
    assert first.accepted == 1
    assert_held_parts_never_run(killed, pool, faults["kill-worker"], faults["start-worker"])
    assert_as_expected(killed, pool)


@pytest.mark.parametrize("lane", ["warm-restart", "short-visibility"])
def test_a_restart_that_gives_the_parts_back_loses_none(killed: RunOutcome, lane: str) -> None:
    """Each part once; or twice where the kill met its send: the old worker sent it, died
    before its ack (the lanes set `task_acks_late`), and the new one took it back."""
    faults = _faults(killed, lane)
    stopped = faults.get("kill-worker") or faults["stop-worker"]
    started = faults["start-worker"]
    assert all(m.accepted >= 1 for m in parts(killed, lane)), "a part was lost"
    assert_twice_only_where_the_ack_was_lost(killed, lane, stopped, started)
    assert_as_expected(killed, lane)


@each_pool
def test_a_rolling_deploy_delivers_every_part_exactly_once(deployed: RunOutcome, pool: str) -> None:
    """In order and on time too, but for the parts due while the old worker shuts down
    warm: it gives them back only once its pool has stopped (about 2 s for prefork, at
    any time scale), and they go out late, in the order the new worker gets them."""
    lane = f"rolling-{pool}"
    faults = _faults(deployed, lane)
    assert set(faults) == {"start-worker", "stop-worker"}
    stop = faults["stop-worker"]
    on_time_s = deployed.scenario.tolerances.on_time_s
    history = parts(deployed, lane)
    assert [m.accepted for m in history] == [1] * deployed.scenario.expected_messages
    outside = [
        m for m in history if m.due is not None and not stop.begun_at <= m.due <= stop.done_at
    ]
    receipts = [m.api_received_at for m in outside]
    assert receipts == sorted(receipts), "parts due outside the stop reached the API out of order"
    for message in outside:
        assert message.lateness_s is not None
        assert message.lateness_s <= on_time_s, f"part {message.seq}: {message.lateness_s:.3f} s"
