"""Network faults through the harness's proxy: a black hole to the API delays the sends
caught in it (none lost); a reset of the broker connection loses the parts held; a slow
link to the API makes the sends begun in it late, on every pool."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import RunScenario, assert_as_expected, each_pool, fault_of, ledger, parts

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def network(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("network-faults", 0.25)


@each_pool
def test_a_black_hole_to_the_api_delays_the_sends_caught_in_it(
    network: RunOutcome, pool: str
) -> None:
    lane = f"{pool}-api-blackhole"
    hole = fault_of(network, "net-blackhole", lane)
    assert hole.connections >= 1, "the lane's sends did not go through its proxy"
    book = ledger(network, lane)
    assert (book.failed, book.lost) == (0, 0)
    history = parts(network, lane)
    for m in history:
        assert m.api_received_at is not None
        assert not hole.begun_at < m.api_received_at < hole.done_at, (
            f"part {m.seq} reached the API through the black hole"
        )
        if m.accepted > 1:  # the API took it, its answer was caught: the retry sends it again
            again = sorted(r.received_at for r in m.api_requests if r.outcome == "accepted")
            assert again[0] <= hole.begun_at, f"part {m.seq}"
            assert again[1] >= hole.done_at, f"part {m.seq}"
    assert book.late >= 1
    assert_as_expected(network, lane)


@each_pool
def test_a_reset_broker_connection_loses_the_parts_the_worker_held(
    network: RunOutcome, pool: str
) -> None:
    lane = f"{pool}-broker-reset"
    reset = fault_of(network, "net-reset", lane)
    book = ledger(network, lane)
    history = parts(network, lane)
    # Received and never started; or started (being sent) as the connection broke.
    held = [m for m in history if m.accepted == 0 and m.received is not None]
    assert held, "the cut found no part in the worker's hands"
    assert book.lost_at["received"] + book.lost_at["started"] == len(held), book.lost_at
    for m in held:
        # Received before the connection could come back (a delivery already on its
        # way as the cut began is read a moment after it: seen 2 ms after, once).
        assert m.received < reset.done_at, f"part {m.seq}"
        if m.started is not None:
            assert m.started <= reset.done_at, f"part {m.seq}"
    # On a loaded machine the worker may not have fetched the last parts when the cut
    # struck; those stay queued only where it never consumed again (it exited, or gevent's
    # reconnected idle): no part of the lane was received after the cut.
    unfetched = [m for m in history if m.accepted == 0 and m.received is None]
    assert book.lost_at["queued"] == len(unfetched), book.lost_at
    if unfetched:
        late_receipts = [m.seq for m in history if (m.received or 0) >= reset.done_at]
        assert not late_receipts, f"parts {late_receipts} were fetched after the cut"
    assert book.lost == len(held) + len(unfetched)
    assert_as_expected(network, lane)


@each_pool
def test_a_slow_link_to_the_api_makes_the_sends_begun_in_it_late(
    network: RunOutcome, pool: str
) -> None:
    lane = f"{pool}-api-delay"
    slow = fault_of(network, "net-delay", lane)
    assert slow.connections >= 1, "the lane's sends did not go through its proxy"
    on_time_s = network.scenario.tolerances.on_time_s
    assert slow.delay_s > on_time_s, "the scenario's delay must exceed the on-time bound"
    book = ledger(network, lane)
    assert (book.failed, book.lost, book.duplicated) == (0, 0, 0)
    history = parts(network, lane)
    # Held by the link: the API saw the send at least one delay after the worker began it.
    held = []
    for m in history:
        assert m.started is not None
        assert m.api_received_at is not None
        if m.api_received_at - m.started >= slow.delay_s:
            held.append(m)
            assert slow.begun_at <= m.started <= slow.done_at, f"part {m.seq}"
            assert m.lateness_s is not None
            assert m.lateness_s > on_time_s
    assert held, "no send was held by the slow link"
    # Every late part was held itself, or came due before the last held send returned
    # (a worker with no free slot waits for it: solo, prefork with 2 processes).
    last_back = max(m.finished or 0 for m in held)
    for m in history:
        if m.lateness_s is not None and m.lateness_s > on_time_s and m not in held:
            assert m.due is not None
            assert m.due < last_back, f"part {m.seq}"
    assert book.late >= len(held)
    assert_as_expected(network, lane)
