"""A worker frozen (SIGSTOP) and thawed (SIGCONT): on every pool the parts due while it
is frozen go out when it thaws, late, and none is lost; a replica started meanwhile
with a short visibility timeout does not make them on time."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import RunScenario, assert_as_expected, each_pool, fault_of, ledger, parts

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def frozen(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("worker-frozen", 0.25)


@each_pool
def test_a_frozen_worker_sends_the_parts_due_meanwhile_late_and_loses_none(
    frozen: RunOutcome, pool: str
) -> None:
    freeze = fault_of(frozen, "freeze-worker", pool)
    thaw = fault_of(frozen, "thaw-worker", pool)
    assert thaw.pids == [freeze.pid]
    book = ledger(frozen, pool)
    assert (book.failed, book.lost, book.duplicated) == (0, 0, 0)
    history = parts(frozen, pool)
    assert [m.accepted for m in history] == [1] * frozen.scenario.expected_messages
    on_time_s = frozen.scenario.tolerances.on_time_s
    for m in history:
        assert m.due is not None
        assert m.api_received_at is not None
        if freeze.done_at + on_time_s < m.due <= thaw.begun_at:  # due well inside
            assert m.api_received_at >= thaw.begun_at, f"part {m.seq} sent while frozen"
    assert book.late >= 1
    assert_as_expected(frozen, pool)


@each_pool
def test_a_replica_does_not_make_the_frozen_parts_on_time(frozen: RunOutcome, pool: str) -> None:
    lane = f"{pool}-replica"
    fault_of(frozen, "start-worker", lane)
    book = ledger(frozen, lane)
    assert (book.failed, book.lost) == (0, 0)  # sent at least once, maybe twice
    assert frozen.lane(lane).late >= 1  # late parts sent twice count as duplicated
    assert_as_expected(frozen, lane)
