"""The embedded broker restarted on its own port, with its data or empty."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from harness.stack import broker as brokers

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_a_restart_keeps_the_data_or_starts_empty(tmp_path: Path) -> None:
    broker = brokers.start_embedded(tmp_path)
    try:
        assert broker.process is not None
        first = broker.process.pid
        client = redis.Redis.from_url(broker.url_for_db(3))
        client.set("part", "queued")

        brokers.shut_down(broker, keep_data=True)
        assert not broker.process.alive()
        brokers.start_again(broker, tmp_path / "broker.2.log")
        assert broker.process.pid != first
        assert client.get("part") == b"queued"  # same URL, same data

        brokers.shut_down(broker, keep_data=False)
        assert not (tmp_path / brokers.DUMP).exists()
        brokers.start_again(broker, tmp_path / "broker.3.log")
        assert client.get("part") is None
        client.close()
    finally:
        broker.stop()


def test_an_external_broker_is_never_restarted(tmp_path: Path) -> None:
    with pytest.raises(brokers.BrokerError, match="not started by the harness"):
        brokers.shut_down(brokers.Broker(url="redis://127.0.0.1:1/0"), keep_data=True)
