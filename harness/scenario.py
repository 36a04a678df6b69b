"""Scenarios: what a run does and what it must find, as validated data from TOML.

A scenario names the flow (messages per request, spacing, recipients), the
lanes (pool, concurrency, Celery settings) with the verdict each must reach,
the mock Cloud API's behaviours, the tolerances the checks apply, and faults
on a schedule. `Scenario.scaled(x)` multiplies every duration by `x`, so a CI
run can take a quarter of the time and reach the same verdicts.
"""

from __future__ import annotations

import re
import tomllib
from decimal import ROUND_CEILING, Context, Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from celery.utils.time import rate as parse_rate
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mock_meta_api.config import (
    Behaviours,
    FaultAnswer,
    LatencyModel,
    PairRate,
    Throughput,
    describe_validation_error,
)

from .bot.settings import BotSettings, Pool
from .capacity.settings import CapacitySettings
from .errors import InputError
from .load.shapes import Shape
from .shipped import on_disk, scenario_dir
from .stack.external import External
from .stack.spec import (
    SETTING_NAMES,
    BrokerKind,
    RabbitSettings,
    check_broker,
    check_unique_lanes,
    checked_env,
)

# Below these the harness cannot time a run faithfully, whatever the scale. Celery's ETA timer
# fires 0.1-0.3 s late at worst, and measured lateness on 2 cores (`harness matrix
# --time-scale 0.25`, 0.5 s spacing) is 0.01 s median and at most 0.17 s; an on-time bound
# under 0.5 s, or a spacing under 0.1 s, would turn scheduling noise into verdicts.
MIN_SPACING_S = 0.1
MIN_ON_TIME_S = 0.5

Reason = Literal["missing", "duplicated", "unexpected", "out-of-order", "late", "early"]
Seconds = Annotated[float, Field(ge=0, le=24 * 3600)]
SettingValue = str | bool | int | float

# The harness sets these per lane (where its broker, mock and number are); a scenario cannot.
STACK_SETTINGS = frozenset(
    {
        "CELERY_BROKER_URL",
        "BOT_REDIS_URL",
        "BOT_KEY_PREFIX",
        "CELERY_BROKER_GLOBAL_KEYPREFIX",
        "CELERY_TASK_QUEUE",
        "WHATSAPP_API_URL",
        "WHATSAPP_PHONE_NUMBER_ID",
        "WHATSAPP_ACCESS_TOKEN",
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
    }
)
# The scenario's [flow] table sets these.
FLOW_SETTINGS = frozenset({"FIXTURES_PARTS", "FIXTURES_SPACING_S"})
# Settings that are durations (seconds) or rates, so the time scale applies to them.
DURATION_SETTINGS = frozenset(
    {
        "CELERY_BROKER_VISIBILITY_TIMEOUT",
        "SEND_RETRY_BACKOFF_S",
        "SEND_RETRY_BACKOFF_MAX_S",
        "WHATSAPP_CONNECT_TIMEOUT_S",
        "WHATSAPP_READ_TIMEOUT_S",
        "WHATSAPP_WRITE_TIMEOUT_S",
        "WHATSAPP_POOL_TIMEOUT_S",
    }
)
RATE_SETTINGS = frozenset({"SEND_RATE_LIMIT"})
NO_VALUE = {"", "none", "off", "null"}


class ScenarioError(InputError):
    """A scenario that cannot run; the message names the file, the field and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _env_value(value: SettingValue) -> str:
    """TOML values as an environment holds them: `true`/`false`, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _settings(values: dict[str, SettingValue]) -> dict[str, str]:
    env = checked_env({name: _env_value(value) for name, value in values.items()})
    owned = sorted(name for name in env if name in STACK_SETTINGS)
    if owned:
        raise ValueError(f"{owned} are set by the harness for each lane; remove them")
    flow = sorted(name for name in env if name in FLOW_SETTINGS)
    if flow:
        raise ValueError(f"{flow} come from the [flow] table (messages, spacing_s); remove them")
    try:  # the values too, as the bot reads them: a bad one fails here, not when scaled or run
        BotSettings(**{name.lower(): value for name, value in env.items() if name in SETTING_NAMES})
    except ValidationError as exc:
        raise ValueError(
            "; ".join(
                f"{str(item['loc'][0]).upper()}: {item['msg'].removeprefix('Value error, ')}"
                + ("" if "got " in item["msg"] else f" (got {item.get('input')!r})")
                for item in exc.errors(include_url=False)
            )
        ) from None
    return env


class Flow(_Strict):
    """The fixtures flow: each recipient sends one request, answered by `messages` parts."""

    messages: Annotated[int, Field(ge=1, le=1000)] = 22
    spacing_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    recipients: Annotated[int, Field(ge=1, le=100)] = 1

    @property
    def schedule_s(self) -> float:
        """When the last part is due, counted from the request."""
        return (self.messages - 1) * self.spacing_s


class Tolerances(_Strict):
    """What the checks accept, in seconds; each bound but `early_s` scales with the run."""

    on_time_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        description="A part reaching the API later than this after its due time is late."
    )
    early_s: Seconds = Field(
        default=0.05,
        description="A part reaching the API this much before its due time is early. Not "
        "scaled: how early a timer fires is clock noise, the same at any time scale.",
    )
    missing_after_s: Annotated[float, Field(gt=0, le=24 * 3600)] = Field(
        default=30.0,
        description="The run waits this long after the last due time (or after a fault still "
        "being done then); a part not at the API by then is missing.",
    )
    order_by: Literal["api_receipt", "api_response"] = Field(
        default="api_receipt",
        description="Which order must follow seq: when the API received each part, or answered it.",
    )

    @model_validator(mode="after")
    def _missing_after_late(self) -> Tolerances:
        if self.missing_after_s < self.on_time_s:
            raise ValueError(
                f"missing_after_s ({self.missing_after_s}) must be at least on_time_s "
                f"({self.on_time_s}): a part must be able to arrive late before it is missing"
            )
        return self


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


Version = Annotated[str, AfterValidator(_exact_version)]
PackageName = Annotated[str, AfterValidator(_package_name)]


class LaneScenario(_Strict):
    """One pool under test, and the verdict it must reach (with the reasons, if it fails).

    A lane may also name its broker (`valkey`, the embedded default; `redis` at
    `broker_url`; `rabbitmq` at `broker_url`, or a node the harness starts) and its
    Celery release (`celery`, `kombu`, and any other package in `packages`): it then
    runs from an environment made for exactly those versions.
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")]
    pool: Pool
    broker: BrokerKind = "valkey"
    broker_url: str | None = Field(
        default=None,
        validate_default=True,
        description="redis: required; rabbitmq: optional (none: a node of its own).",
    )
    celery: Version | None = None
    kombu: Version | None = None
    packages: dict[PackageName, Version] = Field(
        default_factory=dict, description="Other pinned packages, e.g. { redis = '4.6.0' }."
    )
    concurrency: Annotated[int, Field(ge=1, le=1000)] | None = None
    pool_set_by: Literal["command-line", "settings"] = Field(
        default="command-line",
        description="`settings`: the pool is only in CELERY_WORKER_POOL, not in `-P` on argv.",
    )
    settings: dict[str, SettingValue] = Field(default_factory=dict)
    expect: Literal["pass", "fail"] = "pass"
    because: list[Reason] = Field(
        default_factory=list, description="The reasons an expected failure must include."
    )
    why: str = ""
    external: External | None = Field(
        default=None,
        description="A bot of one's own: its webhook and worker commands (or webhook URL) "
        "and how to tell its parts apart; unset: the harness's replica bot.",
    )

    @field_validator("settings")
    @classmethod
    def _lane_settings(cls, values: dict[str, SettingValue]) -> dict[str, SettingValue]:
        _settings(values)
        return values

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, url: str | None, info: ValidationInfo) -> str | None:
        if "broker" in info.data:  # else the broker itself is wrong, and said so
            try:
                check_broker(info.data["broker"], url)
            except ValueError as exc:
                raise ValueError(str(exc).removeprefix("broker_url: ")) from None
        return url

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
        return self

    @property
    def env(self) -> dict[str, str]:
        return _settings(self.settings)

    @property
    def pins(self) -> dict[str, str]:
        """The versions this lane pins, by package; empty: the project's locked ones."""
        named = {"celery": self.celery, "kombu": self.kombu}
        return {name: v for name, v in named.items() if v is not None} | dict(self.packages)


FaultAction = Literal[
    "kill-worker",
    "stop-worker",
    "start-worker",
    "restart-worker",
    "freeze-worker",
    "thaw-worker",
    "api-outage",
    "api-latency",
    "api-rate-limit",
    "restart-broker",
    "stop-broker",
    "net-delay",
    "net-reset",
    "net-blackhole",
]
# Faults on the whole stack: the broker, and the mock Cloud API every lane shares.
STACK_ACTIONS = frozenset(
    {"api-outage", "api-latency", "api-rate-limit", "restart-broker", "stop-broker"}
)
BROKER_ACTIONS = frozenset({"restart-broker", "stop-broker"})
NET_ACTIONS = frozenset({"net-delay", "net-reset", "net-blackhole"})
WINDOW_ACTIONS = frozenset({"api-outage", "api-latency", "api-rate-limit", "stop-broker"}) | (
    NET_ACTIONS
)
NetTarget = Literal["broker", "api"]
DEFAULT_GRACE_S = 10.0  # docker's stop timeout: SIGTERM, then SIGKILL 10 s later
TRIGGERS = ("at_s", "after_received", "after_sent")
OPTIONAL_FAULT_FIELDS = (
    "grace_s",
    "duration_s",
    "answer",
    "latency",
    "throughput",
    "pair_rate",
    "keep_data",
    "target",
    "delay_s",
)
# What each action may carry beside at_s, action and lane.
FAULT_FIELDS: dict[str, frozenset[str]] = {
    "kill-worker": frozenset(),
    "stop-worker": frozenset({"grace_s"}),
    "start-worker": frozenset(),
    "restart-worker": frozenset({"grace_s"}),
    "freeze-worker": frozenset(),
    "thaw-worker": frozenset(),
    "api-outage": frozenset({"duration_s", "answer"}),
    "api-latency": frozenset({"duration_s", "latency"}),
    "api-rate-limit": frozenset({"duration_s", "throughput", "pair_rate"}),
    "restart-broker": frozenset({"keep_data"}),
    "stop-broker": frozenset({"duration_s", "keep_data"}),
    "net-delay": frozenset({"duration_s", "target", "delay_s"}),
    "net-reset": frozenset({"duration_s", "target"}),
    "net-blackhole": frozenset({"duration_s", "target"}),
}


class Fault(_Strict):
    """A fault the nemesis injects, `at_s` after the requests were answered.

    Counted from the answers, when every part is queued, a fault strikes at the same
    point of its schedule at any time scale, however long the queuing took. A lane's
    fault counts from that lane's answers; a fault on the whole stack (the broker, the
    mock API) from the answers to every lane's requests.

    On a lane's oldest running worker:

    - `kill-worker`: SIGKILL it and its pool processes, as the OOM killer does; the
      messages it holds stay unacked in the broker.
    - `stop-worker`: SIGTERM it (Celery's warm shutdown), then SIGKILL after `grace_s`,
      as `docker stop` and Kubernetes do.
    - `start-worker`: start one more worker for the lane: a supervisor's restart, or the
      new worker of a rolling deploy. The fault is done once the worker is ready.
    - `restart-worker`: `stop-worker` on it if one still runs, then `start-worker`: a
      supervisor's (or an operator's) restart, whether the old worker died or not.
    - `freeze-worker` / `thaw-worker`: SIGSTOP it and its pool processes (a stalled VM, a
      long GC pause, `docker pause`), and SIGCONT the workers frozen before.

    On the whole stack, for a window of `duration_s` (then switched back):

    - `api-outage`: every send gets `answer` (default: HTTP 503, code 131016; or
      `{ action = "reset" }`, `{ action = "hang" }`).
    - `api-latency`: every answer takes `latency` (a latency model, as `[api.latency]`).
    - `api-rate-limit`: Meta's `throughput` and / or `pair_rate` limits, as `[api]`.
    - `stop-broker`: the broker is stopped, and started again on its port after the
      window, with its data (`keep_data`, the default: saved to a dump file first) or
      empty. `restart-broker` is the same with no window.

    Between a lane's workers and its broker (`target = "broker"`: Celery's connection; the
    bot's own store stays direct, so the evidence is kept) or the API (`target = "api"`),
    through a loopback TCP proxy the harness puts there when a scenario asks for it, for
    a window of `duration_s`:

    - `net-delay`: every chunk of data waits `delay_s` more, both ways;
    - `net-reset`: open connections are cut (TCP reset), and new ones until it closes;
    - `net-blackhole`: nothing passes; when it closes, the connections held are reset.

    A lane's faults run in order, as do the stack's: each waits for the one before it
    to be done (a window is done when it closes). A lane fault with no `lane` strikes
    every lane.
    """

    at_s: Seconds | None = Field(
        default=None, description="Seconds after the requests were answered; or a trigger."
    )
    after_received: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        default=None, description="Fire once the lane's workers have received this many parts."
    )
    after_sent: Annotated[int, Field(ge=0, le=100_000)] | None = Field(
        default=None, description="Fire once the API has accepted part (seq) this."
    )
    action: FaultAction
    lane: str | None = Field(default=None, description="The lane; omitted: every lane.")
    grace_s: Annotated[float, Field(ge=0)] | None = Field(
        default=None,
        description=f"stop-worker and restart-worker; default {DEFAULT_GRACE_S:g} s.",
    )
    duration_s: Annotated[float, Field(gt=0, le=24 * 3600)] | None = Field(
        default=None, description="How long a window lasts (api-*, stop-broker)."
    )
    answer: FaultAnswer | None = Field(default=None, description="api-outage: the answer.")
    latency: LatencyModel | None = Field(default=None, description="api-latency: the model.")
    throughput: Throughput | None = Field(default=None, description="api-rate-limit.")
    pair_rate: PairRate | None = Field(default=None, description="api-rate-limit.")
    keep_data: bool | None = Field(
        default=None, description="Broker faults: restart with the data (default) or empty."
    )
    target: NetTarget | None = Field(default=None, description="net-*: broker or api.")
    delay_s: Annotated[float, Field(gt=0, le=3600)] | None = Field(
        default=None, description="net-delay: added to every chunk of data, both ways."
    )

    @model_validator(mode="after")
    def _fields_of_the_action(self) -> Fault:
        when = [name for name in TRIGGERS if getattr(self, name) is not None]
        if len(when) != 1:
            given = f"got {' and '.join(when)}" if when else "got none"
            raise ValueError(f"a fault needs exactly one of {', '.join(TRIGGERS)} ({given})")
        if self.action in STACK_ACTIONS and self.at_s is None:
            raise ValueError(
                f"{self.action} strikes the whole stack: time it with at_s ({when[0]} counts "
                "one lane's parts)"
            )
        allowed = FAULT_FIELDS[self.action]
        given = {name for name in OPTIONAL_FAULT_FIELDS if getattr(self, name) is not None}
        for name in sorted(given - allowed):
            takers = [action for action, fields in FAULT_FIELDS.items() if name in fields]
            raise ValueError(f"{name} applies to {' and '.join(takers)} only, not to {self.action}")
        if self.action in STACK_ACTIONS and self.lane is not None:
            what = "the broker" if self.action in BROKER_ACTIONS else "the mock API"
            raise ValueError(
                f"{self.action} strikes the whole stack ({what}, shared by every lane), "
                f"not a lane; remove lane = {self.lane!r}"
            )
        if self.action in WINDOW_ACTIONS and self.duration_s is None:
            raise ValueError(f"{self.action} is a window: give duration_s (seconds)")
        if self.action in NET_ACTIONS and self.target is None:
            raise ValueError(f'{self.action} needs target = "broker" or "api"')
        if self.action == "net-delay" and self.delay_s is None:
            raise ValueError("net-delay needs delay_s (seconds added to every chunk)")
        if self.action == "api-latency" and self.latency is None:
            raise ValueError('api-latency needs latency, e.g. { model = "fixed", value_s = 3 }')
        if self.action == "api-rate-limit" and self.throughput is None and self.pair_rate is None:
            raise ValueError("api-rate-limit needs throughput, pair_rate or both")
        return self

    @property
    def grace(self) -> float:
        return DEFAULT_GRACE_S if self.grace_s is None else self.grace_s

    @property
    def order_s(self) -> float:
        """Where it sorts among its lane's faults: at_s, or 0 for a fault on a trigger."""
        return 0.0 if self.at_s is None else self.at_s

    @property
    def trigger(self) -> str:
        """`at_s = 1.5`, `after_received = 22`, `after_sent = 3`."""
        name = next(name for name in TRIGGERS if getattr(self, name) is not None)
        return f"{name} = {getattr(self, name):g}"

    @property
    def on_stack(self) -> bool:
        return self.action in STACK_ACTIONS


class Thresholds(_Strict):
    """Bounds on a load test, per lane; a lane expected to pass that exceeds one fails the run."""

    max_fail_ratio: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None,
        description="Failed webhook requests and delivery failures over all of a lane's rows.",
    )
    max_lateness_p95_s: Annotated[float, Field(gt=0, le=3600)] | None = Field(
        default=None, description="The p95 of a lane's delivery lateness (s); scales with the run."
    )


class Load(_Strict):
    """A Locust load test instead of one request per lane: every lane under the same load.

    `users` and `spawn_rate` are per lane: each lane's webhook gets that many users, each
    posting a signed inbound text every `pace_s` seconds (`fixtures_share` of them
    "fixtures"), shaped over `run_time_s` by `shape`.
    """

    users: Annotated[int, Field(ge=1, le=500)]
    spawn_rate: Annotated[float, Field(gt=0, le=1000)] = Field(
        default=1.0, description="Users started per second, per lane."
    )
    run_time_s: Annotated[float, Field(gt=0, le=3600)]
    pace_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=5.0, description="Seconds between one user's requests (0: no wait)."
    )
    shape: Shape = "steady"
    fixtures_share: Annotated[float, Field(ge=0, le=1)] = 0.9
    workers: Annotated[int, Field(ge=0, le=8)] = Field(
        default=0, description="Locust worker processes under a master; 0: one process."
    )
    rates: dict[str, Annotated[float, Field(gt=0, le=1000)]] = Field(
        default_factory=dict,
        description="Requests per second for each lane, each its own (a capacity step); "
        "the lane's users share its rate and `pace_s` is unused. Empty: every lane gets "
        "`users` / `pace_s`.",
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @model_validator(mode="after")
    def _rates_steady(self) -> Load:
        """A rate per lane is an open-loop load: its users are pinned to their lane, which
        a shape that stops users, or workers that each number their own, would unbalance."""
        if self.rates and self.shape != "steady":
            raise ValueError(f"rates need shape = 'steady' (got {self.shape!r})")
        if self.rates and self.workers:
            raise ValueError(f"rates need one Locust process: workers = 0 (got {self.workers})")
        return self

    def scaled(self, x: float) -> Load:
        p95 = self.thresholds.max_lateness_p95_s
        return self.model_copy(
            update={
                "run_time_s": self.run_time_s * x,
                "pace_s": self.pace_s * x,
                "spawn_rate": self.spawn_rate / x,
                "rates": {lane: rate / x for lane, rate in self.rates.items()},
                "thresholds": self.thresholds.model_copy(
                    update={"max_lateness_p95_s": None if p95 is None else p95 * x}
                ),
            }
        )


class Scenario(_Strict):
    """A whole run: flow, lanes, mock behaviours, tolerances and faults."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")]
    description: Annotated[str, Field(min_length=1)]
    time_scale: Annotated[float, Field(gt=0, le=100)] = 1.0
    min_time_scale: Annotated[float, Field(gt=0, le=100)] | None = Field(
        default=None,
        description="The least time scale whose verdicts hold: a broker's own timer that "
        "does not scale (Redis's restore sweep) decides them.",
    )
    flow: Flow = Field(default_factory=Flow)
    settings: dict[str, SettingValue] = Field(
        default_factory=dict, description="Bot and Celery settings for every lane (env names)."
    )
    api: dict[str, Any] = Field(
        default_factory=dict, description="The mock's behaviours, as its config file has them."
    )
    tolerances: Tolerances
    rabbitmq: RabbitSettings = Field(
        default_factory=RabbitSettings,
        description="The RabbitMQ node the harness starts for lanes on `rabbitmq` with no URL.",
    )
    lanes: Annotated[list[LaneScenario], Field(min_length=1, max_length=15)]
    faults: list[Fault] = Field(default_factory=list)
    load: Load | None = Field(
        default=None, description="A Locust load test; unset: one request per recipient."
    )
    capacity: CapacitySettings | None = Field(
        default=None,
        description="How `harness capacity` searches (unset: its defaults); `harness run` "
        "ignores it.",
    )

    _source: str | None = PrivateAttr(default=None)  # the file it was read from, if any

    @field_validator("settings")
    @classmethod
    def _shared_settings(cls, values: dict[str, SettingValue]) -> dict[str, SettingValue]:
        _settings(values)
        return values

    @field_validator("api")
    @classmethod
    def _api(cls, behaviours: dict[str, Any]) -> dict[str, Any]:
        # Its ValidationError joins the scenario's, each error under `api.` with its own value.
        return Behaviours.model_validate(behaviours).model_dump(mode="json")

    @model_validator(mode="after")
    def _lanes(self) -> Scenario:
        names = [lane.name for lane in self.lanes]
        check_unique_lanes(names)
        if self.load is not None and self.flow.recipients != 1:
            raise ValueError(
                "flow.recipients: a load test's users come from [load] (users per lane); "
                f"remove recipients (got {self.flow.recipients})"
            )
        if self.load is not None and self.load.rates and set(self.load.rates) != set(names):
            raise ValueError(
                f"load.rates: give a rate for every lane and no other; lanes: {names}, "
                f"rates for: {sorted(self.load.rates)}"
            )
        external = [lane.name for lane in self.lanes if lane.external is not None]
        if self.load is not None and external:
            raise ValueError(
                f"lanes {external}: a load test runs the replica bot only; "
                "remove [load] or the lanes' `external` tables"
            )
        last_s = self.flow.schedule_s + self.tolerances.missing_after_s
        if self.load is not None:  # faults count from the load's start
            last_s += self.load.run_time_s
        for i, fault in enumerate(self.faults):
            if fault.at_s is not None and fault.at_s > last_s:
                raise ValueError(
                    f"faults.{i}.at_s: {fault.at_s:g} s comes after the run ends ({last_s:g} s: "
                    "the schedule plus missing_after_s); it would never fire"
                )
            if fault.lane is not None and fault.lane not in names:
                raise ValueError(f"faults.{i}.lane: {fault.lane!r} is not a lane; lanes: {names}")
            if fault.action.startswith("api-") and self.api.get("failures", {}).get("outages"):
                raise ValueError(
                    f"faults.{i}.action: {fault.action} cannot be combined with "
                    "api.failures.outages: the mock times its outage windows from the last "
                    "change of its behaviours, which the fault makes; use api-outage faults"
                )
        return self

    @property
    def env(self) -> dict[str, str]:
        """The shared settings plus the flow's, as environment variables."""
        flow = {
            "FIXTURES_PARTS": str(self.flow.messages),
            "FIXTURES_SPACING_S": repr(self.flow.spacing_s),
        }
        return _settings(self.settings) | flow

    @property
    def expected_messages(self) -> int:
        """Parts each lane must deliver: one reply per recipient."""
        return self.flow.messages * self.flow.recipients

    def faults_of(self, lane: str) -> list[Fault]:
        """The faults that strike `lane`, in time order (the file's order at equal times)."""
        mine = [f for f in self.faults if not f.on_stack and f.lane in (None, lane)]
        return sorted(mine, key=lambda fault: fault.order_s)

    def with_load_options(
        self,
        max_fail_ratio: float | None = None,
        max_lateness_p95_s: float | None = None,
        workers: int | None = None,
    ) -> Scenario:
        """The command line's thresholds and Locust workers over the [load] table's."""
        if self.load is None:
            raise ScenarioError(
                f"{self.named} has no [load] table: --max-fail-ratio, "
                "--max-lateness-p95 and --workers apply to load scenarios only"
            )
        thresholds = self.load.thresholds.model_dump()
        for key, value in (
            ("max_fail_ratio", max_fail_ratio),
            ("max_lateness_p95_s", max_lateness_p95_s),
        ):
            if value is not None:
                thresholds[key] = value
        load = self.load.model_dump() | {"thresholds": thresholds}
        if workers is not None:
            load["workers"] = workers
        try:
            return self.model_copy(update={"load": Load.model_validate(load)})
        except ValidationError as exc:
            raise ScenarioError(describe_validation_error(exc, "command line: load")) from None

    @property
    def proxied(self) -> frozenset[str]:
        """What the lanes reach through the harness's proxy: "broker", "api" (net faults)."""
        return frozenset(f.target for f in self.faults if f.target is not None)

    @property
    def stack_faults(self) -> list[Fault]:
        """The faults on the whole stack (broker, mock API), in time order."""
        return sorted((f for f in self.faults if f.on_stack), key=lambda fault: fault.order_s)

    def lane(self, name: str) -> LaneScenario:
        return next(lane for lane in self.lanes if lane.name == name)

    def only(self, names: list[str]) -> Scenario:
        """The scenario with only the named lanes (or the lanes of the named pools)."""
        known = {lane.name for lane in self.lanes} | {lane.pool for lane in self.lanes}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ScenarioError(
                f"{self.named} has no lane or pool {unknown}; "
                f"lanes: {', '.join(lane.name for lane in self.lanes)}"
            )
        kept = [lane for lane in self.lanes if lane.name in names or lane.pool in names]
        kept_names = {lane.name for lane in kept}
        faults = [f for f in self.faults if f.lane is None or f.lane in kept_names]
        return self.model_copy(update={"lanes": kept, "faults": faults})

    def __eq__(self, other: object) -> bool:
        """Its fields alone: where it was read from is not part of what it is."""
        return type(other) is type(self) and self.__dict__ == other.__dict__

    @property
    def named(self) -> str:
        """How an error names it: its file too, when it was read from one."""
        named = f"scenario {self.name!r}"
        return named if self._source is None else f"{self._source}: {named}"

    def scaled(self, time_scale: float | None = None) -> Scenario:
        """Every duration times `time_scale` (default: the file's), refused below the floors.

        The result's `time_scale` is the factor applied, so scaling is done once, from the
        scenario as written.
        """
        x = self.time_scale if time_scale is None else time_scale
        if not 0 < x <= 100:
            raise ScenarioError(f"time scale must be above 0 and at most 100, got {x}")
        if self.min_time_scale is not None and x < self.min_time_scale:
            raise ScenarioError(
                f"{self.named} runs at a time scale of at least {self.min_time_scale:g} "
                f"(got {x:g}): a broker's own timer, which no scale changes, decides its verdicts"
            )
        flow = self.flow.model_copy(update={"spacing_s": self.flow.spacing_s * x})
        tolerances = self.tolerances.model_copy(
            update={
                "on_time_s": self.tolerances.on_time_s * x,
                "missing_after_s": self.tolerances.missing_after_s * x,
            }
        )
        floors = [
            ("flow.spacing_s", self.flow.spacing_s, flow.spacing_s, MIN_SPACING_S),
            (
                "tolerances.on_time_s",
                self.tolerances.on_time_s,
                tolerances.on_time_s,
                MIN_ON_TIME_S,
            ),
        ]
        below = [
            f"{field} {written:g} s into {value:g} s, below the {floor:g} s floor"
            for field, written, value, floor in floors
            if value < floor
        ]
        if below:  # the scale suggested must lift every bound, not only the first one named
            least = max(_least_scale(written, floor) for _, written, _, floor in floors)
            raise ScenarioError(
                f"{self.named}: time scale {x:g} makes {', and '.join(below)}; "
                "under these floors Celery's ETA timer and a cold worker would turn scheduling "
                f"noise into verdicts; use a time scale of at least {least:f}"
            )
        scaled = self.model_copy(
            update={
                "time_scale": x,
                "flow": flow,
                "tolerances": tolerances,
                "settings": _scaled_settings(self.settings, x),
                "lanes": [
                    lane.model_copy(update={"settings": _scaled_settings(lane.settings, x)})
                    for lane in self.lanes
                ],
                "api": _scaled_behaviours(self.api, x),
                "faults": [_scaled_fault(f, x) for f in self.faults],
                "load": None if self.load is None else self.load.scaled(x),
                "capacity": None if self.capacity is None else self.capacity.scaled(x),
                "rabbitmq": self.rabbitmq.model_copy(
                    update={
                        "consumer_timeout_s": self.rabbitmq.consumer_timeout_s * x,
                        "check_interval_s": self.rabbitmq.check_interval_s * x,
                    }
                ),
            }
        )
        try:  # scaled up, a duration may pass its bound (spacing_s at most 3600 s, ...)
            checked = Scenario.model_validate(scaled.model_dump())
        except ValidationError as exc:
            source = f"{self.named} at time scale {x:g}"
            raise ScenarioError(describe_validation_error(exc, source)) from None
        checked._source = self._source
        return checked


def _scaled_fault(fault: Fault, x: float) -> Fault:
    """Its times, windows and the behaviours it switches on, as `[api]`'s are scaled;
    never a stop's grace, which races the worker's warm shutdown, and that takes as long
    (seconds for prefork and gevent) at any time scale."""
    scaled = _scaled_behaviours(fault.model_dump(mode="json", exclude_none=True), x)
    return Fault.model_validate(scaled | {"grace_s": fault.grace_s})


def _least_scale(written: float, floor: float) -> Decimal:
    """The least scale, to 6 significant digits, that keeps `written` at `floor` or above."""
    context = Context(prec=6, rounding=ROUND_CEILING)
    least = context.divide(Decimal(repr(floor)), Decimal(repr(written)))
    while written * float(least) < floor:  # as `scaled` computes it, in binary floats
        least = context.next_plus(least)
    return least


def _scaled_settings(values: dict[str, SettingValue], x: float) -> dict[str, SettingValue]:
    scaled = dict(values)
    for name, value in values.items():
        text = _env_value(value).strip()
        if text.lower() in NO_VALUE:
            continue
        if name in DURATION_SETTINGS:
            scaled[name] = float(text) * x
        elif name in RATE_SETTINGS:  # per second: N/m at scale x is N/(60x) per second
            scaled[name] = f"{parse_rate(text) / x:g}/s"
    return scaled


def _scaled_behaviours(value: Any, x: float, key: str = "") -> Any:
    """Fields named `*_s` are seconds and scale by `x`; `messages_per_second` scales by 1/x."""
    if isinstance(value, dict):
        return {k: _scaled_behaviours(v, x, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_scaled_behaviours(item, x, key) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        if key.endswith("_s"):
            return value * x
        if key == "messages_per_second":
            return value / x
    return value


# -- loading -------------------------------------------------------------------------------------


def scenario_path(name_or_path: str) -> Path:
    """A path to a .toml file, or the name of a scenario shipped in scenarios/."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"{path}: no such scenario file")
        return path
    if not scenario_dir().joinpath(f"{name_or_path}.toml").is_file():
        raise ScenarioError(
            f"no scenario named {name_or_path!r}; shipped: {', '.join(shipped_names())} "
            "(or give a path to a .toml file)"
        )
    return on_disk("scenarios", f"{name_or_path}.toml")


def shipped_names() -> list[str]:
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in scenario_dir().iterdir()
        if entry.name.endswith(".toml")
    )


# `harness init` marks what it could not tell with this; such a file is not run as it is.
UNFILLED_MARK = "FILL IN (harness init)"


def parse_scenario(text: str, source: str) -> Scenario:
    """Validate TOML text; every problem is named with `source`, the field and the value."""
    unfilled = [n for n, line in enumerate(text.splitlines(), 1) if UNFILLED_MARK in line]
    if unfilled:
        lines = ", ".join(f"{source}:{n + 1}" for n in unfilled)
        raise ScenarioError(
            f"{source}: still marked '{UNFILLED_MARK}': fill in {lines} and delete each mark"
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    return validate_scenario(data, source)


def validate_scenario(data: dict[str, Any], source: str) -> Scenario:
    """A scenario from parsed TOML; every problem is named with `source` and the field."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(describe_validation_error(exc, source)) from None
    scenario._source = source
    return scenario


def load_scenario(name_or_path: str) -> tuple[Scenario, str]:
    """The scenario and its file's text (kept verbatim with the results)."""
    path = scenario_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc}") from None
    return with_workdirs(parse_scenario(text, str(path)), path.resolve().parent), text


def with_workdirs(scenario: Scenario, directory: Path) -> Scenario:
    """External lanes' `cwd`, relative to the scenario's file, made absolute."""
    lanes = []
    for lane in scenario.lanes:
        external = lane.external
        if (
            external is not None
            and external.cwd is not None
            and not Path(external.cwd).is_absolute()
        ):
            resolved = str((directory / external.cwd).resolve())
            lane = lane.model_copy(
                update={"external": external.model_copy(update={"cwd": resolved})}
            )
        lanes.append(lane)
    return scenario.model_copy(update={"lanes": lanes})
