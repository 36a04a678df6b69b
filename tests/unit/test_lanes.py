"""A lane's broker and Celery release: checked before anything starts, environments cached.

Bad input (an unknown broker, a URL that does not fit it or does not answer, a version
that is not one, or cannot be installed) is an error naming the lane and the field. A
failed environment build leaves nothing in the cache.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.bot.worker_events import pool_name
from harness.run import stack_spec
from harness.scenario import ScenarioError, load_scenario, parse_scenario
from harness.stack import envs
from harness.stack.broker import Broker, free_port
from harness.stack.local_brokers import LocalBrokers
from harness.stack.prepare import LaneError, prepare
from harness.stack.rabbitmq import node_config
from harness.stack.spec import LaneSpec, StackSpec

pytestmark = pytest.mark.unit

BASE = """\
name = "lanes"
description = "One lane to break."

[tolerances]
on_time_s = 2.0

[[lanes]]
name = "solo"
pool = "solo"
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('broker = "kafka"', "lanes.0.broker: Input should be 'valkey', 'redis' or 'rabbitmq'"),
        ('broker = "redis"', "lanes.0.broker_url: broker 'redis' needs a redis:// URL"),
        (
            'broker_url = "redis://127.0.0.1:6379/1"',
            "lanes.0.broker_url: the embedded Valkey takes no URL",
        ),
        (
            'broker = "rabbitmq"\nbroker_url = "redis://127.0.0.1:6379/1"',
            "lanes.0.broker_url: broker 'rabbitmq' takes an amqp:// URL",
        ),
        ("broker_db = 0", "lanes.0.broker_db: Input should be greater than or equal to 1"),
        ("broker_db = 16", "lanes.0.broker_db: Input should be less than or equal to 15"),
        (
            'broker = "redis"\nbroker_url = "redis://127.0.0.1:6379/1"\nbroker_db = 3',
            "lanes.0.broker_db: a redis lane names its database in broker_url "
            "(redis://host:6379/3)",
        ),
        (
            'broker = "rabbitmq"\nbroker_db = 3',
            "lanes.0.broker_db: broker 'rabbitmq' is not a Redis",
        ),
        ('celery = "latest"', "lanes.0.celery: must be an exact version such as '5.3.6'"),
        ('kombu = ">=5.3"', "lanes.0.kombu: must be an exact version"),
        ('packages = { kombu = "5.3.4" }', "set kombu with the lane's own `kombu` field"),
    ],
)
def test_a_bad_lane_field_is_named(extra: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(BASE + extra + "\n", "lanes.toml")

    assert expected in str(raised.value)


def test_a_lane_pins_its_release_and_names_its_broker() -> None:
    scenario = parse_scenario(
        BASE
        + 'broker = "rabbitmq"\ncelery = "5.3.6"\nkombu = "5.3.4"\npackages = { redis = "4.6.0" }\n'
        + "[rabbitmq]\nconsumer_timeout_s = 60.0\ncheck_interval_s = 10.0\n",
        "lanes.toml",
    )
    lane = scenario.lane("solo")

    assert lane.pins == {"celery": "5.3.6", "kombu": "5.3.4", "redis": "4.6.0"}
    spec = stack_spec(scenario.scaled(0.5))
    assert (spec.lanes[0].broker, spec.lanes[0].broker_url) == ("rabbitmq", None)
    assert spec.lanes[0].pins == lane.pins
    # RabbitMQ's timers are durations: they scale with the run.
    assert (spec.rabbitmq.consumer_timeout_s, spec.rabbitmq.check_interval_s) == (30.0, 5.0)


def test_lanes_naming_one_database_share_it_each_on_its_own_queue(tmp_path: Path) -> None:
    """Two apps on one Redis database: one URL, no key prefix for kombu (its unacked hash
    and index are shared), each lane's own queue and bot prefix; the other lanes keep a
    database of their own, past the one named."""
    scenario = parse_scenario(
        BASE
        + "broker_db = 1\n"
        + '[[lanes]]\nname = "other"\npool = "solo"\n'
        + '[[lanes]]\nname = "same"\npool = "threads"\nbroker_db = 1\n',
        "lanes.toml",
    )
    spec = stack_spec(scenario)
    assert [lane.broker_db for lane in spec.lanes] == [1, None, 1]
    assert spec.databases() == [1, 2, 1]
    brokers = LocalBrokers(spec, tmp_path, lambda name, process: None)
    brokers.valkey = Broker("redis://127.0.0.1:6379")
    (solo, solo_queue), (other, _), (same, same_queue) = (
        brokers.connection(i, lane, "run") for i, lane in enumerate(spec.lanes)
    )
    assert solo["CELERY_BROKER_URL"] == same["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/1"
    assert other["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/2"
    assert "CELERY_BROKER_GLOBAL_KEYPREFIX" not in solo | same
    assert (solo_queue, same_queue) == ("stagger-solo", "stagger-same")


def test_the_shipped_broker_and_release_scenarios_name_their_lanes() -> None:
    brokers, _ = load_scenario("brokers")
    releases, _ = load_scenario("releases")

    assert {lane.broker for lane in brokers.lanes} == {"valkey", "rabbitmq"}
    assert {lane.pins.get("celery") for lane in releases.lanes} == {"5.3.6", "5.5.3", None}


def test_a_scenario_a_broker_timer_decides_refuses_a_smaller_time_scale() -> None:
    scenario, _ = load_scenario("brokers-long-eta")

    with pytest.raises(ScenarioError) as raised:
        scenario.scaled(0.25)

    assert "runs at a time scale of at least 1 (got 0.25)" in str(raised.value)
    assert scenario.scaled(1.0).time_scale == 1.0


def test_the_rabbitmq_node_is_configured_in_milliseconds() -> None:
    conf, advanced = node_config(consumer_timeout_s=1.5, check_interval_s=0.25)

    assert "consumer_timeout = 1500" in conf.splitlines()
    assert advanced.strip() == "[{rabbit, [{channel_tick_interval, 250}]}]."


def test_eventlet_is_a_pool_the_worker_reports() -> None:
    assert pool_name("celery.concurrency.eventlet:TaskPool") == "eventlet"
    assert LaneSpec(name="green", pool="eventlet").pool == "eventlet"


# -- brokers that do not answer ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broker", "scheme", "says"),
    [
        ("rabbitmq", "amqp://guest:guest@", "cannot reach the AMQP broker"),
        ("redis", "redis://", "cannot reach the broker"),
    ],
)
def test_a_broker_url_that_does_not_answer_is_refused_before_anything_starts(
    broker: str, scheme: str, says: str
) -> None:
    url = f"{scheme}127.0.0.1:{free_port()}/1"  # nothing listens there
    spec = StackSpec(lanes=[LaneSpec(name="far", pool="solo", broker=broker, broker_url=url)])  # type: ignore[arg-type]

    with pytest.raises(LaneError) as raised:
        prepare(spec)

    assert str(raised.value).startswith(f"lane far: broker_url: {says} at {url}")


# -- environments: cached, built atomically ------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(envs.CACHE_VARIABLE, str(tmp_path / "envs"))
    return tmp_path / "envs"


def fake_uv(monkeypatch: pytest.MonkeyPatch, fail_install: bool) -> list[list[str]]:
    """uv stands in for itself: `venv` makes bin/python, `pip install` succeeds or fails."""
    calls: list[list[str]] = []

    def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        if "venv" in argv:
            python = Path(argv[-1]) / "bin" / "python"
            python.parent.mkdir(parents=True)
            python.write_text("")
            return subprocess.CompletedProcess(argv, 0, "", "")
        if fail_install:
            message = "error: No solution found\n  because there is no version of celery==9.9.9"
            return subprocess.CompletedProcess(argv, 1, "", message)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(envs, "_run", run)
    return calls


def test_a_failed_build_names_the_lane_and_leaves_nothing_in_the_cache(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_uv(monkeypatch, fail_install=True)

    with pytest.raises(envs.EnvError) as raised:
        envs.ensure_env({"celery": "9.9.9"}, "old")

    message = str(raised.value)
    assert message.startswith("lane old: celery = '9.9.9' cannot be installed: ")
    assert "no version of celery==9.9.9" in message
    assert list(cache.iterdir()) == []


def test_an_environment_is_built_once_then_taken_from_the_cache(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_uv(monkeypatch, fail_install=False)
    pins = {"celery": "5.3.6", "kombu": "5.3.4"}

    first = envs.ensure_env(pins, "old")
    again = envs.ensure_env(dict(reversed(pins.items())), "other")

    assert first == again == cache / envs.env_key(pins) / "bin" / "python"
    assert [call[call.index("pip") + 1] if "pip" in call else "venv" for call in calls] == [
        "venv",
        "install",
    ]
    overrides = (first.parent.parent / "stagger-overrides.txt").read_text().splitlines()
    assert overrides == ["celery[redis]==5.3.6", "kombu==5.3.4"]
    assert [p.name for p in cache.iterdir()] == [envs.env_key(pins)]  # no build left behind


def test_an_environment_is_keyed_by_its_pins() -> None:
    keys: set[Any] = {
        envs.env_key({"celery": "5.3.6"}),
        envs.env_key({"celery": "5.4.0"}),
        envs.env_key({"celery": "5.3.6", "kombu": "5.3.4"}),
    }
    assert len(keys) == 3
    assert envs.env_key({"celery": "5.3.6"}) == envs.env_key({"celery": "5.3.6"})


def test_a_lane_whose_release_cannot_be_installed_is_refused_by_prepare(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_uv(monkeypatch, fail_install=True)
    spec = StackSpec(lanes=[LaneSpec(name="old", pool="solo", pins={"celery": "9.9.9"})])

    with pytest.raises(LaneError) as raised:
        prepare(spec)

    assert str(raised.value).startswith("lane old: celery = '9.9.9' cannot be installed")
