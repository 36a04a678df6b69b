"""The stack without starting it: specs refused as data, worker command lines, the broker."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from harness.bot.settings import POOLS
from harness.stack.broker import Broker, BrokerError, external
from harness.stack.local import worker_command
from harness.stack.spec import MAX_EMBEDDED_LANES, LaneSpec, StackSpec

pytestmark = pytest.mark.unit


def test_one_lane_per_pool() -> None:
    spec = StackSpec.of_pools(*POOLS)
    assert [(lane.name, lane.pool) for lane in spec.lanes] == [(pool, pool) for pool in POOLS]
    assert spec.broker_url is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: StackSpec(lanes=[]), "at least 1 item"),
        (
            lambda: StackSpec(lanes=[LaneSpec(name="a", pool="solo")] * 2),
            "lane names must be unique, repeated: ['a']",
        ),
        (
            lambda: StackSpec(
                lanes=[LaneSpec(name=f"l{i}", pool="solo") for i in range(MAX_EMBEDDED_LANES + 1)]
            ),
            f"the embedded broker has room for {MAX_EMBEDDED_LANES} lanes, got 16",
        ),
        (lambda: LaneSpec(name="Solo Lane", pool="solo"), "should match pattern"),
        (lambda: LaneSpec(name="a", pool="greenlet"), "'gevent' or 'eventlet'"),
        (lambda: LaneSpec(name="a", pool="solo", concurrency=0), "greater than or equal to 1"),
        (
            lambda: LaneSpec(name="a", pool="solo", env={"celery_worker_pool": "solo"}),
            "environment variable names must be UPPER_CASE, got ['celery_worker_pool']",
        ),
        (
            lambda: LaneSpec(name="a", pool="solo", env={"FIXTURES_PARTZ": "5"}),
            "unknown bot setting(s) ['FIXTURES_PARTZ']; known: BOT_KEY_PREFIX",
        ),
        (
            lambda: StackSpec(
                lanes=[LaneSpec(name="a", pool="solo")], bot_env={"CELERY_ACKS_LATE": "1"}
            ),
            "unknown bot setting(s) ['CELERY_ACKS_LATE']",
        ),
        (
            lambda: StackSpec(
                lanes=[
                    LaneSpec(name="ok", pool="solo"),
                    LaneSpec(name="bad", pool="solo", env={"SEND_RATE_LIMIT": "fast"}),
                ]
            ),
            "lane bad: bot settings: 1 invalid environment variable(s)\n  SEND_RATE_LIMIT:",
        ),
        (
            lambda: StackSpec(
                lanes=[LaneSpec(name="a", pool="solo")],
                mock_behaviours={"latency": {"default": {"model": "gamma"}}},
            ),
            "mock behaviours: 1 invalid setting(s)\n  latency.default: Input tag 'gamma'",
        ),
        (
            lambda: StackSpec(
                lanes=[LaneSpec(name="a", pool="solo")], bot_env={"FIXTURES_SPACING_S": "-1"}
            ),
            "FIXTURES_SPACING_S: Input should be greater than or equal to 0 (got '-1')",
        ),
    ],
)
def test_a_bad_spec_is_refused_with_what_was_wrong(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        build()
    assert message in str(caught.value)


def test_other_variables_pass_through_to_the_processes() -> None:
    lane = LaneSpec(name="a", pool="gevent", env={"GEVENT_RESOLVER": "ares", "TZ": "UTC"})
    assert lane.env == {"GEVENT_RESOLVER": "ares", "TZ": "UTC"}


@pytest.mark.parametrize(
    ("named", "expected"),
    [
        ([None, None, None], [1, 2, 3]),
        ([None, 5, None, 5], [1, 5, 2, 5]),
        ([None, 1, None], [2, 1, 3]),
    ],
)
def test_lanes_share_the_database_they_name_and_the_others_keep_their_own(
    named: list[int | None], expected: list[int]
) -> None:
    lanes = [LaneSpec(name=f"l{i}", pool="solo", broker_db=db) for i, db in enumerate(named)]
    assert StackSpec(lanes=lanes).databases() == expected


def test_lanes_on_an_external_redis_take_no_database_of_the_embedded_one() -> None:
    external = [
        LaneSpec(name=f"r{i}", pool="solo", broker="redis", broker_url="redis://h/0")
        for i in range(MAX_EMBEDDED_LANES)
    ]
    spec = StackSpec(lanes=[*external, LaneSpec(name="v", pool="solo", broker_db=4)])
    assert spec.databases() == [None] * MAX_EMBEDDED_LANES + [4]
    assert spec.database_of(MAX_EMBEDDED_LANES) == 4
    with pytest.raises(ValueError, match="lane r0 takes no database of the embedded Valkey"):
        spec.database_of(0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: StackSpec(
                lanes=[LaneSpec(name="a", pool="solo", broker_db=3)],
                broker_url="redis://127.0.0.1:6379/0",
            ),
            "lanes ['a'] name a database of the embedded Valkey (broker_db), but the run is "
            "on an external Redis (--broker-url)",
        ),
        (
            lambda: LaneSpec(name="a", pool="solo", broker="rabbitmq", broker_db=2),
            "broker_db: broker 'rabbitmq' is not a Redis",
        ),
        (lambda: LaneSpec(name="a", pool="solo", broker_db=16), "less than or equal to 15"),
    ],
)
def test_a_database_no_lane_can_have_is_refused(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        build()
    assert message in str(raised.value)


def test_an_external_broker_has_no_lane_limit() -> None:
    lanes = [LaneSpec(name=f"l{i}", pool="solo") for i in range(MAX_EMBEDDED_LANES + 1)]
    assert len(StackSpec(lanes=lanes, broker_url="redis://127.0.0.1:6379/0").lanes) == 16


def test_the_worker_gets_the_pool_on_its_command_line() -> None:
    argv = worker_command(LaneSpec(name="g", pool="gevent", concurrency=20), "q-g", "INFO")
    assert argv[:6] == [sys.executable, "-m", "celery", "-A", "harness.bot.worker", "worker"]
    assert argv[6:] == [
        "--loglevel", "INFO", "--hostname", "g@%h", "--queues", "q-g",
        "--pool", "gevent", "--concurrency", "20",
    ]  # fmt: skip


def test_a_settings_only_pool_leaves_only_concurrency_on_the_command_line() -> None:
    lane = LaneSpec(name="s", pool="solo", concurrency=20, pool_from_settings=True)
    argv = worker_command(lane, "q-s", "INFO")
    assert "--pool" not in argv
    assert argv[-2:] == ["--concurrency", "20"]


@pytest.mark.parametrize(
    ("url", "db", "expected"),
    [
        ("redis://127.0.0.1:6379/0", 3, "redis://127.0.0.1:6379/3"),
        ("redis://127.0.0.1:6379", 2, "redis://127.0.0.1:6379/2"),
        ("redis://:secret@127.0.0.1:6379/5", 1, "redis://:secret@127.0.0.1:6379/1"),
    ],
)
def test_each_lane_can_have_its_own_database(url: str, db: int, expected: str) -> None:
    assert Broker(url).url_for_db(db) == expected


@pytest.mark.parametrize("url", ["amqp://guest@127.0.0.1//", "127.0.0.1:6379", "http://x"])
def test_an_external_broker_must_be_redis(url: str) -> None:
    with pytest.raises(BrokerError, match="broker URL must start with redis:// or rediss://"):
        external(url)


def test_the_harness_never_imports_gevent() -> None:
    """Monkey-patching stays in the gevent worker: importing the harness must not load gevent."""
    code = "import sys, harness.cli, harness.bot.webhook; print('gevent' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"


def test_the_embedded_broker_names_its_version(embedded_broker: Broker) -> None:
    name, version = embedded_broker.version().split()
    assert name == "valkey"
    assert version.split(".")[0].isdigit()
