"""The bot's settings from the environment, their errors, and the Celery config made from them.

Every test starts from an environment without any bot variable; `load_settings`
is then driven by `monkeypatch.setenv`, as a deployment drives it. Only the
last test starts a process (`python -m harness.bot` with a bad environment),
which must exit before any server starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.bot.app import Bot, celery_config, create_bot
from harness.bot.settings import (
    MAX_TEXT_CHARS,
    MIN_PART_CHARS,
    BotSettings,
    SettingsError,
    load_settings,
)

pytestmark = pytest.mark.unit

ENV_NAMES = [name.upper() for name in BotSettings.model_fields]
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No bot variable from the outer environment may leak into a test."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def settings_error(**env: str) -> list[str]:
    """The lines of the SettingsError that `env` gives (set through the real environment)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with pytest.raises(SettingsError) as caught:
            load_settings()
    assert caught.value.__cause__ is None  # `from None`: the message is the whole story
    return str(caught.value).splitlines()


# -- reading the environment -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("CELERY_WORKER_POOL", "threads", "threads"),
        ("CELERY_WORKER_POOL", "gevent", "gevent"),
        ("CELERY_WORKER_CONCURRENCY", "8", 8),
        ("CELERY_WORKER_PREFETCH_MULTIPLIER", "0", 0),
        ("CELERY_TASK_ACKS_LATE", "true", True),
        ("CELERY_TASK_REJECT_ON_WORKER_LOST", "1", True),
        ("CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS", "true", True),
        ("CELERY_WORKER_DISABLE_RATE_LIMITS", "yes", True),
        ("CELERY_ENABLE_UTC", "false", False),
        ("CELERY_TIMEZONE", "Europe/London", "Europe/London"),
        ("CELERY_TASK_QUEUE", "stagger-threads", "stagger-threads"),
        ("CELERY_TASK_DEFAULT_QUEUE_TYPE", "quorum", "quorum"),
        ("CELERY_TASK_DEFAULT_QUEUE_TYPE", "none", None),
        ("CELERY_TASK_DEFAULT_EXCHANGE_TYPE", "topic", "topic"),
        ("CELERY_BROKER_CHANNEL_ERROR_RETRY", "true", True),
        ("CELERY_BROKER_URL", "rediss://broker.example:6380/2", "rediss://broker.example:6380/2"),
        ("CELERY_BROKER_GLOBAL_KEYPREFIX", "lane-1:", "lane-1:"),
        ("CELERY_BROKER_VISIBILITY_TIMEOUT", "43200", 43200.0),
        ("BOT_REDIS_URL", "unix:///run/redis.sock", "unix:///run/redis.sock"),
        ("SEND_RATE_LIMIT", "30/m", "30/m"),
        ("SEND_RATE_LIMIT", "10", "10"),
        ("SEND_RATE_LIMIT", "none", None),
        ("SEND_RATE_LIMIT", "off", None),
        ("SEND_RATE_LIMIT", "", None),
        ("SEND_MAX_RETRIES", "0", 0),
        ("SEND_RETRY_BACKOFF_S", "0.5", 0.5),
        ("WHATSAPP_API_VERSION", "v22.0", "v22.0"),
        ("WHATSAPP_READ_TIMEOUT_S", "2.5", 2.5),
        ("FIXTURES_PARTS", "60", 60),
        ("FIXTURES_PART_CHARS", str(MIN_PART_CHARS), MIN_PART_CHARS),
        ("FIXTURES_PART_CHARS", str(MAX_TEXT_CHARS), MAX_TEXT_CHARS),
        ("FIXTURES_SEED", "-7", -7),
    ],
)
def test_environment_variable_is_read(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: object
) -> None:
    monkeypatch.setenv(env, value)

    assert getattr(load_settings(), env.lower()) == expected


def test_defaults_leave_pool_concurrency_and_rate_limit_to_celery() -> None:
    settings = load_settings()

    assert settings.celery_worker_pool is None
    assert settings.celery_worker_concurrency is None
    assert settings.send_rate_limit is None
    assert settings.celery_broker_global_keyprefix is None
    assert (settings.fixtures_parts, settings.fixtures_part_chars) == (22, MAX_TEXT_CHARS)


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("celery_worker_pool", "solo")

    assert load_settings().celery_worker_pool == "solo"


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_WORKER_POOL", "threads")
    monkeypatch.setenv("FIXTURES_PARTS", "3")

    settings = load_settings(celery_worker_pool="solo")

    assert (settings.celery_worker_pool, settings.fixtures_parts) == ("solo", 3)


def test_settings_are_frozen() -> None:
    settings = load_settings()

    with pytest.raises(ValueError, match="frozen"):
        settings.celery_worker_pool = "solo"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "expected_store"),
    [
        ({}, "redis://broker:6379/0"),
        ({"BOT_REDIS_URL": "redis://store:6379/3"}, "redis://store:6379/3"),
    ],
)
def test_store_url_defaults_to_the_broker(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected_store: str
) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://broker:6379/0")
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert load_settings().store_url == expected_store


@pytest.mark.parametrize("base", ["http://graph.test", "http://graph.test/"])
def test_messages_url(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    monkeypatch.setenv("WHATSAPP_API_URL", base)
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "123456")
    monkeypatch.setenv("WHATSAPP_API_VERSION", "v20.0")

    assert load_settings().messages_url == "http://graph.test/v20.0/123456/messages"


# -- bad values ----------------------------------------------------------------------------------

BAD_VALUES: list[Any] = [
    ("CELERY_WORKER_POOL", "bogus", "'solo', 'prefork', 'threads', 'gevent' or 'eventlet'"),
    ("CELERY_WORKER_POOL", "thread", "'solo', 'prefork', 'threads', 'gevent' or 'eventlet'"),
    ("FIXTURES_PART_CHARS", "5", f"greater than or equal to {MIN_PART_CHARS}"),
    ("FIXTURES_PART_CHARS", "5000", f"less than or equal to {MAX_TEXT_CHARS}"),
    ("CELERY_BROKER_URL", "http://x", "must be a redis:// or amqp:// URL"),
    ("BOT_REDIS_URL", "http://store:6379", "must be a redis:// URL"),
    ("SEND_RATE_LIMIT", "fast", "a Celery rate such as '10/s', '30/m' or '100/h'"),
    ("SEND_RATE_LIMIT", "10/sec", "a Celery rate such as '10/s', '30/m' or '100/h'"),
    ("WHATSAPP_API_VERSION", "21", r"match pattern '^v\d+\.\d+$'"),
    ("WHATSAPP_PHONE_NUMBER_ID", "+15550100", r"match pattern '^\d+$'"),
    ("FIXTURES_PARTS", "0", "greater than or equal to 1"),
    ("FIXTURES_PARTS", "1001", "less than or equal to 1000"),
    ("SEND_MAX_RETRIES", "-1", "greater than or equal to 0"),
    ("CELERY_WORKER_CONCURRENCY", "many", "a valid integer"),
    ("CELERY_TASK_ACKS_LATE", "perhaps", "a valid boolean"),
    ("CELERY_TASK_DEFAULT_QUEUE_TYPE", "stream", "'classic' or 'quorum'"),
    ("CELERY_TASK_DEFAULT_EXCHANGE_TYPE", "fanout", "'direct' or 'topic'"),
    ("WHATSAPP_READ_TIMEOUT_S", "0", "greater than 0"),
    ("WHATSAPP_CONNECT_TIMEOUT_S", "soon", "a valid number"),
]


@pytest.mark.parametrize(("env", "value", "allowed"), BAD_VALUES)
def test_bad_value_names_the_variable_the_value_and_what_is_allowed(
    env: str, value: str, allowed: str
) -> None:
    header, *lines = settings_error(**{env: value})

    assert header == "bot settings: 1 invalid environment variable(s)"
    (line,) = lines
    assert line.startswith(f"  {env}: ")
    assert allowed in line
    assert line.endswith(f"(got {value!r})")


def test_several_bad_values_give_one_line_each() -> None:
    bad = {
        "CELERY_WORKER_POOL": "bogus",
        "FIXTURES_PART_CHARS": "5000",
        "CELERY_BROKER_URL": "http://x",
        "SEND_RATE_LIMIT": "fast",
        "WHATSAPP_API_VERSION": "21",
        "FIXTURES_PARTS": "0",
    }

    header, *lines = settings_error(**bad, CELERY_WORKER_CONCURRENCY="4", FIXTURES_SEED="9")

    assert header == f"bot settings: {len(bad)} invalid environment variable(s)"
    assert len(lines) == len(bad)
    named = {line.strip().split(":", 1)[0] for line in lines}
    assert named == set(bad)
    for line in lines:
        env = line.strip().split(":", 1)[0]
        assert line.endswith(f"(got {bad[env]!r})")


def test_an_amqp_broker_needs_a_redis_for_the_outbox() -> None:
    header, line = settings_error(CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//")

    assert header == "bot settings: 1 invalid environment variable(s)"
    assert "BOT_REDIS_URL must name a Redis" in line
    settings = load_settings(
        celery_broker_url="amqp://guest:guest@127.0.0.1:5672//",
        bot_redis_url="redis://127.0.0.1:6379/3",
    )
    assert settings.store_url == "redis://127.0.0.1:6379/3"


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


# -- the Celery config -------------------------------------------------------------------------


def test_celery_config_of_the_defaults() -> None:
    settings = load_settings()

    assert celery_config(settings) == {
        "broker_url": "redis://127.0.0.1:6379/0",
        "broker_transport_options": {"visibility_timeout": 3600.0},
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,
        "task_default_queue": "celery",
        "task_acks_late": False,
        "task_reject_on_worker_lost": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_prefetch_multiplier": 4,
        "worker_disable_rate_limits": False,
        "timezone": "UTC",
        "enable_utc": True,
    }


LANE_ENV = {
    "CELERY_BROKER_URL": "redis://127.0.0.1:6390/1",
    "CELERY_BROKER_GLOBAL_KEYPREFIX": "lane-threads:",
    "CELERY_BROKER_VISIBILITY_TIMEOUT": "120",
    "CELERY_WORKER_POOL": "threads",
    "CELERY_WORKER_CONCURRENCY": "8",
    "CELERY_WORKER_PREFETCH_MULTIPLIER": "1",
    "CELERY_TASK_ACKS_LATE": "true",
    "CELERY_TASK_REJECT_ON_WORKER_LOST": "true",
    "CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS": "true",
    "CELERY_WORKER_DISABLE_RATE_LIMITS": "true",
    "CELERY_TIMEZONE": "Europe/London",
    "CELERY_ENABLE_UTC": "false",
    "CELERY_TASK_QUEUE": "stagger-threads",
    "SEND_RATE_LIMIT": "10/s",
}
LANE_CONFIG: dict[str, object] = {
    "broker_url": "redis://127.0.0.1:6390/1",
    "broker_transport_options": {"visibility_timeout": 120.0, "global_keyprefix": "lane-threads:"},
    "broker_connection_retry_on_startup": True,
    "task_ignore_result": True,
    "task_default_queue": "stagger-threads",
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_cancel_long_running_tasks_on_connection_loss": True,
    "worker_prefetch_multiplier": 1,
    "worker_disable_rate_limits": True,
    "timezone": "Europe/London",
    "enable_utc": False,
    "worker_pool": "threads",
    "worker_concurrency": 8,
}


@pytest.fixture
def lane_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in LANE_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("lane_env")
def test_celery_config_of_a_configured_lane() -> None:
    assert celery_config(load_settings()) == LANE_CONFIG


@pytest.mark.parametrize(
    ("env", "present", "absent"),
    [
        ({"CELERY_WORKER_POOL": "solo"}, {"worker_pool": "solo"}, "worker_concurrency"),
        ({"CELERY_WORKER_CONCURRENCY": "3"}, {"worker_concurrency": 3}, "worker_pool"),
        (
            {
                "CELERY_TASK_DEFAULT_QUEUE_TYPE": "quorum",
                "CELERY_TASK_DEFAULT_EXCHANGE_TYPE": "topic",
            },
            {"task_default_queue_type": "quorum", "task_default_exchange_type": "topic"},
            "broker_channel_error_retry",
        ),
        (
            {"CELERY_BROKER_CHANNEL_ERROR_RETRY": "true"},
            {"broker_channel_error_retry": True},
            "task_default_queue_type",
        ),
        (
            {"CELERY_WORKER_ETA_TASK_LIMIT": "2"},
            {"worker_eta_task_limit": 2},
            "broker_channel_error_retry",
        ),
    ],
)
def test_optional_celery_settings_are_set_only_when_configured(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], present: dict[str, object], absent: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    config = celery_config(load_settings())

    assert present.items() <= config.items()
    assert absent not in config


def test_the_worker_holds_any_number_of_eta_tasks_unless_a_limit_is_set() -> None:
    assert "worker_eta_task_limit" not in celery_config(load_settings())
    assert settings_error(CELERY_WORKER_ETA_TASK_LIMIT="0")


def test_redis_transport_connection_options_are_passed_only_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unset, kombu's own defaults apply (it hands them to redis-py explicitly); set, each
    goes into broker_transport_options beside the visibility timeout."""
    assert celery_config(load_settings())["broker_transport_options"] == {
        "visibility_timeout": 3600.0
    }
    for name, value in {
        "CELERY_BROKER_SOCKET_TIMEOUT": "30",
        "CELERY_BROKER_SOCKET_KEEPALIVE": "true",
        "CELERY_BROKER_HEALTH_CHECK_INTERVAL": "10",
        "CELERY_BROKER_RETRY_ON_TIMEOUT": "true",
    }.items():
        monkeypatch.setenv(name, value)

    assert celery_config(load_settings())["broker_transport_options"] == {
        "visibility_timeout": 3600.0,
        "socket_timeout": 30.0,
        "socket_keepalive": True,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CELERY_BROKER_SOCKET_TIMEOUT", "0"),
        ("CELERY_BROKER_HEALTH_CHECK_INTERVAL", "-1"),
        ("CELERY_BROKER_RETRY_ON_TIMEOUT", "maybe"),
    ],
)
def test_redis_transport_connection_options_are_checked(name: str, value: str) -> None:
    assert any(name.lower() in line.lower() for line in settings_error(**{name: value}))


@pytest.fixture
def make_bot() -> Iterator[Callable[[], Bot]]:
    """`create_bot` from the environment; nothing connects, the stores are closed after."""
    bots: list[Bot] = []

    def make() -> Bot:
        bots.append(create_bot(load_settings()))
        return bots[-1]

    yield make
    for bot in bots:
        bot.store.redis.close()


@pytest.mark.usefixtures("lane_env")
def test_bot_celery_app_has_the_config_and_the_rate_limit(make_bot: Callable[[], Bot]) -> None:
    bot = make_bot()

    for key, value in LANE_CONFIG.items():
        assert bot.celery.conf[key] == value, key
    assert bot.send_task.rate_limit == "10/s"
    assert bot.celery.main == "bot"


def test_bot_without_pool_or_rate_limit_keeps_celerys_defaults(
    make_bot: Callable[[], Bot],
) -> None:
    bot = make_bot()

    assert bot.celery.conf.worker_pool == "prefork"  # Celery's own default, not overridden
    assert bot.celery.conf.worker_concurrency is None
    assert bot.send_task.rate_limit is None
    assert "global_keyprefix" not in bot.celery.conf.broker_transport_options


# -- the command line ----------------------------------------------------------------------------


def test_bot_command_with_a_bad_environment_exits_2_before_serving() -> None:
    bad = {
        "CELERY_WORKER_POOL": "bogus",
        "FIXTURES_PART_CHARS": "5",
        "CELERY_BROKER_URL": "http://x",
        "SEND_RATE_LIMIT": "fast",
    }
    env = {name: value for name, value in os.environ.items() if name.upper() not in ENV_NAMES}

    done = subprocess.run(
        [sys.executable, "-m", "harness.bot", "--host", "127.0.0.1", "--port", "0"],
        env=env | bad,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,  # on expiry the child is killed, and the test fails
        check=False,
    )

    assert done.returncode == 2, done.stderr
    assert "listening" not in done.stdout
    header, *lines = done.stderr.strip().splitlines()
    assert header == "bot settings: 4 invalid environment variable(s)"
    assert len(lines) == len(bad)
    for line in lines:
        env_name = line.strip().split(":", 1)[0]
        assert line.endswith(f"(got {bad.pop(env_name)!r})")
    assert bad == {}  # every bad variable named exactly once
    assert "Traceback" not in done.stderr
