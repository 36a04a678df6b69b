"""The broker restarted with its data: prefork and threads workers lose the ETA parts
they held; a short visibility timeout and a worker restart send them late (solo, prefork,
threads). Solo's and gevent's own workers race the broker's return: see the scenario."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import (
    RunScenario,
    assert_as_expected,
    assert_twice_only_where_the_ack_was_lost,
    fault_of,
    ledger,
    parts,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def restarted(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("broker-restart", 0.5)


def test_the_broker_came_back_on_its_port_with_its_data(restarted: RunOutcome) -> None:
    fault = fault_of(restarted, "restart-broker", None)
    assert fault.new_pid != fault.pid
    assert (restarted.run_dir / "dump.rdb").is_file()
    # The bot's outbox lives in the broker: every part queued before the restart is
    # still there after it, for every lane (the harness reads it again afterwards).
    for lane in restarted.scenario.lanes:
        assert len(parts(restarted, lane.name)) == restarted.scenario.expected_messages


@pytest.mark.parametrize("pool", ["prefork", "threads"])  # solo, gevent: see the scenario
def test_the_workers_lose_the_parts_they_held(restarted: RunOutcome, pool: str) -> None:
    fault = fault_of(restarted, "restart-broker", None)
    book = ledger(restarted, pool)
    assert book.lost >= 1
    # Received and never started; or started (being sent) as the connection broke.
    assert book.lost_at["received"] + book.lost_at["started"] == book.lost, book.lost_at
    for m in parts(restarted, pool):
        if m.accepted == 0:
            assert m.received is not None
            assert m.received < fault.begun_at
            if m.started is None:
                assert m.due is not None
                assert m.due > fault.begun_at
            else:
                assert m.started <= fault.done_at
    assert_as_expected(restarted, pool)


@pytest.mark.parametrize("pool", ["solo", "prefork", "threads"])
def test_a_worker_restart_with_a_short_visibility_timeout_sends_them(
    restarted: RunOutcome, pool: str
) -> None:
    lane = f"{pool}-restarted"
    restart = fault_of(restarted, "restart-worker", lane)
    book = ledger(restarted, lane)
    assert (book.failed, book.lost) == (0, 0)
    broker = fault_of(restarted, "restart-broker", None)
    assert_twice_only_where_the_ack_was_lost(restarted, lane, broker, restart)
    history = parts(restarted, lane)
    assert book.late >= 1
    late = [m for m in history if m.lateness_s is not None and m.lateness_s > 0]
    assert max(m.api_received_at or 0 for m in late) >= restart.done_at  # by the new one
    assert_as_expected(restarted, lane)
