"""What a network fault does to a lane, asserted the same way on either backend (the local
fault suite's runs and the compose set's): a black hole to the API delays the sends caught
in it, none lost; a reset of the broker connection loses the parts the worker held."""

from __future__ import annotations

from harness.run import RunOutcome

from .conftest import assert_as_expected, fault_of, ledger, parts


def assert_a_black_hole_delays_the_sends_caught_in_it(outcome: RunOutcome, lane: str) -> None:
    hole = fault_of(outcome, "net-blackhole", lane)
    assert hole.connections >= 1, "the lane's sends did not go through its proxy"
    book = ledger(outcome, lane)
    assert (book.failed, book.lost) == (0, 0)
    history = parts(outcome, lane)
    # The hole was surely in force from the proxy's answer to the switch (on compose an
    # HTTP call, which a loaded machine answers late) to the switch back: a send begun in
    # it reaches the API after it. One begun before may have passed just before it, and
    # the API stamps it a moment later.
    assert hole.in_effect_from is not None
    assert hole.in_effect_until is not None
    for m in history:
        assert m.api_received_at is not None
        if m.started is not None and m.started >= hole.in_effect_from:
            assert m.api_received_at >= hole.in_effect_until, (
                f"part {m.seq} reached the API through the black hole"
            )
        if m.accepted > 1:  # the API took it, its answer was caught: the retry sends it again
            again = sorted(r.received_at for r in m.api_requests if r.outcome == "accepted")
            assert again[0] <= hole.in_effect_from, f"part {m.seq}"
            assert again[1] >= hole.in_effect_until, f"part {m.seq}"
    assert book.late >= 1
    assert_as_expected(outcome, lane)


def assert_a_broker_reset_loses_the_parts_the_worker_held(outcome: RunOutcome, lane: str) -> None:
    reset = fault_of(outcome, "net-reset", lane)
    assert reset.connections >= 1, "the lane's broker connection did not go through its proxy"
    book = ledger(outcome, lane)
    history = parts(outcome, lane)
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
    assert_as_expected(outcome, lane)
