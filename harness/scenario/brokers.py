"""A lane's broker, and the `[rabbitmq]` table of the node the harness starts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..bot.settings import AMQP_SCHEMES, REDIS_SCHEMES
from .strict import Strict

BrokerKind = Literal["valkey", "redis", "rabbitmq"]
BROKERS: tuple[BrokerKind, ...] = ("valkey", "redis", "rabbitmq")


def check_broker(broker: BrokerKind, url: str | None) -> None:
    """A lane's broker and URL agree: valkey takes none, redis needs one, rabbitmq may."""
    if broker == "valkey" and url is not None:
        raise ValueError(
            "broker_url: the embedded Valkey takes no URL; for a Redis of your own "
            "set broker = 'redis'"
        )
    if broker == "redis" and (url is None or not url.startswith(REDIS_SCHEMES)):
        raise ValueError(
            f"broker_url: broker 'redis' needs a redis:// URL (e.g. redis://127.0.0.1:6379/15), "
            f"got {url!r}"
        )
    if broker == "rabbitmq" and url is not None and not url.startswith(AMQP_SCHEMES):
        raise ValueError(
            "broker_url: broker 'rabbitmq' takes an amqp:// URL, or none to start a node of "
            f"its own; got {url!r}"
        )


# The databases a lane's broker_db may name: Valkey's 16 but 0, as the harness gives lanes.
BROKER_DBS = range(1, 16)
BrokerDb = Annotated[int, Field(ge=BROKER_DBS.start, le=BROKER_DBS.stop - 1)]


def check_broker_db(broker: BrokerKind, db: int | None) -> None:
    """A lane names a database of the embedded Valkey only: a redis lane's is in its URL."""
    if db is None or broker == "valkey":
        return
    if broker == "redis":
        raise ValueError(
            "broker_db: a redis lane names its database in broker_url "
            f"(redis://host:6379/{db}); broker_db picks one of the embedded Valkey's"
        )
    raise ValueError(
        f"broker_db: broker {broker!r} is not a Redis; broker_db picks a database of the "
        "embedded Valkey (broker = 'valkey')"
    )


class RabbitSettings(Strict):
    """Settings of the RabbitMQ node the harness starts (a given URL keeps its own)."""

    consumer_timeout_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = Field(
        default=1800.0,
        description="A delivery unacknowledged this many seconds closes its channel with "
        "PRECONDITION_FAILED: RabbitMQ's consumer_timeout (its default: 30 min). Above 0, "
        "at most 7 days; scales with the run.",
    )
    check_interval_s: Annotated[float, Field(gt=0, le=24 * 3600)] = Field(
        default=60.0,
        description="How often, in seconds, a channel checks that timeout (RabbitMQ's "
        "channel_tick_interval, 60 s by default), so a timeout strikes up to this much late. "
        "Scales with the run.",
    )
