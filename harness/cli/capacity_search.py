"""`harness capacity`: each lane's highest rate kept on time (the knee), searched."""

from __future__ import annotations

from typing import Annotated

import typer

from ..capacity.runner import Capacity, RoundDone, capacity_scenario, with_options
from ..results import RESULTS
from ..scenario import load_scenario
from .exits import supervised
from .options import LanesOpt, OutOpt, ScenarioArg, TimeScaleOpt, new_run_dir
from .output import console, say
from .reports import draw_capacity_reports


def capacity(
    scenario: ScenarioArg = "incident",
    pool: LanesOpt = None,
    concurrency: Annotated[
        list[int] | None,
        typer.Option(
            "--concurrency",
            "-c",
            help="The grid: every lane of a pool other than solo once per concurrency; "
            "repeatable. Overrides the capacity table's concurrencies.",
        ),
    ] = None,
    load_s: Annotated[
        float | None,
        typer.Option(help="Each step's load, in the scenario's seconds (default 70)."),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Steps per configuration, the repeat included (default 5).")
    ] = None,
    repeat: Annotated[
        bool | None, typer.Option(help="Run the knee's step again (its spread); default: yes.")
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Begin no round that would end past this many seconds (default 600)."),
    ] = None,
    time_scale: TimeScaleOpt = None,
    out: OutOpt = None,
) -> None:
    """Search each lane's highest rate of fixtures requests kept on time (the knee).

    Rounds of steady Locust loads on the local stack, every lane at a rate of its own,
    side by side: growing until a step is not kept on time, then bisecting; the knee's
    step repeated. Writes results.json and the reports (knees beside their theory).
    """
    # Unscaled until the grid is made: the time scale applies once, at the end.
    loaded, text = load_scenario(scenario)
    if pool:
        loaded = loaded.only(pool)
    chosen = with_options(
        loaded,
        concurrencies=concurrency,
        load_s=load_s,
        max_steps=max_steps,
        repeat=repeat,
        budget_s=budget,
    )
    grid = capacity_scenario(chosen).scaled(time_scale if time_scale else loaded.time_scale)
    run_dir = new_run_dir(out, f"capacity-{grid.name}")
    search = Capacity(grid, run_dir, text)
    say(f"capacity of {', '.join(search.configs)}; rounds in {run_dir}")

    def started(number: int, wanted: dict) -> None:
        rates = ", ".join(
            f"{name} {step.rate:.3g}/s" + (" (repeat)" if step.repeat else "")
            for name, step in wanted.items()
        )
        say(f"round {number}: {rates}")

    def done(finished: RoundDone) -> None:
        for name, step in finished.steps.items():
            kept = "kept on time" if step.passed else "not kept"
            p95 = "-" if step.lateness_p95_s is None else f"{step.lateness_p95_s:.2f} s"
            say(f"  {name}: {kept} (p95 {p95}, {step.lost} lost)")

    def interrupted() -> None:
        console.line()
        draw_capacity_reports(run_dir)

    results = supervised(
        lambda: search.run(on_start=started, on_round=done),
        run_dir,
        grid.name,
        on_interrupt=interrupted,
        stopped="; the steps so far are kept",
    )
    # The report package imports matplotlib (~1 s): only once there is a search to sum up.
    from ..report.capacity import BUSY, summary

    if results.busy_before is not None and results.busy_before > BUSY:
        say(
            f"the machine was {results.busy_before:.0%} busy before the first round: other "
            "work shared it, and every knee is lower than it allows",
            "yellow",
        )
    for config in results.configs:
        say(summary(config, results.parts))
    say(f"results: {run_dir / RESULTS}")
    draw_capacity_reports(run_dir)
