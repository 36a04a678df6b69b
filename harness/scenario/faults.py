"""A scenario's faults (`[[faults]]`): what the nemesis injects, one model per action.

`Fault` is a union discriminated by `action`: each action's model holds exactly the
fields that action takes, so the JSON Schema says which those are, and a field given
to an action that does not take it is refused by the model itself. `explain` turns
what pydantic says of a fault into the scenario's own sentences.

A fault strikes `at_s` after the requests were answered. Counted from the answers,
when every part is queued, a fault strikes at the same point of its schedule at any
time scale, however long the queuing took. A lane's fault counts from that lane's
answers, or fires on an event (`after_received`, `after_sent`); a fault on the whole
stack (the broker, the mock API) counts from the answers to every lane's requests.

A lane's faults run in order, as do the stack's: each waits for the one before it to
be done (a window is done when it closes). A lane fault with no `lane` strikes every
lane.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, TypeAdapter, model_validator
from pydantic_core import ErrorDetails

from mock_meta_api.config import FaultAnswer, LatencyModel, PairRate, Throughput

from .strict import Seconds, Strict

Window = Annotated[float, Field(gt=0, le=24 * 3600)]

FaultAction = Literal[
    "kill-worker",
    "stop-worker",
    "start-worker",
    "restart-worker",
    "freeze-worker",
    "thaw-worker",
    "kill-pool-process",
    "api-outage",
    "api-latency",
    "api-rate-limit",
    "restart-broker",
    "stop-broker",
    "net-delay",
    "net-reset",
    "net-blackhole",
    "net-half-open",
]
FAULT_ACTIONS: tuple[str, ...] = get_args(FaultAction)
# Faults on the whole stack: the broker, and the mock Cloud API every lane shares.
STACK_ACTIONS = frozenset(
    {"api-outage", "api-latency", "api-rate-limit", "restart-broker", "stop-broker"}
)
BROKER_ACTIONS = frozenset({"restart-broker", "stop-broker"})
NET_ACTIONS = frozenset({"net-delay", "net-reset", "net-blackhole", "net-half-open"})
WINDOW_ACTIONS = frozenset({"api-outage", "api-latency", "api-rate-limit", "stop-broker"}) | (
    NET_ACTIONS - {"net-half-open"}
)
NetTarget = Literal["broker", "api"]
DEFAULT_GRACE_S = 10.0  # docker's stop timeout: SIGTERM, then SIGKILL 10 s later
TRIGGERS = ("at_s", "after_received", "after_sent")


def _action(what: str) -> Any:
    return Field(description=f"The fault: {what}")


class _AnyFault(Strict):
    """What every fault answers, whichever fields its action takes."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        """A field this action does not take, given as null, is not given: a scenario as a
        run stored it (`scenario_definition`) names every fault field, null where unset."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k in cls.model_fields}
        return data

    def __getattr__(self, name: str) -> Any:
        """Another action's field: this action does not take it, so it is unset (None),
        as code that handles every action reads it."""
        if name in FAULT_FIELD_NAMES:
            return None
        return super().__getattr__(name)  # type: ignore[misc]

    @property
    def grace(self) -> float:
        """The stop's grace in seconds: `grace_s`, or docker's default."""
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


class _LaneFault(_AnyFault):
    """A fault on a lane: its oldest running worker, or its network proxy."""

    at_s: Seconds | None = Field(
        default=None,
        description="Seconds after the lane's requests were answered (every part is queued "
        "by then) at which the fault strikes; scaled with the run. Exactly one of at_s, "
        "after_received and after_sent.",
    )
    after_received: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        default=None,
        description="Fire once the lane's workers have received this many parts (a count: "
        "never scaled). Exactly one of at_s, after_received and after_sent.",
    )
    after_sent: Annotated[int, Field(ge=0, le=100_000)] | None = Field(
        default=None,
        description="Fire once the API has accepted the part with this seq (0: the first). "
        "Exactly one of at_s, after_received and after_sent.",
    )
    action: str = _action("a lane's.")
    lane: str | None = Field(
        default=None, description="The lane it strikes, by name; omitted: every lane."
    )

    @model_validator(mode="after")
    def _one_trigger(self) -> _LaneFault:
        when = [name for name in TRIGGERS if getattr(self, name) is not None]
        if len(when) != 1:
            given = f"got {' and '.join(when)}" if when else "got none"
            raise ValueError(f"a fault needs exactly one of {', '.join(TRIGGERS)} ({given})")
        return self


class _StackFault(_AnyFault):
    """A fault on the whole stack (the broker, the mock API every lane shares): no lane."""

    at_s: Seconds = Field(
        description="Seconds after every lane's requests were answered at which the fault "
        "strikes; scaled with the run. A fault on the whole stack is timed by at_s only."
    )
    action: str = _action("the stack's.")


class KillWorker(_LaneFault):
    """SIGKILL the lane's oldest running worker and its pool processes, as the OOM killer
    (or a stop timeout running out) does; the messages it holds stay unacked in the broker."""

    action: Literal["kill-worker"] = _action("SIGKILL the worker and its pool processes.")


class KillPoolProcess(_LaneFault):
    """SIGKILL one pool process of the lane's oldest running prefork worker, as the OOM
    killer picks the child that grew: the one running a task (the one busy longest, if
    more are), else the first, and the record says which, with the part it ran. The main
    process lives on and forks a new child. Local stack and prefork lanes only."""

    action: Literal["kill-pool-process"] = _action(
        "SIGKILL one pool process of a prefork worker, the busy one if any."
    )


class _Graceful(_LaneFault):
    grace_s: Annotated[float, Field(ge=0)] | None = Field(
        default=None,
        description=f"Seconds from SIGTERM (Celery's warm shutdown) to SIGKILL; default "
        f"{DEFAULT_GRACE_S:g} s, as docker's. Never scaled: a warm shutdown takes as long at "
        "any time scale.",
    )


class StopWorker(_Graceful):
    """SIGTERM the lane's oldest running worker (Celery's warm shutdown), then SIGKILL it
    after `grace_s`, as `docker stop` and Kubernetes do."""

    action: Literal["stop-worker"] = _action("SIGTERM, then SIGKILL after grace_s.")


class StartWorker(_LaneFault):
    """Start one more worker for the lane: a supervisor's restart, or the new worker of a
    rolling deploy. The fault is done once the worker is ready."""

    action: Literal["start-worker"] = _action("start one more worker for the lane.")


class RestartWorker(_Graceful):
    """`stop-worker` on the lane's running worker if one still runs (with its `grace_s`),
    then `start-worker`: a supervisor's or an operator's restart, whether the old worker
    died or not."""

    action: Literal["restart-worker"] = _action("stop-worker if one runs, then start-worker.")


class FreezeWorker(_LaneFault):
    """SIGSTOP the lane's oldest running worker and its pool processes: a stalled VM, a
    long GC pause, `docker pause`."""

    action: Literal["freeze-worker"] = _action("SIGSTOP the worker and its pool processes.")


class ThawWorker(_LaneFault):
    """SIGCONT the lane's workers frozen before (the run's end thaws them too)."""

    action: Literal["thaw-worker"] = _action("SIGCONT the lane's frozen workers.")


class _StackWindow(_StackFault):
    duration_s: Window = Field(
        description="How long the window lasts, in seconds (above 0, at most 24 h); then "
        "what it switched is switched back. Scaled with the run."
    )


class ApiOutage(_StackWindow):
    """For `duration_s`, every send to the mock Cloud API gets `answer`, through the mock's
    admin API; then its failures are switched back (Meta down, a proxy dropping
    connections). Cannot be combined with `api.failures.outages`."""

    action: Literal["api-outage"] = _action("every send gets `answer` for the window.")
    answer: FaultAnswer | None = Field(
        default=None,
        description="What every send gets: an error answer (default: HTTP 503, code 131016), "
        '{ action = "reset" } (the connection cut) or { action = "hang" } (no answer).',
    )


class ApiLatency(_StackWindow):
    """For `duration_s`, every answer of the mock Cloud API takes `latency`: a latency
    spike."""

    action: Literal["api-latency"] = _action("every answer takes `latency` for the window.")
    latency: LatencyModel = Field(
        description="How long every answer takes: a latency model as in [api.latency], "
        'e.g. { model = "fixed", value_s = 3 }.'
    )


class ApiRateLimit(_StackWindow):
    """For `duration_s`, Meta's `throughput` and / or `pair_rate` limits as given: a lower
    tier, a burst to one user."""

    action: Literal["api-rate-limit"] = _action("Meta's rate limits for the window.")
    throughput: Throughput | None = Field(
        default=None,
        description="Meta's throughput limit, as [api.throughput], e.g. "
        "{ messages_per_second = 1 }. At least one of throughput and pair_rate.",
    )
    pair_rate: PairRate | None = Field(
        default=None,
        description="Meta's limit per business-user pair, as [api.pair_rate], e.g. "
        "{ period_s = 6, burst = 1 }. At least one of throughput and pair_rate.",
    )

    @model_validator(mode="after")
    def _a_limit(self) -> ApiRateLimit:
        if self.throughput is None and self.pair_rate is None:
            raise ValueError("api-rate-limit needs throughput, pair_rate or both")
        return self


_KEEP_DATA = (
    "true (the default): the broker keeps its data (the embedded Valkey saves a dump "
    "first; RabbitMQ stops cleanly); false: it comes back empty."
)


class RestartBroker(_StackFault):
    """Stop the brokers the harness started (the embedded Valkey, its own RabbitMQ node)
    and start them again on their ports, with their data or empty: a restart or failover,
    with or without persistence. Refused for brokers at a URL."""

    action: Literal["restart-broker"] = _action("stop the broker, and start it again.")
    keep_data: bool | None = Field(default=None, description=_KEEP_DATA)


class StopBroker(_StackWindow):
    """`restart-broker` with the broker down for `duration_s`: an outage."""

    action: Literal["stop-broker"] = _action("the broker down for the window.")
    keep_data: bool | None = Field(default=None, description=_KEEP_DATA)


_TARGET = (
    "\"broker\": Celery's connection to the lane's broker (the bot's own store stays "
    'direct, so the evidence is kept); "api": the bot\'s calls to the API.'
)


class _NetWindow(_LaneFault):
    """Through a loopback TCP proxy the harness puts between the lane's workers and
    `target` when a scenario has a network fault."""

    duration_s: Window = Field(
        description="How long the window lasts, in seconds (above 0, at most 24 h); then "
        "the proxy passes data again. Scaled with the run."
    )
    target: NetTarget = Field(description=_TARGET)


class NetDelay(_NetWindow):
    """For `duration_s`, every chunk of data between the lane's workers and `target` waits
    `delay_s` more, both ways: a congested or long link."""

    action: Literal["net-delay"] = _action("every chunk waits delay_s more, both ways.")
    delay_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        description="Seconds added to every chunk of data, both ways (above 0, at most "
        "3600). Scaled with the run."
    )


class NetReset(_NetWindow):
    """For `duration_s`, every connection to `target` is cut with a TCP reset, new ones too:
    a firewall rejecting, a peer restarted."""

    action: Literal["net-reset"] = _action("connections cut with a TCP reset.")


class NetBlackhole(_NetWindow):
    """For `duration_s`, nothing passes; then the connections held are reset: a dead route,
    a NAT that forgot its connections."""

    action: Literal["net-blackhole"] = _action("nothing passes; then connections are reset.")


class NetHalfOpen(_LaneFault):
    """The lane's connections to `target` open at that moment pass nothing from then on,
    either way, and are never reset; new connections pass: a half-open connection, the
    route up but the old flow dropped silently (a NAT's or firewall's table turned over, a
    failover). No window: only the client's own timeout ends such a connection."""

    action: Literal["net-half-open"] = _action(
        "the open connections pass nothing, for good; new ones pass."
    )
    target: NetTarget = Field(description=_TARGET)


FAULT_MODELS: dict[str, type[_AnyFault]] = {
    "kill-worker": KillWorker,
    "stop-worker": StopWorker,
    "start-worker": StartWorker,
    "restart-worker": RestartWorker,
    "freeze-worker": FreezeWorker,
    "thaw-worker": ThawWorker,
    "kill-pool-process": KillPoolProcess,
    "api-outage": ApiOutage,
    "api-latency": ApiLatency,
    "api-rate-limit": ApiRateLimit,
    "restart-broker": RestartBroker,
    "stop-broker": StopBroker,
    "net-delay": NetDelay,
    "net-reset": NetReset,
    "net-blackhole": NetBlackhole,
    "net-half-open": NetHalfOpen,
}
Fault = Annotated[
    KillWorker
    | StopWorker
    | StartWorker
    | RestartWorker
    | FreezeWorker
    | ThawWorker
    | KillPoolProcess
    | ApiOutage
    | ApiLatency
    | ApiRateLimit
    | RestartBroker
    | StopBroker
    | NetDelay
    | NetReset
    | NetBlackhole
    | NetHalfOpen,
    Field(discriminator="action"),
]
FAULT: TypeAdapter[Fault] = TypeAdapter(Fault)
# Every field some fault takes; each action's model takes its own share of them.
FAULT_FIELD_NAMES = frozenset(
    name for model in FAULT_MODELS.values() for name in model.model_fields
)


# -- pydantic's words on a fault, as the scenario says them -------------------------------------

# A field an action needs and was not given.
_NEEDS = {
    "duration_s": "{action} is a window: give duration_s (seconds)",
    "target": '{action} needs target = "broker" or "api"',
    "delay_s": "{action} needs delay_s (seconds added to every chunk)",
    "latency": '{action} needs latency, e.g. {{ model = "fixed", value_s = 3 }}',
}


def _takers(name: str) -> list[str]:
    return [action for action in FAULT_ACTIONS if name in FAULT_MODELS[action].model_fields]


def _refused(action: str, name: str, given: dict[str, Any]) -> str | None:
    """Why `action` does not take the field `name`; None if no fault takes it."""
    if action in STACK_ACTIONS and name == "lane":
        what = "the broker" if action in BROKER_ACTIONS else "the mock API"
        return (
            f"{action} strikes the whole stack ({what}, shared by every lane), "
            f"not a lane; remove lane = {given.get('lane')!r}"
        )
    if action in STACK_ACTIONS and name in TRIGGERS:
        return (
            f"{action} strikes the whole stack: time it with at_s ({name} counts one lane's parts)"
        )
    takers = _takers(name)
    if not takers:
        return None
    return f"{name} applies to {' and '.join(takers)} only, not to {action}"


def explain(item: ErrorDetails, data: Any) -> ErrorDetails | None:
    """One of pydantic's errors under `faults.N`, in the scenario's own words (None: the
    same problem is said by another error); any other error as it is. `data` is the
    scenario as given, whose fault a sentence quotes."""
    loc = item["loc"]
    if len(loc) < 2 or loc[0] != "faults" or not isinstance(loc[1], int):
        return item
    at = loc[:2]
    given = _given(data, loc[1])
    if item["type"] == "union_tag_invalid":
        allowed = ", ".join(repr(action) for action in FAULT_ACTIONS[:-1])
        message = f"Input should be {allowed} or {FAULT_ACTIONS[-1]!r}"
        return _said((*at, "action"), message, given.get("action"))
    if item["type"] == "union_tag_not_found":
        return _said((*at, "action"), "Field required", given, kind="missing")
    if len(loc) < 3 or loc[2] not in FAULT_MODELS:
        return item
    action, rest = str(loc[2]), loc[3:]
    name = str(rest[0]) if len(rest) == 1 else ""
    if item["type"] == "extra_forbidden" and name:
        refused = _refused(action, name, given)
        if refused is not None:
            return _said(at, refused, given)
    if item["type"] == "missing" and name == "at_s":  # a stack fault: timed by at_s only
        if any(trigger in given for trigger in TRIGGERS):
            return None  # the trigger given instead is refused, and said so
        triggers = ", ".join(TRIGGERS)
        return _said(at, f"a fault needs exactly one of {triggers} (got none)", given)
    if item["type"] == "missing" and name in _NEEDS:
        return _said(at, _NEEDS[name].format(action=action), given)
    return {**item, "loc": (*at, *rest)}  # the action's name is in the input already


def _given(data: Any, index: int) -> dict[str, Any]:
    """The fault at `index` as the scenario gave it ({} if it was not a table)."""
    try:
        fault = data["faults"][index]
    except (KeyError, IndexError, TypeError):
        return {}
    return dict(fault) if isinstance(fault, dict) else {}


def _said(
    loc: tuple[int | str, ...], message: str, given: Any, kind: str = "fault"
) -> ErrorDetails:
    return ErrorDetails(type=kind, loc=loc, msg=message, input=given)
