"""The fixtures flow end to end on the local stack: real broker, real workers, real mock.

One stack with a lane per pool (and one whose pool is set only by a settings
value) is shared by the module; every lane gets its own inbound "fixtures"
request and must deliver every part, once, through the mock's Graph API.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from harness.bot.flow import correlation_for
from harness.bot.store import OutboxRecord
from harness.mock_admin import MockAdmin
from harness.stack import Lane, LaneSpec, LocalStack, StackSpec
from harness.stack.broker import BrokerError
from harness.waiting import DeadlineExceeded, wait_for
from harness.workload import inbound_text, new_inbound_id, post_inbound
from mock_meta_api.config import DEFAULT_APP_SECRET

pytestmark = pytest.mark.integration

PARTS = 5
SPACING_S = 0.2
# Waiting bound, not a timing assertion: the schedule plus room for a loaded CI machine.
DELIVERY_DEADLINE_S = (PARTS - 1) * SPACING_S + 30
# "Never" is watched for ten schedule lengths; the working pools deliver within one.
NEVER_WINDOW_S = 10 * (PARTS - 1) * SPACING_S

LANES = [
    LaneSpec(name="solo", pool="solo"),
    LaneSpec(name="prefork", pool="prefork", concurrency=2),
    LaneSpec(name="threads", pool="threads", concurrency=4),
    LaneSpec(name="gevent", pool="gevent", concurrency=20),
    LaneSpec(name="settings-solo", pool="solo", concurrency=20, pool_from_settings=True),
]
# gevent chosen only by CELERY_WORKER_POOL: Celery monkey-patches only for `-P gevent` on argv.
SETTINGS_GEVENT = LaneSpec(
    name="settings-gevent", pool="gevent", concurrency=20, pool_from_settings=True
)
DELIVERING = [lane.name for lane in LANES]
FLOW_ENV = {
    "FIXTURES_PARTS": str(PARTS),
    "FIXTURES_SPACING_S": str(SPACING_S),
    "FIXTURES_PART_CHARS": "400",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    spec = StackSpec(lanes=[*LANES, SETTINGS_GEVENT], bot_env=FLOW_ENV)
    with LocalStack(spec, tmp_path_factory.mktemp("stack")) as stack:
        yield stack
    for name, process in stack.processes().items():
        assert "Traceback" not in process.output, f"{name} printed a traceback:\n{process.output}"


def trigger(lane: Lane, client: httpx.Client, user: int = 0) -> str:
    """One signed "fixtures" message from the lane's user; returns the inbound message id."""
    inbound_id = new_inbound_id()
    payload = inbound_text(
        phone_number_id=lane.phone_number_id,
        sender=lane.recipient(user),
        text="fixtures",
        message_id=inbound_id,
    )
    answer = post_inbound(client, lane.webhook_url, payload, DEFAULT_APP_SECRET)
    assert answer.status_code == 200, answer.text
    return inbound_id


def parts_of(lane: Lane, correlation_id: str) -> list[OutboxRecord]:
    return [r for r in lane.store.outbox() if r.correlation_id == correlation_id]


def delivered(
    lane: Lane, correlation_id: str, timeout_s: float = DELIVERY_DEADLINE_S
) -> list[OutboxRecord]:
    """The reply's parts once all are sent (waits with a deadline)."""
    return wait_for(
        lambda: parts_of(lane, correlation_id),
        lambda rs: len(rs) == PARTS and all(r.state in ("sent", "failed") for r in rs),
        timeout_s=timeout_s,
        what=f"lane {lane.name}: all {PARTS} parts sent",
    )


def events_by_message(lane: Lane) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in lane.store.events():
        if event.get("message_id"):
            grouped.setdefault(event["message_id"], []).append(event)
    return grouped


@pytest.mark.parametrize("lane_name", DELIVERING)
def test_every_part_is_sent_once_through_the_mock(stack: LocalStack, lane_name: str) -> None:
    lane = stack.lanes[lane_name]
    with httpx.Client(timeout=10) as client:
        inbound_id = trigger(lane, client)
    records = delivered(lane, correlation_for(inbound_id))

    assert [r.seq for r in sorted(records, key=lambda r: r.seq)] == list(range(PARTS))
    assert {r.state for r in records} == {"sent"}, [(r.seq, r.last_error) for r in records]
    assert all(r.attempts == 1 for r in records)
    with MockAdmin(stack.mock_url) as mock:
        journal = mock.journal(recipient=lane.recipient())
    accepted = [entry for entry in journal if entry["outcome"] == "accepted"]
    sends = Counter(entry["biz_opaque_callback_data"] for entry in accepted)
    assert sends == Counter({r.message_id: 1 for r in records}), "each part reached Meta once"
    wamids = {entry["biz_opaque_callback_data"]: entry["wamid"] for entry in accepted}
    assert {r.message_id: r.wamid for r in records} == wamids


@pytest.mark.parametrize("lane_name", DELIVERING)
def test_worker_events_tell_which_pool_ran_each_part(stack: LocalStack, lane_name: str) -> None:
    lane = stack.lanes[lane_name]
    with httpx.Client(timeout=10) as client:
        inbound_id = trigger(lane, client, user=1)
    records = delivered(lane, correlation_for(inbound_id))
    events = wait_for(  # a part is marked sent before its task's postrun event is written
        lambda: events_by_message(lane),
        lambda grouped: all(len(grouped.get(r.message_id, [])) >= 3 for r in records),
        timeout_s=DELIVERY_DEADLINE_S,
        what=f"lane {lane.name}: every part's finished event",
    )
    for record in records:
        kinds = [event["event"] for event in events[record.message_id]]
        assert kinds == ["received", "started", "finished"], (record.seq, kinds)
        received, started, finished = events[record.message_id]
        if record.countdown_s == 0:
            assert received["eta"] is None, "Celery sets no ETA for countdown 0"
        else:  # Celery's ETA and the outbox's agree to within half a spacing
            assert received["eta"] == pytest.approx(record.eta, abs=SPACING_S / 2)
        assert received["at"] <= started["at"] <= finished["at"]
        assert {e["pool"] for e in (received, started, finished)} == {lane.spec.pool}
        assert received["hostname"].startswith(f"{lane.name}@")
        assert finished["state"] == "SUCCESS"
    ready = [e for e in lane.store.events() if e["event"] == "worker_ready"]
    assert len(ready) == 1
    assert ready[0]["pool"] == lane.spec.pool
    assert ready[0]["gevent_patched"] is (lane.spec.pool == "gevent")


@pytest.mark.pools  # the incident's mechanism on a real stack: with the pool suite
def test_gevent_set_only_in_settings_receives_every_part_and_runs_none(
    stack: LocalStack,
) -> None:
    """Found with this stack: CELERY_WORKER_POOL=gevent without `-P gevent` on the command line.

    Celery monkey-patches only when argv names the pool, so the gevent pool runs on
    unpatched sockets: the consumer blocks the hub, and no task greenlet ever runs.
    The worker logs every part as received; none starts, not even the countdown-0 one.
    """
    lane = stack.lanes[SETTINGS_GEVENT.name]
    with httpx.Client(timeout=10) as client:
        inbound_id = trigger(lane, client)
    correlation_id = correlation_for(inbound_id)
    with pytest.raises(DeadlineExceeded):
        delivered(lane, correlation_id, timeout_s=NEVER_WINDOW_S)
    records = parts_of(lane, correlation_id)
    assert [(r.state, r.attempts) for r in records] == [("queued", 0)] * PARTS
    events = events_by_message(lane)
    for record in records:
        assert [e["event"] for e in events[record.message_id]] == ["received"]
    ready = next(e for e in lane.store.events() if e["event"] == "worker_ready")
    assert (ready["pool"], ready["gevent_patched"]) == ("gevent", False)
    with MockAdmin(stack.mock_url) as mock:
        assert mock.journal(recipient=lane.recipient()) == [], "nothing reached the API"


def test_pool_set_only_in_settings_is_the_pool_that_runs(stack: LocalStack) -> None:
    """CELERY_WORKER_POOL=solo with --concurrency 20 on the command line still runs solo."""
    lane = stack.lanes["settings-solo"]
    assert "--pool" not in lane.worker.popen.args
    assert lane.env["CELERY_WORKER_POOL"] == "solo"
    ready = next(e for e in lane.store.events() if e["event"] == "worker_ready")
    assert ready["pool"] == "solo"
    assert ready["concurrency"] == 20


@pytest.mark.parametrize("lane_name", ["solo", "gevent"])
def test_status_webhooks_reach_the_lanes_own_bot(stack: LocalStack, lane_name: str) -> None:
    lane = stack.lanes[lane_name]
    with httpx.Client(timeout=10) as client:
        inbound_id = trigger(lane, client, user=2)
    ids = {r.message_id for r in delivered(lane, correlation_for(inbound_id))}

    def delivered_statuses() -> set[str]:
        return {
            s["biz_opaque_callback_data"]
            for s in lane.store.statuses()
            if s["status"] == "delivered" and s.get("biz_opaque_callback_data") in ids
        }

    wait_for(delivered_statuses, lambda got: got == ids, timeout_s=10, what="delivered statuses")
    others = [other for other in stack.lanes.values() if other is not lane]
    for other in others:
        leaked = {s.get("biz_opaque_callback_data") for s in other.store.statuses()} & ids
        assert not leaked, f"{lane.name}'s statuses reached {other.name}"


def test_a_redelivered_webhook_queues_the_reply_once(stack: LocalStack) -> None:
    lane = stack.lanes["threads"]
    inbound_id = new_inbound_id()
    payload = inbound_text(
        phone_number_id=lane.phone_number_id,
        sender=lane.recipient(3),
        text="Fixtures",
        message_id=inbound_id,
    )
    with httpx.Client(timeout=10) as client:
        for _ in range(3):
            answer = post_inbound(client, lane.webhook_url, payload, DEFAULT_APP_SECRET)
            assert answer.status_code == 200
    records = delivered(lane, correlation_for(inbound_id))
    with MockAdmin(stack.mock_url) as mock:
        journal = mock.journal(recipient=lane.recipient(3))
    assert len(records) == PARTS
    assert len([e for e in journal if e["outcome"] == "accepted"]) == PARTS


def test_an_external_broker_carries_a_lane(tmp_path: Path, external_redis_url: str) -> None:
    url = external_redis_url
    spec = StackSpec(
        lanes=[LaneSpec(name="external", pool="threads", concurrency=4)],
        broker_url=url,
        bot_env=FLOW_ENV,
    )
    client = redis.Redis.from_url(url)
    with LocalStack(spec, tmp_path) as stack:
        lane = stack.lanes["external"]
        assert stack.broker is not None
        assert stack.broker.process is None, "the harness does not own an external broker"
        with httpx.Client(timeout=10) as http:
            inbound_id = trigger(lane, http)
        records = delivered(lane, correlation_for(inbound_id))
        assert {r.state for r in records} == {"sent"}
        prefix = lane.env["BOT_KEY_PREFIX"]
        assert lane.env["CELERY_BROKER_GLOBAL_KEYPREFIX"] == prefix
        keys = list(client.scan_iter(match=f"{prefix}*"))
        assert keys, "the lane's keys live under its own prefix"
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


def test_an_unreachable_external_broker_is_a_clear_error(tmp_path: Path) -> None:
    spec = StackSpec(lanes=[LaneSpec(name="solo", pool="solo")], broker_url="redis://127.0.0.1:1/0")
    with pytest.raises(BrokerError, match=r"cannot reach the broker at redis://127\.0\.0\.1:1/0"):
        LocalStack(spec, tmp_path).start()
