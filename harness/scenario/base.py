"""Scenarios: what a run does and what it must find, as validated data from TOML.

A scenario names the flow (messages per request, spacing, recipients), the
lanes (pool, concurrency, Celery settings) with the verdict each must reach,
the mock Cloud API's behaviours, the tolerances the checks apply, and faults
on a schedule. `Scenario.scaled(x)` multiplies every duration by `x`, so a CI
run can take a quarter of the time and reach the same verdicts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from mock_meta_api.config import Behaviours

from .brokers import RabbitSettings
from .capacity import CapacitySettings
from .errors import ScenarioError, scenario_error
from .faults import Fault
from .lanes import LaneScenario, check_unique_lanes
from .load import Load
from .scaling import check_floors, check_scale, scaled_behaviours, scaled_fault, scaled_settings
from .settings import Settings, settings_env
from .strict import Seconds, Strict
from .zoo import Zoo, check_zoo_lanes


def check_pool_processes(index: int, lane: str | None, lanes: list[LaneScenario]) -> None:
    """kill-pool-process strikes a pool process: only prefork workers have them (solo and
    threads run tasks in the worker itself, gevent and eventlet in greenlets), and only the
    replica's are known (an external lane's command may wrap its worker)."""
    struck = [item for item in lanes if lane in (None, item.name)]
    external = [item.name for item in struck if item.external is not None]
    if external:
        raise ValueError(
            f"faults.{index}: kill-pool-process finds the pool process running a part by the "
            f"replica bot's own events; {', '.join(external)} runs a bot of its own (external), "
            "whose command may wrap the worker: kill-worker strikes it whole"
        )
    others = [f"{item.name} ({item.pool})" for item in struck if item.pool != "prefork"]
    if others:
        which = "every lane" if lane is None else f"lane {lane!r}"
        raise ValueError(
            f"faults.{index}: kill-pool-process kills a pool process of a prefork worker, "
            f"and strikes {which}; {', '.join(others)} has none: name a prefork lane"
        )


class Flow(Strict):
    """The fixtures flow: each recipient sends one request, answered by `messages` parts."""

    messages: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=22,
        description="Parts per reply, 1 to 1000: the bot's FIXTURES_PARTS.",
    )
    spacing_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=2.0,
        description="Seconds between parts (above 0, at most 3600): part seq is due seq x "
        "spacing_s after the request (FIXTURES_SPACING_S). Scales with the run.",
    )
    recipients: Annotated[int, Field(ge=1, le=100)] = Field(
        default=1,
        description='Simulated users per lane, 1 to 100, one "fixtures" request each. A load '
        "test's users come from [load] instead.",
    )

    @property
    def schedule_s(self) -> float:
        """When the last part is due, counted from the request."""
        return (self.messages - 1) * self.spacing_s


class Tolerances(Strict):
    """What the checks accept, in seconds; each bound but `early_s` scales with the run."""

    on_time_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        description="A part reaching the API later than this many seconds after its due time "
        "is late (above 0, at most 3600). Required. Scales with the run."
    )
    early_s: Seconds = Field(
        default=0.05,
        description="A part reaching the API more than this many seconds before its due "
        "time is early (0 to 24 h). Not scaled: how early a timer fires is clock noise, "
        "the same at any time scale.",
    )
    missing_after_s: Annotated[float, Field(gt=0, le=24 * 3600)] = Field(
        default=30.0,
        description="Seconds the run waits after the last due time (or after a fault still "
        "being done then); a part not at the API by then is missing. At least on_time_s; "
        "scales with the run.",
    )
    order_by: Literal["api_receipt", "api_response"] = Field(
        default="api_receipt",
        description="Which order must follow seq: `api_receipt` (when the API received each "
        "part) or `api_response` (when it answered).",
    )

    @model_validator(mode="after")
    def _missing_after_late(self) -> Tolerances:
        if self.missing_after_s < self.on_time_s:
            raise ValueError(
                f"missing_after_s ({self.missing_after_s}) must be at least on_time_s "
                f"({self.on_time_s}): a part must be able to arrive late before it is missing"
            )
        return self


class Scenario(Strict):
    """A whole run: flow, lanes, mock behaviours, tolerances and faults."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")] = Field(
        description="The scenario's name: lower-case letters, digits and dashes, at most 41 "
        "characters. Run directories are named by it."
    )
    description: Annotated[str, Field(min_length=1)] = Field(
        description="What the scenario shows, in one line (not empty)."
    )
    time_scale: Annotated[float, Field(gt=0, le=100)] = Field(
        default=1.0,
        description="The scale every duration is multiplied by (above 0, at most 100); "
        "--time-scale overrides it. Refused below the floors: a scaled spacing under 0.1 s, "
        "or an on-time bound under 0.5 s.",
    )
    min_time_scale: Annotated[float, Field(gt=0, le=100)] | None = Field(
        default=None,
        description="The least time scale whose verdicts hold (above 0, at most 100; unset: "
        "none), for a scenario that a timer or a restart which does not scale decides (Redis's "
        "restore sweep, Celery's reconnect, a worker's restart). A smaller scale is refused.",
    )
    flow: Flow = Field(
        default_factory=Flow,
        description='The fixtures flow: each recipient sends one "fixtures" request, answered '
        "by `messages` parts `spacing_s` apart.",
    )
    settings: Settings = Field(
        default_factory=dict,
        description="Bot and Celery settings for every lane, by environment name (UPPER_CASE; "
        "a bot prefix must name a real setting). Settings the harness owns per lane (broker "
        "URL, key prefix, queue, API URL, number, token, secrets) and the flow's "
        "(FIXTURES_PARTS, FIXTURES_SPACING_S) are refused. Durations and rates scale.",
    )
    api: dict[str, Any] = Field(
        default_factory=dict,
        description="The mock Cloud API's behaviours (latency, failures, throughput, "
        "pair_rate, ...), exactly as its config file has them. Every `*_s` field scales "
        "with the run; messages_per_second is divided by the time scale.",
    )
    tolerances: Tolerances = Field(description="What the checks accept. Required, with on_time_s.")
    rabbitmq: RabbitSettings = Field(
        default_factory=RabbitSettings,
        description="The RabbitMQ node the harness starts for lanes on `rabbitmq` with no URL "
        "(its durations scale like every other).",
    )
    lanes: Annotated[list[LaneScenario], Field(min_length=1, max_length=15)] = Field(
        description="The lanes, 1 to 15, side by side on one stack: one pool under test each, "
        "with the verdict it must reach."
    )
    faults: list[Fault] = Field(
        default_factory=list,
        description="Faults the nemesis injects, each named by its `action`; a lane's faults "
        "run in order, as do the stack's. Empty: none.",
    )
    load: Load | None = Field(
        default=None,
        description="A Locust load test instead of one request per recipient; unset: one "
        "request per recipient.",
    )
    capacity: CapacitySettings | None = Field(
        default=None,
        description="How `harness capacity` searches (unset: its defaults); `harness run` "
        "ignores it.",
    )
    zoo: Zoo | None = Field(
        default=None,
        description="The publicly reported bug this scenario reproduces, as a zoo entry "
        "(`harness zoo`): its trackers, mechanism, the lanes that show the bug and those "
        "that show the fix, and what the runs tried found; unset: not a zoo entry.",
    )

    _source: str | None = PrivateAttr(default=None)  # the file it was read from, if any

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
            if fault.action == "kill-pool-process":
                check_pool_processes(i, fault.lane, self.lanes)
            if fault.action.startswith("api-") and self.api.get("failures", {}).get("outages"):
                raise ValueError(
                    f"faults.{i}.action: {fault.action} cannot be combined with "
                    "api.failures.outages: the mock times its outage windows from the last "
                    "change of its behaviours, which the fault makes; use api-outage faults"
                )
        if self.zoo is not None:
            check_zoo_lanes(self.zoo, self.lanes)
        return self

    @property
    def env(self) -> dict[str, str]:
        """The shared settings plus the flow's, as environment variables."""
        flow = {
            "FIXTURES_PARTS": str(self.flow.messages),
            "FIXTURES_SPACING_S": repr(self.flow.spacing_s),
        }
        return settings_env(self.settings) | flow

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
            raise scenario_error(exc, "command line: load") from None

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
        zoo = None if self.zoo is None else self.zoo.only(kept_names)  # None: no bug lane
        return self.model_copy(update={"lanes": kept, "faults": faults, "zoo": zoo})

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
        check_scale(x, self.named, self.min_time_scale)
        check_floors(self.named, x, self.flow.spacing_s, self.tolerances.on_time_s)
        scaled = self.model_copy(
            update={
                "time_scale": x,
                "flow": self.flow.model_copy(update={"spacing_s": self.flow.spacing_s * x}),
                "tolerances": self.tolerances.model_copy(
                    update={
                        "on_time_s": self.tolerances.on_time_s * x,
                        "missing_after_s": self.tolerances.missing_after_s * x,
                    }
                ),
                "settings": scaled_settings(self.settings, x),
                "lanes": [
                    lane.model_copy(update={"settings": scaled_settings(lane.settings, x)})
                    for lane in self.lanes
                ],
                "api": scaled_behaviours(self.api, x),
                "faults": [scaled_fault(f, x) for f in self.faults],
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
        data = scaled.model_dump()
        try:  # scaled up, a duration may pass its bound (spacing_s at most 3600 s, ...)
            checked = Scenario.model_validate(data)
        except ValidationError as exc:
            raise scenario_error(exc, f"{self.named} at time scale {x:g}", data) from None
        checked._source = self._source
        return checked
