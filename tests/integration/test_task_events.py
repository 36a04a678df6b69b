"""An external lane's task events heard across a broker restart (a broker fault)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from harness.stack import broker as brokers
from harness.stack.external import ExternalLaneError, TaskEvents
from harness.waiting import wait_for

pytestmark = pytest.mark.integration

HEAR_S = 10.0  # an event travels in milliseconds; the receiver reconnects in RECONNECT_S


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[brokers.Broker]:
    started = brokers.start_embedded(tmp_path)
    try:
        yield started
    finally:
        started.stop()


def _send(url: str, uuid: str, kind: str = "task-received", hostname: str | None = None) -> None:
    """One event, sent as a worker sends it (Celery's event dispatcher: with the sender's
    hostname and PID)."""
    app = Celery(broker=url, set_as_current=False)
    with app.connection_for_write() as connection:
        dispatcher = app.events.Dispatcher(connection, hostname=hostname, enabled=True)
        dispatcher.send(kind, uuid=uuid)
        dispatcher.close()
    app.close()


def _heard(events: TaskEvents) -> set[str]:
    return {event["uuid"] for event in events.snapshot()}


def test_events_after_a_restart_of_the_broker_are_heard(
    broker: brokers.Broker, tmp_path: Path
) -> None:
    url = broker.url_for_db(2)
    events = TaskEvents(url)
    events.start(timeout_s=HEAR_S)
    try:
        _send(url, "before")
        wait_for(lambda: "before" in _heard(events), timeout_s=HEAR_S, interval_s=0.05)

        brokers.shut_down(broker, keep_data=False)
        brokers.start_again(broker, tmp_path / "broker.2.log")

        # Sent until heard: one sent before the receiver is back is lost, as to Flower.
        def heard_after() -> bool:
            _send(url, "after")
            return "after" in _heard(events)

        wait_for(heard_after, timeout_s=HEAR_S, interval_s=0.2)
        assert events.reconnects >= 1
    finally:
        events.stop()
    assert not events._thread.is_alive()  # stopped, not left retrying


def test_a_broker_that_never_answers_fails_the_start_with_its_error() -> None:
    port = brokers.free_port()
    events = TaskEvents(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(ExternalLaneError, match=rf"no event receiver on .*:{port}/0 .*last: "):
            events.start(timeout_s=1.0)
    finally:
        events.stop()
    assert not events._thread.is_alive()


def test_a_worker_announcing_itself_again_is_counted_once(broker: brokers.Broker) -> None:
    """A worker sends worker-online again when its consumer restarts after a lost
    connection: readiness of a new worker must not be read from that."""
    url = broker.url_for_db(4)
    events = TaskEvents(url)
    events.start(timeout_s=HEAR_S)
    try:
        _send(url, "one", kind="worker-online", hostname="lane@a")
        _send(url, "again", kind="worker-online", hostname="lane@a")  # same host and PID
        _send(url, "marker", hostname="lane@a")  # heard after both: they were read
        wait_for(lambda: "marker" in _heard(events), timeout_s=HEAR_S, interval_s=0.05)
        assert events.online_count == 1
        _send(url, "two", kind="worker-online", hostname="lane@b")
        wait_for(lambda: events.online_count == 2, timeout_s=HEAR_S, interval_s=0.05)
    finally:
        events.stop()
