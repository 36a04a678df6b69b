"""Network faults through the harness's proxy: a black hole to the API delays the sends
caught in it (none lost); a reset of the broker connection loses the parts held; a slow
link to the API makes the sends begun in it late, on every pool."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import RunScenario, assert_as_expected, each_pool, fault_of, ledger, parts
from .network import (
    assert_a_black_hole_delays_the_sends_caught_in_it,
    assert_a_broker_reset_loses_the_parts_the_worker_held,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def network(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("network-faults", 0.25)


@each_pool
def test_a_black_hole_to_the_api_delays_the_sends_caught_in_it(
    network: RunOutcome, pool: str
) -> None:
    assert_a_black_hole_delays_the_sends_caught_in_it(network, f"{pool}-api-blackhole")


@each_pool
def test_a_reset_broker_connection_loses_the_parts_the_worker_held(
    network: RunOutcome, pool: str
) -> None:
    assert_a_broker_reset_loses_the_parts_the_worker_held(network, f"{pool}-broker-reset")


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
