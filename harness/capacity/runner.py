"""Run a capacity search: rounds of bounded Locust loads on the local stack.

A round is one harness run (`run_scenario`, a stack of its own) in which every
configuration still searching gets a steady load at the rate its search asks for, side
by side. A fresh stack per round means no backlog of one step runs into the next. The
results are written after every round, so a run cut short keeps every step it made.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from pydantic import ValidationError

from mock_meta_api.config import describe_validation_error

from ..checks import percentile
from ..history import MessageHistory
from ..load.driver import REQUESTS_LOG
from ..results import versions, write_atomic
from ..run import RunOutcome, run_scenario
from ..scenario import CapacitySettings, Load, Scenario, ScenarioError
from ..stack.backend import Stack
from .cpu import CpuSampler, machine_busy_now
from .results import CapacityResults, ConfigResult, StepResult, write_capacity
from .search import Next, Outcome, Stopped, knee, next_step
from .theory import Theory, mean_latency, theory

STEPS_DIR = "steps"
# A round beyond its load and the parts' schedule: the stack's start and stop, Locust's.
ROUND_OVERHEAD_S = 20.0


class CapacityError(ScenarioError):
    """A scenario a capacity search cannot run; the message says what to change."""


def capacity_scenario(scenario: Scenario) -> Scenario:
    """The scenario with its grid expanded: each lane of a pool other than solo once per
    `[capacity] concurrencies` entry. Refused with faults, a [load] or external lanes."""
    if scenario.faults:
        raise CapacityError(
            f"scenario {scenario.name!r}: a capacity search measures a healthy stack; "
            "remove its [[faults]]"
        )
    if scenario.load is not None:
        raise CapacityError(
            f"scenario {scenario.name!r}: a capacity search makes its own load at each step; "
            "remove its [load] table"
        )
    external = [lane.name for lane in scenario.lanes if lane.external is not None]
    if external:
        raise CapacityError(
            f"scenario {scenario.name!r}: lanes {external} run a bot of their own; a "
            "capacity search runs the replica bot only"
        )
    settings = scenario.capacity or CapacitySettings()
    lanes = []
    for lane in scenario.lanes:
        grown = [lane]
        if settings.concurrencies and lane.pool != "solo":
            grown = [
                lane.model_copy(update={"name": f"{lane.name}-{n}", "concurrency": n})
                for n in dict.fromkeys(settings.concurrencies)
            ]
        lanes += [item.model_copy(update={"expect": "pass", "because": []}) for item in grown]
    try:
        return Scenario.model_validate(
            scenario.model_dump() | {"lanes": [lane.model_dump() for lane in lanes]}
        )
    except ValueError as exc:
        raise CapacityError(f"scenario {scenario.name!r}: its capacity grid: {exc}") from None


def with_options(scenario: Scenario, **options: object) -> Scenario:
    """The command line's capacity options (None: unset) over the [capacity] table's."""
    given = {name: value for name, value in options.items() if value is not None}
    if not given:
        return scenario
    base = (scenario.capacity or CapacitySettings()).model_dump()
    try:
        settings = CapacitySettings.model_validate(base | given)
    except ValidationError as exc:
        raise CapacityError(describe_validation_error(exc, "command line: capacity")) from None
    return scenario.model_copy(update={"capacity": settings})


def round_scenario(scenario: Scenario, wanted: dict[str, Next], load_s: float) -> Scenario:
    """The lanes of this round, each at its own rate for `load_s`; a part waits for the
    scenario's grace plus `load_s`, so a lane at twice its knee still drains."""
    lanes = [scenario.lane(name) for name in wanted]
    # Users per lane share its rate: enough that each waits a second or more between its
    # requests, so a slow webhook answer delays no request of the lane's schedule.
    users = max(1, math.ceil(max(step.rate for step in wanted.values())))
    load = Load(
        users=users,
        spawn_rate=users,  # every user within the first second
        run_time_s=load_s,
        shape="steady",
        fixtures_share=1.0,
        rates={name: step.rate for name, step in wanted.items()},
    )
    tolerances = scenario.tolerances.model_copy(
        update={"missing_after_s": scenario.tolerances.missing_after_s + load_s}
    )
    round_ = scenario.model_copy(
        update={"lanes": lanes, "load": load, "tolerances": tolerances, "capacity": None}
    )
    return Scenario.model_validate(round_.model_dump())  # every check a file gets


@dataclass
class _Config:
    """One configuration's search: its steps, and why it stopped."""

    lane: str
    pool: str
    concurrency: int
    settings: dict[str, str]
    first_rate: float
    steps: list[StepResult] = field(default_factory=list)
    stopped: Stopped | None = None

    @property
    def outcomes(self) -> list[Outcome]:
        return [Outcome(s.rate_rps, s.passed, s.repeat) for s in self.steps]


@dataclass(frozen=True)
class RoundDone:
    """Told after each round: its number, its run directory and the steps it made."""

    number: int
    run_dir: Path
    steps: dict[str, StepResult]
    elapsed_s: float


class Capacity:
    """The search over every configuration of a (scaled, expanded) scenario."""

    def __init__(self, scenario: Scenario, run_dir: Path, source_text: str | None) -> None:
        self.scenario = scenario
        self.run_dir = run_dir
        self.source_text = source_text
        self.settings = scenario.capacity or CapacitySettings()
        self.started_at = time.time()
        self.cores = os.cpu_count() or 1
        self.latency = scenario.api["latency"]["default"]
        throughput = scenario.api["throughput"]
        self.api_mps = throughput["messages_per_second"] if throughput["enabled"] else None
        self.model_send_s = mean_latency(self.latency)
        self.busy_before: float | None = None
        self.broker: str | None = None  # as the rounds' broker reported it
        self.configs = {lane.name: self._config(lane.name) for lane in scenario.lanes}

    def _config(self, name: str) -> _Config:
        lane = self.scenario.lane(name)
        concurrency = 1 if lane.pool == "solo" else lane.concurrency or self.cores
        first = self._theory(lane.pool, concurrency, []).bound_rps * self.settings.start
        return _Config(name, lane.pool, concurrency, lane.env, first)

    def _theory(self, pool: str, concurrency: int, steps: list[StepResult]) -> Theory:
        """From the steps kept on time (no queueing in their send times), else the model."""
        kept = [s for s in steps if s.passed] or steps
        sends = [s.mean_send_s for s in kept if s.mean_send_s is not None]
        cpu = [
            (s.worker_cpu_s_per_part, s.delivered)
            for s in kept
            if s.worker_cpu_s_per_part is not None and s.delivered
        ]
        cpu_per_part = sum(c * n for c, n in cpu) / sum(n for _, n in cpu) if cpu else None
        return theory(
            pool=pool,
            concurrency=concurrency,
            parts=self.scenario.flow.messages,
            mean_send_s=fmean(sends) if sends else self.model_send_s,
            measured=bool(sends),
            api_mps=self.api_mps,
            cpu_s_per_part=cpu_per_part,
            cores=self.cores,
        )

    def run(
        self,
        on_start: Callable[[int, dict[str, Next]], None] | None = None,
        on_round: Callable[[RoundDone], None] | None = None,
    ) -> CapacityResults:
        """Round after round until every search is over; results written after each."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.source_text is not None:
            write_atomic(self.run_dir / "scenario.toml", self.source_text)
        least = 1 / self.settings.load_s  # one request within a step's load
        self.busy_before = machine_busy_now()
        number = 0
        longest = self.settings.load_s + self.scenario.flow.schedule_s + ROUND_OVERHEAD_S
        complete = False
        try:
            while True:
                wanted: dict[str, Next] = {}
                for config in self.configs.values():
                    step, config.stopped = next_step(
                        config.outcomes, self.settings, config.first_rate, least
                    )
                    if step is not None:
                        wanted[config.lane] = step
                if not wanted:
                    break
                if time.time() - self.started_at + longest > self.settings.budget_s:
                    for name in wanted:
                        self.configs[name].stopped = "budget"
                    break
                number += 1
                if on_start is not None:
                    on_start(number, wanted)
                began = time.time()
                steps = self._round(number, wanted)
                longest = max(longest, time.time() - began)
                write_capacity(self.run_dir, self.results(complete=False))
                if on_round is not None:
                    on_round(RoundDone(number, self._round_dir(number), steps, time.time() - began))
            complete = True
        finally:
            results = self.results(complete)
            write_capacity(self.run_dir, results)
        return results

    def _round_dir(self, number: int) -> Path:
        return self.run_dir / STEPS_DIR / f"round-{number}"

    def _round(self, number: int, wanted: dict[str, Next]) -> dict[str, StepResult]:
        sampler = CpuSampler()
        stack: list[Stack] = []

        def read_cpu(_: object) -> None:
            if stack:
                sampler.read({name: lane.worker.pid for name, lane in stack[0].lanes.items()})

        scenario = round_scenario(self.scenario, wanted, self.settings.load_s)
        outcome = run_scenario(
            scenario,
            self._round_dir(number),
            on_started=stack.append,
            on_progress=read_cpu,
        )
        self.broker = outcome.results.versions.get("broker", self.broker)
        steps = {}
        for name, step in wanted.items():
            result = self._step(outcome, name, step, number, sampler)
            self.configs[name].steps.append(result)
            steps[name] = result
        return steps

    def _step(
        self, outcome: RunOutcome, name: str, step: Next, number: int, sampler: CpuSampler
    ) -> StepResult:
        """One configuration's figures in a round, from the checks and its history."""
        lane = outcome.lane(name)
        assert lane.ledger is not None
        if lane.concurrency is not None:  # as the worker reported it
            self.configs[name].concurrency = lane.concurrency
        tolerances = outcome.scenario.tolerances
        history = outcome.history.get(name, [])
        lost = lane.ledger.lost + lane.ledger.failed
        requests = lane.expected_messages // self.scenario.flow.messages
        lateness = step_lateness(history, lost, tolerances.missing_after_s)
        cpu = sampler.worker_cpu_s(name)
        p95 = percentile(lateness, 95)
        requests_sent = lane_requests(self._round_dir(number) / REQUESTS_LOG, name)
        turned_away = refused(requests_sent)
        return StepResult(
            round=number,
            rate_rps=step.rate,
            offered_rps=offered_rate(requests_sent),
            repeat=step.repeat,
            requests=requests,
            parts_expected=lane.expected_messages,
            delivered=lane.delivered,
            lost=lost,
            late=lane.late,
            duplicated=lane.duplicated,
            out_of_order=lane.order_inversions,
            lateness_p50_s=percentile(lateness, 50),
            lateness_p95_s=p95,
            lateness_max_s=max(lateness, default=None),
            p95_at_least=lost > 0,
            refused=turned_away,
            passed=lost == 0
            and turned_away == 0
            and p95 is not None
            and p95 <= tolerances.on_time_s,
            mean_send_s=mean_send(history),
            worker_cpu_s_per_part=None
            if cpu is None or not lane.delivered
            else cpu / lane.delivered,
            machine_busy=sampler.machine_busy(),
            machine_peak=sampler.machine_peak,
            run_dir=str(self._round_dir(number).relative_to(self.run_dir)),
        )

    def results(self, complete: bool) -> CapacityResults:
        configs = [self._config_result(config) for config in self.configs.values()]
        spreads = [c.repeat_p95_spread_s for c in configs if c.repeat_p95_spread_s is not None]
        scenario = self.scenario
        return CapacityResults(
            scenario=scenario.name,
            description=scenario.description,
            time_scale=scenario.time_scale,
            complete=complete,
            started_at=self.started_at,
            finished_at=time.time(),
            settings=self.settings,
            parts=scenario.flow.messages,
            spacing_s=scenario.flow.spacing_s,
            on_time_s=scenario.tolerances.on_time_s,
            missing_after_s=scenario.tolerances.missing_after_s + self.settings.load_s,
            latency=self.latency,
            api_mps=self.api_mps,
            cores=self.cores,
            busy_before=self.busy_before,
            noise_s=max([self.settings.noise_s, *spreads]),
            configs=configs,
            equal=equal_knees(configs),
            versions=versions(self.broker),
            scenario_definition=scenario.model_dump(mode="json"),
        )

    def _config_result(self, config: _Config) -> ConfigResult:
        found = knee(config.outcomes)
        repeated = {s.rate_rps for s in config.steps if s.repeat}
        twice = [
            s.lateness_p95_s
            for s in config.steps
            if s.rate_rps in repeated and s.lateness_p95_s is not None
        ]
        bounds = self._theory(config.pool, config.concurrency, config.steps)
        return ConfigResult(
            lane=config.lane,
            pool=config.pool,
            concurrency=config.concurrency,
            settings=config.settings,
            steps=config.steps,
            knee_rps=found.rate,
            above_rps=found.above,
            resolution=found.resolution,
            stable=found.stable,
            repeat_p95_spread_s=max(twice) - min(twice) if len(twice) > 1 else None,
            stopped=config.stopped,
            theory=bounds,
            of_theory=None if found.rate is None else found.rate / bounds.bound_rps,
        )


def step_lateness(history: list[MessageHistory], lost: int, grace_s: float) -> list[float]:
    """Each part's lateness (API receipt - due), and the grace for each part lost."""
    found = [m.lateness_s for m in history if m.lateness_s is not None]
    return found + [grace_s] * lost


def mean_send(history: list[MessageHistory]) -> float | None:
    times = [m.finished - m.started for m in history if m.finished and m.started]
    return fmean(times) if times else None


def equal_knees(configs: list[ConfigResult]) -> list[list[str]]:
    """Groups of configurations whose knee ranges [knee, lowest rate not kept] overlap."""
    spans = sorted(
        (c.knee_rps, math.inf if c.above_rps is None else c.above_rps, c.lane)
        for c in configs
        if c.knee_rps is not None
    )
    groups: list[list[str]] = []
    reach = -math.inf
    for low, high, lane in spans:
        if groups and low <= reach:
            groups[-1].append(lane)
            reach = max(reach, high)
        else:
            groups.append([lane])
            reach = high
    return [group for group in groups if len(group) > 1]


def lane_requests(requests_log: Path, lane: str) -> list[dict[str, Any]]:
    """The fixtures requests Locust logged for `lane`, read once for every figure of a step."""
    records = (json.loads(line) for line in requests_log.read_text().splitlines() if line.strip())
    return [record for record in records if record["lane"] == lane]


def refused(requests: list[dict[str, Any]]) -> int:
    """Fixtures requests the lane's webhook did not answer 200 (none queued a part)."""
    return sum(1 for record in requests if record["status"] != 200)


def offered_rate(requests: list[dict[str, Any]]) -> float | None:
    """Fixtures requests per second as Locust sent them: (n - 1) over the time from the
    first to the last (None below two requests)."""
    sent = sorted(record["sent_at"] for record in requests)
    if len(sent) < 2 or sent[-1] <= sent[0]:
        return None
    return (len(sent) - 1) / (sent[-1] - sent[0])
