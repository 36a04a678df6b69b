"""A scenario's lanes (`[[lanes]]`): one pool under test each, and the verdict it must reach."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..bot.settings import Pool
from .brokers import BrokerDb, BrokerKind, check_broker, check_broker_db
from .external import External
from .settings import Settings, settings_env
from .strict import Strict

Reason = Literal["missing", "duplicated", "unexpected", "out-of-order", "late", "early"]
VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc|\.post|\.dev)\d+)?$")


def _exact_version(value: str) -> str:
    """A lane pins exact releases as PyPI spells them (5.3.6, 5.4.0rc1, 5.5.0.post1)."""
    if not VERSION.match(value):
        raise ValueError("must be an exact version such as '5.3.6'")
    return value


def _package_name(value: str) -> str:
    if not re.match(r"^[a-z0-9][a-z0-9._-]*$", value):
        raise ValueError("must be a package name in lower case, such as 'redis'")
    if value in ("celery", "kombu"):
        raise ValueError(f"set {value} with the lane's own `{value}` field, not in packages")
    return value


def check_unique_lanes(names: list[str]) -> None:
    """Lanes are told apart by name (logs, queues, key prefixes): a repeat is an error."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"lane names must be unique, repeated: {repeated}")


Version = Annotated[str, AfterValidator(_exact_version)]
PackageName = Annotated[str, AfterValidator(_package_name)]


class LaneScenario(Strict):
    """One pool under test, and the verdict it must reach (with the reasons, if it fails).

    A lane may also name its broker (`valkey`, the embedded default; `redis` at
    `broker_url`; `rabbitmq` at `broker_url`, or a node the harness starts) and its
    Celery release (`celery`, `kombu`, and any other package in `packages`): it then
    runs from an environment made for exactly those versions.
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")] = Field(
        description="The lane's name: lower-case letters, digits and dashes, at most 31 "
        "characters, unique in the scenario. Logs, queues and key prefixes are named by it."
    )
    pool: Pool = Field(description="The Celery worker pool under test.")
    broker: BrokerKind = Field(
        default="valkey",
        description="The lane's broker: `valkey` (embedded, started by the harness), `redis` "
        "(at `broker_url`) or `rabbitmq` (at `broker_url`, or a node the harness starts).",
    )
    broker_url: str | None = Field(
        default=None,
        validate_default=True,
        description="The broker's URL. `redis`: required (redis:// or rediss://); `rabbitmq`: "
        "optional (unset: a node of the harness's own); `valkey`: not allowed.",
    )
    broker_db: BrokerDb | None = Field(
        default=None,
        description="The lane's database of the embedded Valkey, 1 to 15 (unset: one of its "
        "own). Lanes naming the same one share it, as two apps on one Redis database do: "
        "each keeps its own queue, while kombu's keys (the `unacked` hash and index, the "
        "restore mutex) are one for all. Only with broker = 'valkey' (a redis lane's "
        "database is in its broker_url), and not with --broker-url.",
    )
    celery: Version | None = Field(
        default=None,
        description="This lane's Celery release, an exact version such as '5.3.6' (unset: "
        "the project's locked one).",
    )
    kombu: Version | None = Field(
        default=None,
        description="This lane's kombu release, an exact version (unset: the locked one).",
    )
    packages: dict[PackageName, Version] = Field(
        default_factory=dict,
        description="Any other package pinned for this lane, by lower-case name, at an exact "
        "version, e.g. { redis = '4.6.0' }.",
    )
    concurrency: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None,
        description="The worker's --concurrency, 1 to 1000 (unset: Celery's default).",
    )
    pool_set_by: Literal["command-line", "settings"] = Field(
        default="command-line",
        description="Where the pool is named: `command-line` (-P on the worker's argv) or "
        "`settings` (only CELERY_WORKER_POOL, as a deployment that sets it in settings).",
    )
    settings: Settings = Field(
        default_factory=dict,
        description="This lane's own bot and Celery settings, by environment name (UPPER_CASE), "
        "over the scenario's [settings]. Settings the harness owns per lane and the flow's "
        "are refused. Not with `external`.",
    )
    expect: Literal["pass", "fail"] = Field(
        default="pass", description="The verdict the lane must reach: `pass` or `fail`."
    )
    because: list[Reason] = Field(
        default_factory=list,
        description="The reasons an expected failure must include (with expect = 'fail').",
    )
    or_because: list[Reason] = Field(
        default_factory=list,
        description="The reasons of another failure seen in some runs, where a race decides "
        "the outcome: the lane is also as expected when its failure includes these instead "
        "of `because`'s. Needs `because`; say in `why` how often each came.",
    )
    why: str = Field(
        default="", description="Why the lane reaches its verdict, shown in the reports."
    )
    external: External | None = Field(
        default=None,
        description="A bot of one's own: its webhook and worker commands (or webhook URL) "
        "and how to tell its parts apart; unset: the harness's replica bot.",
    )

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, url: str | None, info: ValidationInfo) -> str | None:
        if "broker" in info.data:  # else the broker itself is wrong, and said so
            try:
                check_broker(info.data["broker"], url)
            except ValueError as exc:
                raise ValueError(str(exc).removeprefix("broker_url: ")) from None
        return url

    @field_validator("broker_db")
    @classmethod
    def _broker_db(cls, db: int | None, info: ValidationInfo) -> int | None:
        if "broker" in info.data:  # else the broker itself is wrong, and said so
            try:
                check_broker_db(info.data["broker"], db)
            except ValueError as exc:
                raise ValueError(str(exc).removeprefix("broker_db: ")) from None
        return db

    @model_validator(mode="after")
    def _external_settings(self) -> LaneScenario:
        if self.external is not None and self.settings:
            raise ValueError(
                f"lane {self.name}: `settings` are the replica bot's; an external lane takes "
                "its environment from `external.env`"
            )
        return self

    @model_validator(mode="after")
    def _reasons_need_failure(self) -> LaneScenario:
        if self.because and self.expect == "pass":
            raise ValueError(
                f"lane {self.name}: `because` lists reasons for a failure, "
                "but `expect` is 'pass'; set expect = 'fail' or remove `because`"
            )
        if self.or_because and not self.because:
            raise ValueError(
                f"lane {self.name}: `or_because` names a second outcome's reasons; "
                "set `because` (and expect = 'fail') to the first's"
            )
        if self.or_because and set(self.or_because) == set(self.because):
            raise ValueError(
                f"lane {self.name}: `or_because` repeats `because`; name the other outcome's "
                "reasons, or remove it"
            )
        return self

    @property
    def env(self) -> dict[str, str]:
        return settings_env(self.settings)

    @property
    def pins(self) -> dict[str, str]:
        """The versions this lane pins, by package; empty: the project's locked ones."""
        named = {"celery": self.celery, "kombu": self.kombu}
        return {name: v for name, v in named.items() if v is not None} | dict(self.packages)
