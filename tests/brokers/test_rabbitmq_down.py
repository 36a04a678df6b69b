"""The harness's RabbitMQ node down for a window and back with its data, at full length:
RabbitMQ requeues the held ETA parts, every pool's worker reconnects and gets them
again, and none is lost (Valkey's lanes in `broker-down` lose them). Once, gevent's
worker reconnected and never consumed again; that outcome is asserted as what it is."""

from __future__ import annotations

import pytest

from harness.fault_record import FaultRecord
from harness.run import RunOutcome
from tests.faults.conftest import each_pool, fault_of, ledger, parts

from .conftest import RunScenario, received_per_part

pytestmark = [pytest.mark.integration, pytest.mark.brokers, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def down(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("rabbitmq-down", 1.0)


def test_the_node_came_back_with_its_data_after_the_window(down: RunOutcome) -> None:
    fault = fault_of(down, "stop-broker", None)
    assert fault.keep_data is True
    assert fault.new_pid != fault.pid
    assert fault.down_s >= fault.duration_s
    assert (down.run_dir / "rabbitmq.2.log").is_file(), "the node's second start is logged"
    assert {lane.broker for lane in down.results.lanes} == {"rabbitmq"}


@each_pool
def test_the_held_parts_are_delivered_again_and_none_is_lost(down: RunOutcome, pool: str) -> None:
    fault = fault_of(down, "stop-broker", None)
    book = ledger(down, pool)
    if pool == "gevent" and book.lost:
        assert_gevent_reconnected_and_never_consumed_again(down, fault)
        return
    assert (book.failed, book.lost) == (0, 0)
    assert book.late >= 1
    on_time_s = down.scenario.tolerances.on_time_s
    received = received_per_part(down, pool)
    for m in parts(down, pool):
        assert m.api_received_at is not None
        first = sorted(e["at"] for e in received[m.message_id])
        assert first[0] < fault.begun_at, f"part {m.seq} was held when the node stopped"
        if m.api_received_at >= fault.done_at:  # sent once the node was back
            assert first[-1] >= fault.done_at, f"part {m.seq} was not delivered again"
        if m.lateness_s is not None and m.lateness_s > on_time_s:
            assert m.api_received_at >= fault.done_at, f"part {m.seq}"
        if m.accepted > 1:  # being sent as the node stopped: its ack was lost, so again
            accepted = sorted(r.received_at for r in m.api_requests if r.outcome == "accepted")
            assert accepted[0] < fault.done_at, f"part {m.seq}"
            assert accepted[1] >= fault.done_at, f"part {m.seq}"
    assert down.lane(pool).as_expected, down.lane(pool).mismatch


def assert_gevent_reconnected_and_never_consumed_again(
    down: RunOutcome, fault: FaultRecord
) -> None:
    """Seen once: gevent's worker reconnected once the node was back, and never consumed
    again (a channel closing as it was declared: "Received method (40, 11) during closing
    channel 1"), so every part it held is lost, received and never started."""
    book = ledger(down, "gevent")
    assert book.failed == 0
    assert book.lost == book.lost_at["received"], book.lost_at
    log = (down.run_dir / "worker-gevent.log").read_text()
    assert "Connected to amqp://" in log.split("Cannot connect to amqp://")[-1]
    for m in parts(down, "gevent"):
        if m.accepted:
            assert m.api_received_at is not None
            assert m.api_received_at < fault.begun_at, f"part {m.seq} sent after the stop"
        else:
            assert m.received is not None, f"part {m.seq}"
            assert m.received < fault.begun_at, f"part {m.seq} was held when the node stopped"
    assert "missing" in down.lane("gevent").reason_codes
