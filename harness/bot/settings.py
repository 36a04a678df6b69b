"""The bot's settings, read from the environment the way the production deployment sets them.

Names follow the Django convention the production bot used (`CELERY_*` settings
read with `config_from_object(settings, namespace="CELERY")`), so a lane of the
harness is configured exactly as a deployment would be: by environment only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from celery.utils.time import rate as parse_rate
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..errors import InputError

Pool = Literal["solo", "prefork", "threads", "gevent", "eventlet"]
POOLS: tuple[Pool, ...] = ("solo", "prefork", "threads", "gevent", "eventlet")
# The pools `harness stack` brings up when none is named: the incident's four.
DEFAULT_POOLS: tuple[Pool, ...] = ("solo", "prefork", "threads", "gevent")
# Schemes of the brokers a lane may use; the bot's own store is always a Redis.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
AMQP_SCHEMES = ("amqp://", "pyamqp://", "amqps://")

# Meta's limit on a text message body.
MAX_TEXT_CHARS = 4096
# Below this a fixtures section (a header and one fixture line) cannot fit in one part.
MIN_PART_CHARS = 160


def _none_words(value: object) -> object:
    """Let `none`, `off` or an empty value mean unset (a timeout off), as ops people write it."""
    if isinstance(value, str) and value.strip().lower() in {"", "none", "off", "null"}:
        return None
    return value


Timeout = Annotated[Annotated[float, Field(gt=0)] | None, BeforeValidator(_none_words)]


class SettingsError(InputError):
    """The environment holds a setting the bot cannot run with; the message says which."""


class BotSettings(BaseSettings):
    """Every knob of the bot and its Celery app; each field is the upper-case env var."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # Broker and storage.
    celery_broker_url: str = "redis://127.0.0.1:6379/0"
    bot_redis_url: str | None = Field(
        default=None, description="Outbox and events store; the broker's Redis when unset."
    )
    bot_key_prefix: str = "bot:"
    celery_broker_global_keyprefix: str | None = None
    celery_broker_visibility_timeout: Annotated[float, Field(gt=0)] = 3600.0
    # The Redis transport's connection options (broker_transport_options), passed only when
    # set: kombu's own defaults otherwise (no socket timeout, no keep-alive, a 25 s health
    # check, no retry on timeout), which it hands to redis-py explicitly.
    celery_broker_socket_timeout: Timeout = Field(
        default=None,
        description="Redis transport `socket_timeout` (s): how long a command on the broker "
        "connection may wait for the socket; unset: kombu's default, none.",
    )
    celery_broker_socket_keepalive: bool | None = Field(
        default=None,
        description="Redis transport `socket_keepalive`: TCP keep-alive on the broker "
        "connections; unset: kombu's default (off).",
    )
    celery_broker_health_check_interval: Annotated[
        Annotated[int, Field(ge=1)] | None, BeforeValidator(_none_words)
    ] = Field(
        default=None,
        description="Redis transport `health_check_interval` (s, at least 1): redis-py PINGs "
        "a connection idle this long before its next command, and kombu checks its BRPOP and "
        "pub/sub connections as often (kombu repeats its check timers at this interval, so 0 "
        "would spin the worker's loop); unset: kombu's default, 25. Not scaled with the run's "
        "time scale (a whole number of seconds).",
    )
    celery_broker_retry_on_timeout: bool | None = Field(
        default=None,
        description="Redis transport `retry_on_timeout`: redis-py retries a command, once, "
        "after a timeout or a connection error (reconnecting first); unset: kombu's default "
        "(off).",
    )

    # Worker and task execution.
    celery_worker_pool: Annotated[Pool | None, BeforeValidator(_none_words)] = None
    celery_worker_concurrency: Annotated[
        Annotated[int, Field(ge=1, le=10_000)] | None, BeforeValidator(_none_words)
    ] = None
    celery_worker_prefetch_multiplier: Annotated[int, Field(ge=0)] = 4
    celery_worker_eta_task_limit: Annotated[
        Annotated[int, Field(ge=1)] | None, BeforeValidator(_none_words)
    ] = Field(
        default=None,
        description="Celery 5.5+ `worker_eta_task_limit`: the most ETA / countdown tasks a "
        "worker holds at once; the rest wait in the broker until a held one runs. Unset: no "
        "limit, Celery's default.",
    )
    celery_task_acks_late: bool = False
    celery_task_reject_on_worker_lost: bool = False
    celery_worker_cancel_long_running_tasks_on_connection_loss: bool = Field(
        default=False,
        description="Celery 5.1+: on a lost broker connection, cancel the running tasks "
        "with late acknowledgement (their message is redelivered anyway); Celery's default.",
    )
    celery_worker_disable_rate_limits: bool = False
    celery_timezone: str = "UTC"
    celery_enable_utc: bool = True
    celery_task_queue: Annotated[str, Field(min_length=1)] = "celery"
    # Set only when configured (Celery's defaults otherwise): quorum queues on RabbitMQ, and
    # a topic exchange, turn on Celery's native delayed delivery (Celery 5.5+).
    celery_task_default_queue_type: Annotated[
        Literal["classic", "quorum"] | None, BeforeValidator(_none_words)
    ] = None
    celery_task_default_exchange_type: Annotated[
        Literal["direct", "topic"] | None, BeforeValidator(_none_words)
    ] = None
    celery_broker_channel_error_retry: bool = False

    # The send task.
    send_rate_limit: str | None = None
    send_max_retries: Annotated[int, Field(ge=0, le=100)] = 5
    send_retry_backoff_s: Annotated[float, Field(ge=0)] = 1.0
    send_retry_backoff_max_s: Annotated[float, Field(ge=0)] = 60.0

    # The Cloud API client.
    whatsapp_api_url: str = "https://graph.facebook.com"
    whatsapp_api_version: Annotated[str, Field(pattern=r"^v\d+\.\d+$")] = "v21.0"
    whatsapp_phone_number_id: Annotated[str, Field(pattern=r"^\d+$")] = "106540352242922"
    whatsapp_access_token: Annotated[str, Field(min_length=1)] = "mock-access-token"
    whatsapp_app_secret: Annotated[str, Field(min_length=1)] = "mock-app-secret"
    whatsapp_verify_token: Annotated[str, Field(min_length=1)] = "mock-verify-token"
    whatsapp_connect_timeout_s: Timeout = 5.0
    whatsapp_read_timeout_s: Timeout = 10.0
    whatsapp_write_timeout_s: Timeout = 10.0
    whatsapp_pool_timeout_s: Timeout = 10.0

    # The fixtures flow.
    fixtures_keyword: Annotated[str, Field(min_length=1)] = "fixtures"
    fixtures_parts: Annotated[int, Field(ge=1, le=1000)] = 22
    fixtures_spacing_s: Annotated[float, Field(ge=0, le=3600)] = 2.0
    fixtures_part_chars: Annotated[int, Field(ge=MIN_PART_CHARS, le=MAX_TEXT_CHARS)] = (
        MAX_TEXT_CHARS
    )
    fixtures_seed: int = 0

    @field_validator("send_rate_limit")
    @classmethod
    def _celery_rate(cls, value: str | None) -> str | None:
        """Celery accepts `N`, `N/s`, `N/m` or `N/h`; anything else it would ignore silently."""
        if value is None or value.strip().lower() in {"", "none", "off"}:
            return None
        try:
            parse_rate(value)
        except (ValueError, KeyError):
            raise ValueError(
                f"must be a Celery rate such as '10/s', '30/m' or '100/h', got {value!r}"
            ) from None
        return value

    @field_validator("celery_broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if not value.startswith(REDIS_SCHEMES + AMQP_SCHEMES):
            raise ValueError(f"must be a redis:// or amqp:// URL, got {value!r}")
        return value

    @field_validator("bot_redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(REDIS_SCHEMES):
            raise ValueError(f"must be a redis:// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _store_is_redis(self) -> BotSettings:
        """The outbox and events live in a Redis: on an AMQP broker it must be named."""
        if self.bot_redis_url is None and not self.celery_broker_url.startswith(REDIS_SCHEMES):
            raise ValueError(
                "BOT_REDIS_URL must name a Redis for the outbox when CELERY_BROKER_URL is "
                f"not Redis (got {self.celery_broker_url!r})"
            )
        return self

    @property
    def store_url(self) -> str:
        return self.bot_redis_url or self.celery_broker_url

    @property
    def messages_url(self) -> str:
        base = self.whatsapp_api_url.rstrip("/")
        return f"{base}/{self.whatsapp_api_version}/{self.whatsapp_phone_number_id}/messages"


def load_settings(**overrides: object) -> BotSettings:
    """Settings from the environment (`overrides` win), or SettingsError naming each bad one."""
    try:
        return BotSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"bot settings: {exc.error_count()} invalid environment variable(s)"]
        for item in exc.errors(include_url=False):
            if not item["loc"]:  # a rule across settings: its message names them
                lines.append(f"  {item['msg'].removeprefix('Value error, ')}")
                continue
            name = str(item["loc"][0]).upper()
            lines.append(f"  {name}: {item['msg']} (got {item.get('input')!r})")
        raise SettingsError("\n".join(lines)) from None
