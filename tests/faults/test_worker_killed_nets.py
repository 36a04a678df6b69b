"""A worker SIGKILLed holding its ETA parts, then restarted, on every pool: a short
visibility timeout brings them back (late) on solo, prefork and threads;
task_acks_late + task_reject_on_worker_lost do not, on any pool."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import RunScenario, assert_as_expected, each_pool, fault_of, ledger, parts

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def killed(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("worker-killed-nets", 0.25)


@pytest.mark.parametrize("pool", ["solo", "prefork", "threads"])
def test_a_short_visibility_timeout_brings_the_parts_back_late(
    killed: RunOutcome, pool: str
) -> None:
    lane = f"{pool}-short-visibility"
    kill = fault_of(killed, "kill-worker", lane)
    start = fault_of(killed, "start-worker", lane)
    book = ledger(killed, lane)
    assert (book.failed, book.lost) == (0, 0)
    # With acks_late a part is at least once: one the killed worker was sending when it
    # died (sent, never acknowledged) is sent again by the new worker. Nothing else twice.
    for m in parts(killed, lane):
        if m.accepted > 1:
            assert m.api_received_at is not None
            assert m.api_received_at <= kill.done_at, f"part {m.seq} sent twice"
    assert book.late >= 1
    late = [m for m in parts(killed, lane) if m.lateness_s and m.lateness_s > 0]
    assert max(m.api_received_at or 0 for m in late) >= start.done_at
    assert_as_expected(killed, lane)


@each_pool
def test_acks_late_and_reject_on_worker_lost_do_not_save_the_held_parts(
    killed: RunOutcome, pool: str
) -> None:
    lane = f"{pool}-acks-late"
    kill = fault_of(killed, "kill-worker", lane)
    book = ledger(killed, lane)
    assert book.lost >= 1
    assert book.duplicated == 0
    for m in parts(killed, lane):
        if m.accepted == 0 and m.received is not None:
            assert m.received < kill.begun_at
    assert_as_expected(killed, lane)
