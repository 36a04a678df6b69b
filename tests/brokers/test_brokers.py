"""The incident and a SIGKILLed worker, on the embedded Valkey and on RabbitMQ.

On both brokers the incident's flow is on time. A worker killed after it received the
ETA parts loses them on Redis (unacked until the visibility timeout) but not on
RabbitMQ, which requeues a dead connection's deliveries at once.
"""

from __future__ import annotations

import pytest

from harness.run import RunOutcome
from tests.pools.conftest import (
    assert_as_expected,
    assert_exactly_once_in_order_on_time,
    assert_held_parts_never_run,
    assert_twice_only_where_the_ack_was_lost,
    parts,
)

from .conftest import RunScenario, faults, received_per_part

pytestmark = [pytest.mark.integration, pytest.mark.brokers, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def outcome(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("brokers", 0.25)


@pytest.mark.parametrize(
    "lane", ["incident-valkey", "incident-rabbitmq", "incident-rabbitmq-gevent"]
)
def test_the_incident_is_on_time_on_both_brokers(outcome: RunOutcome, lane: str) -> None:
    assert_exactly_once_in_order_on_time(outcome, lane)


def test_each_lane_records_its_broker(outcome: RunOutcome) -> None:
    for result in outcome.results.lanes:
        expected = "rabbitmq" if "rabbitmq" in result.lane else "valkey"
        assert result.broker == expected
        assert result.broker_version is not None
        assert result.broker_version.startswith(f"{expected} ")
    assert "rabbitmq 3." in outcome.results.versions["broker"]


def test_on_redis_a_killed_worker_never_runs_the_parts_it_received(outcome: RunOutcome) -> None:
    lane = "killed-valkey"
    done = faults(outcome, lane)
    assert_held_parts_never_run(outcome, lane, done["kill-worker"], done["start-worker"])
    assert_as_expected(outcome, lane)


@pytest.mark.parametrize("lane", ["killed-rabbitmq", "killed-rabbitmq-gevent"])
def test_on_rabbitmq_the_killed_workers_parts_are_requeued_and_sent_once(
    outcome: RunOutcome, lane: str
) -> None:
    """RabbitMQ hands every part the killed worker held unacknowledged to the restarted
    worker, which sends it: none lost. Only a part whose send the kill met may go out
    twice (its ack did not count: seen once at time scale 0.25 on a loaded machine)."""
    done = faults(outcome, lane)
    kill, start = done["kill-worker"], done["start-worker"]
    history = parts(outcome, lane)
    assert all(m.accepted >= 1 for m in history), [m.accepted for m in history]
    assert_twice_only_where_the_ack_was_lost(outcome, lane, stopped_by=kill, restart=start)
    received = received_per_part(outcome, lane)
    after = [m for m in history if m.due is not None and m.due > kill.begun_at]
    assert after
    redelivered = 0
    for message in after:
        pids = [event["pid"] for event in received[message.message_id]]
        assert pids[-1] == start.pid, f"part {message.seq} was never redelivered"
        sent_by = {start.pid} if message.accepted == 1 else {kill.pid, start.pid}
        assert set(message.worker_pids) == sent_by, f"part {message.seq}"
        redelivered += pids[0] == kill.pid
    assert redelivered, "the killed worker held none of the parts"
    assert_as_expected(outcome, lane)
