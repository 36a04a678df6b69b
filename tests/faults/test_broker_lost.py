"""The broker down for a window and back empty: every part not yet sent is lost, on every
pool, and the run still holds the evidence read before (the outbox went with Redis)."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import RunScenario, assert_as_expected, each_pool, fault_of, ledger, parts

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def lost(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("broker-lost", 0.25)


def test_the_broker_came_back_empty_after_the_window(lost: RunOutcome) -> None:
    fault = fault_of(lost, "stop-broker", None)
    assert fault.new_pid != fault.pid
    assert fault.down_s >= fault.duration_s
    assert not (lost.run_dir / "dump.rdb").exists()


@each_pool
def test_every_part_not_yet_sent_is_lost(lost: RunOutcome, pool: str) -> None:
    fault = fault_of(lost, "stop-broker", None)
    history = parts(lost, pool)
    # Every part was read from the outbox before the broker went down with it.
    assert [m.seq for m in history] == list(range(lost.scenario.expected_messages))
    assert all(m.queued_at is not None for m in history)
    book = ledger(lost, pool)
    assert book.lost >= 1
    assert book.failed == 0
    for m in history:
        if m.accepted:
            assert m.api_received_at is not None
            assert m.api_received_at < fault.done_at, f"part {m.seq} sent after the loss"
    assert_as_expected(lost, pool)
