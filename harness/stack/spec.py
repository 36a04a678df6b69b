"""What a stack is asked to run: lanes (one pool each) and the settings they share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mock_meta_api.config import Behaviours, describe_validation_error

from ..bot.settings import BotSettings, Pool, SettingsError, load_settings
from ..scenario.brokers import (
    BROKER_DBS,
    BrokerDb,
    BrokerKind,
    RabbitSettings,
    check_broker,
    check_broker_db,
)
from ..scenario.external import External
from ..scenario.lanes import check_unique_lanes
from ..scenario.settings import SETTING_NAMES, checked_env

# Each lane of an embedded broker gets its own database; Redis and Valkey have 16 (0 is unused).
MAX_EMBEDDED_LANES = len(BROKER_DBS)
# Business phone number ids handed to lanes: 10654035229NNNN.
PHONE_NUMBER_BASE = 106540352290000


def phone_number_id(lane_index: int) -> str:
    """The business number of the lane at `lane_index`."""
    return str(PHONE_NUMBER_BASE + lane_index)


def settings_from_env(env: dict[str, str]) -> BotSettings:
    """The bot's settings as a process with `env` (on top of ours) would read them."""
    return load_settings(
        **{name.lower(): value for name, value in env.items() if name in SETTING_NAMES}
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LaneSpec(_Strict):
    """One pool under test: a bot deployment of its own (webhook and worker).

    `pool_from_settings` puts the pool only in CELERY_WORKER_POOL, as a
    settings file would, while `concurrency` stays on the command line.
    `env` overrides any bot setting for this lane (e.g. CELERY_TASK_ACKS_LATE).
    `broker` is where its tasks go: the embedded Valkey, a Redis at `broker_url`,
    or RabbitMQ (at `broker_url`, or a node the stack starts). `python` runs the
    lane's webhook and worker (an environment with other Celery releases), and
    `pins` are the versions it was made for.
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")]
    pool: Pool
    concurrency: Annotated[int, Field(ge=1, le=1000)] | None = None
    pool_from_settings: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    broker: BrokerKind = "valkey"
    broker_url: str | None = None
    broker_db: BrokerDb | None = Field(
        default=None,
        description="Its database of the embedded Valkey, shared with the lanes naming the "
        "same (unset: one of its own).",
    )
    python: Path | None = None
    pins: dict[str, str] = Field(default_factory=dict)
    external: External | None = Field(
        default=None, description="A bot of one's own (commands or a URL) instead of the replica."
    )

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        return checked_env(env)

    @model_validator(mode="after")
    def _broker(self) -> LaneSpec:
        check_broker(self.broker, self.broker_url)
        check_broker_db(self.broker, self.broker_db)
        return self

    @property
    def embedded_db(self) -> bool:
        """It takes a database of the embedded Valkey: as its broker, or for its outbox."""
        return self.broker in ("valkey", "rabbitmq")


class StackSpec(_Strict):
    """The lanes and the settings shared by all of them."""

    lanes: Annotated[list[LaneSpec], Field(min_length=1)]
    broker_url: str | None = Field(
        default=None, description="An external Redis; unset starts an embedded Valkey."
    )
    bot_env: dict[str, str] = Field(default_factory=dict)
    mock_behaviours: dict[str, Any] = Field(default_factory=dict)
    rabbitmq: RabbitSettings = Field(default_factory=RabbitSettings)
    proxied: frozenset[Literal["broker", "api"]] = Field(
        default_factory=frozenset,
        description="Lanes reach these through a proxy of their own (for network faults).",
    )
    restarts_broker: bool = Field(
        default=False,
        description="A broker fault stops and starts the broker (compose pins its port).",
    )
    worker_loglevel: str = "INFO"
    start_timeout_s: Annotated[float, Field(gt=0)] = 60.0

    @field_validator("bot_env")
    @classmethod
    def _bot_env_names(cls, env: dict[str, str]) -> dict[str, str]:
        return checked_env(env)

    @field_validator("mock_behaviours")
    @classmethod
    def _mock_behaviours(cls, behaviours: dict[str, Any]) -> dict[str, Any]:
        """Checked as the mock will check them, so a bad one fails before anything starts."""
        try:
            Behaviours.model_validate(behaviours)
        except ValidationError as exc:
            raise ValueError(describe_validation_error(exc, "mock behaviours")) from None
        return behaviours

    @model_validator(mode="after")
    def _lanes_fit(self) -> StackSpec:
        check_unique_lanes([lane.name for lane in self.lanes])
        embedded = [lane for lane in self.lanes if lane.embedded_db]
        if self.broker_url is None and len(embedded) > MAX_EMBEDDED_LANES:
            raise ValueError(
                f"the embedded broker has room for {MAX_EMBEDDED_LANES} lanes, got {len(embedded)}"
            )
        named = [lane.name for lane in self.lanes if lane.broker_db is not None]
        if named and self.broker_url is not None:
            raise ValueError(
                f"lanes {named} name a database of the embedded Valkey (broker_db), but the "
                "run is on an external Redis (--broker-url), where lanes share its database "
                "apart by key prefix"
            )
        for lane in self.lanes:  # bad values fail here, before any process starts
            try:
                settings_from_env(self.bot_env | lane.env)
            except SettingsError as exc:
                raise ValueError(f"lane {lane.name}: {exc}") from None
        return self

    def databases(self) -> list[int | None]:
        """Each lane's database of the embedded Valkey, by index: the one its broker_db
        names, else the lowest no lane names, in the lanes' order (lane i gets i + 1 when
        none names one and every lane takes one). None: a lane that takes none (on an
        external Redis). On the embedded Valkey there is always one left: at most 15 lanes
        take one, and those naming theirs leave as many free as they do not use."""
        named = {lane.broker_db for lane in self.lanes}
        free = iter([db for db in BROKER_DBS if db not in named])
        return [
            lane.broker_db or (next(free, None) if lane.embedded_db else None)
            for lane in self.lanes
        ]

    def database_of(self, index: int) -> int:
        """The database of the embedded Valkey that lane `index` uses (it takes one)."""
        db = self.databases()[index]
        if db is None:
            raise ValueError(
                f"lane {self.lanes[index].name} takes no database of the embedded Valkey"
            )
        return db

    @classmethod
    def of_pools(cls, *pools: Pool, **options: Any) -> StackSpec:
        """One lane per pool, named after it."""
        return cls(lanes=[LaneSpec(name=pool, pool=pool) for pool in pools], **options)
