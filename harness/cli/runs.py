"""`harness run` and `harness matrix`: a scenario run on the stack, judged, reported."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.live import Live
from rich.text import Text

from ..nemesis import check_backend, check_broker
from ..results import RESULTS, read_results
from ..run import run_scenario
from ..scenario import Scenario, load_scenario
from ..scenario.containers import local_lanes_only
from ..stack import Backend
from ..stack.compose import ComposeUnavailable, preflight, remove_orphans
from ..stack.own_services import check_lanes
from ..tables import comparison_table, progress_table
from .exits import EXIT_DIFFERS, supervised
from .options import (
    BackendOpt,
    BrokerOpt,
    FailRatioOpt,
    LanesOpt,
    LatenessOpt,
    OutOpt,
    ScenarioArg,
    TimeScaleOpt,
    WorkersOpt,
    new_run_dir,
)
from .output import console, say
from .reports import draw_run_reports


def matrix(
    scenario: ScenarioArg = "incident",
    time_scale: TimeScaleOpt = None,
    out: OutOpt = None,
    broker_url: BrokerOpt = None,
    max_fail_ratio: FailRatioOpt = None,
    max_lateness_p95: LatenessOpt = None,
    workers: WorkersOpt = None,
    backend: BackendOpt = "local",
) -> None:
    """Run every lane of a scenario side by side (default: the incident on all four pools)."""
    run(
        scenario,
        None,
        time_scale,
        out,
        broker_url,
        max_fail_ratio,
        max_lateness_p95,
        workers,
        backend,
    )


def run(
    scenario: ScenarioArg,
    pool: LanesOpt = None,
    time_scale: TimeScaleOpt = None,
    out: OutOpt = None,
    broker_url: BrokerOpt = None,
    max_fail_ratio: FailRatioOpt = None,
    max_lateness_p95: LatenessOpt = None,
    workers: WorkersOpt = None,
    backend: BackendOpt = "local",
) -> None:
    """Run one scenario, all its lanes or those picked with --pool."""
    load = {
        "max_fail_ratio": max_fail_ratio,
        "max_lateness_p95_s": max_lateness_p95,
        "workers": workers,
    }
    chosen, text = _scenario(scenario, pool, time_scale, load)
    if backend == "compose":
        _compose_ready(broker_url, chosen)
    else:
        local_lanes_only(chosen.lanes)
    check_broker(chosen, broker_url)
    check_backend(chosen, backend)
    run_dir = new_run_dir(out, chosen.name)
    supervised(
        lambda: _judged_run(chosen, text, run_dir, broker_url, backend),
        run_dir,
        chosen.name,
        on_interrupt=lambda: _partial(run_dir),
    )


def _scenario(
    name: str,
    pools: list[str] | None,
    time_scale: float | None,
    load: dict[str, float | int | None],
) -> tuple[Scenario, str]:
    """The scenario as it will run: lanes picked, load options applied, time scaled."""
    scenario, text = load_scenario(name)
    if pools:
        scenario = scenario.only(pools)
    if any(value is not None for value in load.values()):
        scenario = scenario.with_load_options(**load)
    return scenario.scaled(time_scale), text


def _judged_run(
    scenario: Scenario, text: str, run_dir: Path, broker: str | None, backend: Backend
) -> None:
    """The run with live progress, then the comparison and reports; typer.Exit(1) if a
    lane differs."""
    live = Live(Text(f"starting the stack for {scenario.name}..."), console=console)
    with live:
        outcome = run_scenario(
            scenario,
            run_dir,
            broker_url=broker,
            source_text=text,
            backend=backend,
            command=shlex.join(["harness", *sys.argv[1:]]),
            on_started=lambda stack: live.update(Text(f"stack up; logs in {run_dir}")),
            on_progress=lambda progress: live.update(progress_table(progress)),
        )
    console.line()
    console.print(comparison_table(outcome.results))
    say(f"results: {run_dir / RESULTS}")
    draw_run_reports(run_dir)
    if not outcome.results.as_expected:
        raise typer.Exit(EXIT_DIFFERS)


def _partial(run_dir: Path) -> None:
    """An interrupted run: its partial results and reports, if it got that far."""
    console.line()
    if (run_dir / RESULTS).exists():
        console.print(comparison_table(read_results(run_dir)))
        say(f"partial results: {run_dir / RESULTS}")
        draw_run_reports(run_dir)


def _compose_ready(broker: str | None, scenario: Scenario | None = None) -> None:
    """Engine, compose, images and ports, and the lanes of one's own in containers,
    checked before anything starts (said on one line, if not)."""
    if broker is not None:
        raise ComposeUnavailable(
            "the compose backend runs its own broker: --broker-url is for the local backend"
        )
    client = preflight()
    try:
        if scenario is not None:
            own = {lane.name: lane.external for lane in scenario.lanes if lane.external}
            check_lanes(client, own)
        for line in remove_orphans(client):  # a run killed with its reaper left them
            say(line, "yellow")
    finally:
        client.close()
