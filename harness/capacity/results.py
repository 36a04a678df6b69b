"""A capacity run's results.json: every step of every configuration, its knee and theory.

Written after each round (atomically, marked incomplete until the search is over), so a
run cut short keeps the steps it made. Each step names the run directory of its round
(a harness run of its own: history, journal, Locust's files), where its figures can be
checked again with `harness check`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from ..results import RESULTS, ResultsError, write_atomic
from ..scenario import CapacitySettings
from .search import Stopped
from .theory import Theory


class StepResult(BaseModel):
    """One load at one rate on one configuration, and what the checks made of it."""

    round: int = Field(description="The round (one stack, every configuration side by side).")
    rate_rps: float = Field(description="Fixtures requests per second asked of Locust.")
    offered_rps: float | None = Field(
        description="Fixtures requests per second as Locust sent them: (n - 1) over the time "
        "from the first to the last. Below the rate asked, the load generator fell behind."
    )
    repeat: bool = Field(description="A second run at the knee's rate: the knee's spread.")
    requests: int = Field(description="Fixtures requests the webhook accepted.")
    parts_expected: int
    delivered: int
    lost: int = Field(description="Parts lost or failed (the ledger's lost + failed).")
    late: int
    duplicated: int
    out_of_order: int
    lateness_p50_s: float | None
    lateness_p95_s: float | None = Field(
        description="Over every part asked for; a lost part counts as late by the grace."
    )
    lateness_max_s: float | None
    p95_at_least: bool = Field(
        description="Parts were lost: the p95 counts them at the grace, so it is a lower bound."
    )
    refused: int = Field(default=0, description="Fixtures requests the webhook did not answer 200.")
    passed: bool = Field(
        description="p95 within the on-time bound, nothing lost, no request refused."
    )
    mean_send_s: float | None = Field(
        description="Mean time from a send task's start to its end (a pool slot held)."
    )
    worker_cpu_s_per_part: float | None = Field(
        description="The lane's worker processes' CPU time over the step, per part delivered."
    )
    machine_busy: float | None = Field(
        description="Share of the machine's CPU time in use during the step (all lanes)."
    )
    machine_peak: float | None = Field(
        default=None, description="The busiest second of the step (share of every core)."
    )
    run_dir: str = Field(description="The round's run directory, relative to this file's.")


class ConfigResult(BaseModel):
    """One configuration (a lane): its steps in order, its knee and its theory."""

    lane: str
    pool: str
    concurrency: int
    settings: dict[str, str] = Field(description="The lane's own settings (env names).")
    steps: list[StepResult]
    knee_rps: float | None = Field(description="The highest rate kept on time at every run.")
    above_rps: float | None = Field(
        description="The lowest rate above the knee not kept on time (None: none ran)."
    )
    resolution: float | None = Field(description="above / knee - 1: where the true knee may lie.")
    stable: bool = Field(
        description="No rate above the knee was kept on time at one run and not at another."
    )
    repeat_p95_spread_s: float | None = Field(
        description="The p95 lateness of the knee's step, run twice: how far apart."
    )
    stopped: Stopped | None = Field(description="Why the search ended.")
    theory: Theory | None
    of_theory: float | None = Field(description="knee / the theoretical bound.")


class CapacityResults(BaseModel):
    """What `harness capacity` found, and under which conditions."""

    kind: Literal["capacity"] = "capacity"
    scenario: str
    description: str
    time_scale: float
    complete: bool = Field(description="False: cut short; the steps so far are kept.")
    started_at: float
    finished_at: float
    settings: CapacitySettings
    parts: int
    spacing_s: float
    on_time_s: float
    missing_after_s: float = Field(description="The grace a step gives a part (s).")
    latency: dict[str, Any] = Field(description="The Cloud API's latency model.")
    api_mps: float | None = Field(description="The API's throughput limit per business number.")
    cores: int
    busy_before: float | None = Field(
        description="The busy share of every core in the second before the first round: "
        "other work on the machine, which lowers every knee."
    )
    noise_s: float = Field(
        description="p95 differences within this are noise: the setting, or the widest "
        "spread a repeat measured."
    )
    configs: list[ConfigResult]
    equal: list[list[str]] = Field(
        description="Configurations whose knee ranges [knee, above] overlap: equal within them."
    )
    versions: dict[str, str]
    scenario_definition: dict[str, Any]


def is_capacity(path: Path) -> bool:
    """Whether `path` (a directory or its results.json) holds a capacity run's results."""
    file = path / RESULTS if path.is_dir() else path
    try:
        return json.loads(file.read_text(encoding="utf-8")).get("kind") == "capacity"
    except (OSError, ValueError, AttributeError):
        return False


def read_capacity(path: Path) -> CapacityResults:
    file = path / RESULTS if path.is_dir() else path
    try:
        return CapacityResults.model_validate_json(file.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise ResultsError(f"{file}: not a capacity run's results: {exc}") from None


def write_capacity(run_dir: Path, results: CapacityResults) -> Path:
    path = run_dir / RESULTS
    write_atomic(path, results.model_dump_json(indent=2) + "\n")
    return path
