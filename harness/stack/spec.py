"""What a stack is asked to run: lanes (one pool each) and the settings they share."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mock_meta_api.config import Behaviours, describe_validation_error

from ..bot.settings import BotSettings, Pool, SettingsError, load_settings

# Each lane of an embedded broker gets its own database; Redis and Valkey have 16 (0 is unused).
MAX_EMBEDDED_LANES = 15
# Business phone number ids handed to lanes: 10654035229NNNN.
PHONE_NUMBER_BASE = 106540352290000


def phone_number_id(lane_index: int) -> str:
    """The business number of the lane at `lane_index`."""
    return str(PHONE_NUMBER_BASE + lane_index)


# Variables with these prefixes are the bot's settings: a name the bot does not know is a typo.
SETTING_PREFIXES = ("BOT_", "CELERY_", "FIXTURES_", "SEND_", "WHATSAPP_")
SETTING_NAMES = frozenset(name.upper() for name in BotSettings.model_fields)


def settings_from_env(env: dict[str, str]) -> BotSettings:
    """The bot's settings as a process with `env` (on top of ours) would read them."""
    return load_settings(
        **{name.lower(): value for name, value in env.items() if name in SETTING_NAMES}
    )


def check_unique_lanes(names: list[str]) -> None:
    """Lanes are told apart by name (logs, queues, key prefixes): a repeat is an error."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"lane names must be unique, repeated: {repeated}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def checked_env(env: dict[str, str]) -> dict[str, str]:
    """Upper-case names; a bot-setting prefix must name a real setting (typos are errors)."""
    bad = [name for name in env if not name.isidentifier() or name.upper() != name]
    if bad:
        raise ValueError(f"environment variable names must be UPPER_CASE, got {bad}")
    unknown = [n for n in env if n.startswith(SETTING_PREFIXES) and n not in SETTING_NAMES]
    if unknown:
        raise ValueError(
            f"unknown bot setting(s) {unknown}; known: {', '.join(sorted(SETTING_NAMES))}"
        )
    return env


class LaneSpec(_Strict):
    """One pool under test: a bot deployment of its own (webhook and worker).

    `pool_from_settings` puts the pool only in CELERY_WORKER_POOL, as a
    settings file would, while `concurrency` stays on the command line.
    `env` overrides any bot setting for this lane (e.g. CELERY_TASK_ACKS_LATE).
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")]
    pool: Pool
    concurrency: Annotated[int, Field(ge=1, le=1000)] | None = None
    pool_from_settings: bool = False
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        return checked_env(env)


class StackSpec(_Strict):
    """The lanes and the settings shared by all of them."""

    lanes: Annotated[list[LaneSpec], Field(min_length=1)]
    broker_url: str | None = Field(
        default=None, description="An external Redis; unset starts an embedded Valkey."
    )
    bot_env: dict[str, str] = Field(default_factory=dict)
    mock_behaviours: dict[str, Any] = Field(default_factory=dict)
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
        if self.broker_url is None and len(self.lanes) > MAX_EMBEDDED_LANES:
            raise ValueError(
                f"the embedded broker has room for {MAX_EMBEDDED_LANES} lanes, "
                f"got {len(self.lanes)}"
            )
        for lane in self.lanes:  # bad values fail here, before any process starts
            try:
                settings_from_env(self.bot_env | lane.env)
            except SettingsError as exc:
                raise ValueError(f"lane {lane.name}: {exc}") from None
        return self

    @classmethod
    def of_pools(cls, *pools: Pool, **options: Any) -> StackSpec:
        """One lane per pool, named after it."""
        return cls(lanes=[LaneSpec(name=pool, pool=pool) for pool in pools], **options)
