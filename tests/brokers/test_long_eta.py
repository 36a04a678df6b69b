"""ETAs beyond each broker's timeout, at full length: each broker's own timer decides.

Redis: kombu's restore sweep (a 10 s timer acting on every 10th call, about every
100 s) puts back every message unacked for longer than the visibility timeout; a live
worker holding an ETA part so receives it again, and runs it twice (kombu #337).
RabbitMQ: a delivery unacknowledged past `consumer_timeout` (checked every channel
tick, 60 s by default) closes the channel with PRECONDITION_FAILED, and the worker stops.
"""

from __future__ import annotations

import pytest

from harness.run import RunOutcome
from tests.pools.conftest import assert_as_expected, assert_exactly_once_in_order_on_time, parts

from .conftest import RunScenario, events, received_per_part

# The run takes the whole schedule (126 s) and the wait after it, whatever the machine.
pytestmark = [pytest.mark.integration, pytest.mark.brokers, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def outcome(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("brokers-long-eta", 1.0)


def test_with_the_default_visibility_timeout_every_part_runs_once(outcome: RunOutcome) -> None:
    assert_exactly_once_in_order_on_time(outcome, "valkey")


def test_redis_restore_sweep_hands_a_held_part_out_again_and_it_runs_twice(
    outcome: RunOutcome,
) -> None:
    lane = "valkey-short-visibility"
    visibility_s = float(outcome.scenario.lane(lane).settings["CELERY_BROKER_VISIBILITY_TIMEOUT"])
    ready = [e for e in events(outcome, lane) if e["event"] == "worker_ready"]
    assert len(ready) == 1, "one worker, never restarted"
    received = received_per_part(outcome, lane)
    history = parts(outcome, lane)
    doubled = [m for m in history if m.accepted > 1]
    assert doubled, "no part ran twice: the sweep came after the last part, or never"
    for message in doubled:
        copies = received[message.message_id]
        assert len(copies) == 2, f"part {message.seq}: received {len(copies)} times"
        assert {e["pid"] for e in copies} == {ready[0]["pid"]}  # by the one live worker
        # Held longer than the visibility timeout before the sweep gave it out again.
        assert copies[1]["at"] - copies[0]["at"] > visibility_s, f"part {message.seq}"
        assert message.due is not None
        assert message.due - copies[0]["at"] > visibility_s, f"part {message.seq}"
    # A part due before the visibility timeout ran out was done before any sweep.
    for message in history:
        assert message.due is not None
        assert message.received is not None
        if message.due - message.received < visibility_s:
            assert message.accepted == 1, f"part {message.seq}"
    assert all(m.accepted >= 1 for m in history), "every part is still sent"
    assert_as_expected(outcome, lane)


def test_rabbitmq_closes_the_channel_past_consumer_timeout_and_the_worker_stops(
    outcome: RunOutcome,
) -> None:
    lane = "rabbitmq"
    log = (outcome.run_dir / f"worker-{lane}.log").read_text()
    assert "PRECONDITION_FAILED - delivery acknowledgement on channel" in log
    history = parts(outcome, lane)
    timeout_s = outcome.scenario.rabbitmq.consumer_timeout_s
    lost = [m for m in history if m.accepted == 0]
    assert lost
    for message in lost:  # held past the timeout, received, and never run
        assert message.received is not None, f"part {message.seq}"
        assert message.started is None, f"part {message.seq}"
        assert message.due is not None
        assert message.due - message.received > timeout_s, f"part {message.seq}"
    assert all(m.accepted <= 1 for m in history), "RabbitMQ never hands a held part out twice"
    assert_as_expected(outcome, lane)
