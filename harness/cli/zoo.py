"""`harness zoo`: the bug zoo, publicly reported Celery, kombu and broker bugs, each a
shipped scenario under `scenarios/zoo/` with a `[zoo]` table.

`harness zoo` lists the entries; `harness zoo run ID` runs one exactly as `harness run`
runs a scenario (the same options, the same code); `harness zoo report RUN_DIRS...`
writes the zoo table (bug x lane -> reproduced, fixed, not reproduced) from their runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..scenario.zoo import tracker_label
from ..scenario.zoo_files import zoo_entries, zoo_entry
from .exits import HarnessGroup
from .options import (
    BackendOpt,
    BrokerOpt,
    FailRatioOpt,
    LanesOpt,
    LatenessOpt,
    OutOpt,
    TimeScaleOpt,
    WorkersOpt,
)
from .output import console, say
from .runs import run

zoo = typer.Typer(
    cls=HarnessGroup,
    invoke_without_command=True,
    help="The bug zoo: list its entries, run one, or tabulate their runs.",
)


@zoo.callback()
def entries(ctx: typer.Context) -> None:
    """List the zoo's entries: id, title, trackers, what they affect, status."""
    if ctx.invoked_subcommand is not None:
        return
    found = zoo_entries()
    table = Table(title="the bug zoo", show_lines=True)
    longest = max((len(s.zoo.id) for s, _ in found if s.zoo is not None), default=2)
    table.add_column("id", no_wrap=True, min_width=longest)
    for heading in ("title", "trackers", "affects", "status"):
        table.add_column(heading, overflow="fold")
    for scenario, _ in found:
        entry = scenario.zoo
        assert entry is not None  # zoo_entries refuses a file without one
        affects = entry.affects
        status = entry.status
        if entry.fixed_by and entry.fix_lanes:
            status += f"; fixed by {entry.fixed_by}"
        table.add_row(
            entry.id,
            entry.title,
            "\n".join(tracker_label(url) for url in entry.trackers),
            "; ".join(
                (", ".join(affects.releases), ", ".join(affects.pools), ", ".join(affects.brokers))
            ),
            status,
        )
    console.print(table)


@zoo.command("run")
def run_entry(
    entry: Annotated[str, typer.Argument(help="The entry's id, as `harness zoo` lists it.")],
    pool: LanesOpt = None,
    time_scale: TimeScaleOpt = None,
    out: OutOpt = None,
    broker_url: BrokerOpt = None,
    max_fail_ratio: FailRatioOpt = None,
    max_lateness_p95: LatenessOpt = None,
    workers: WorkersOpt = None,
    backend: BackendOpt = "local",
) -> None:
    """Run one entry's scenario, as `harness run` does (all its lanes, or those picked)."""
    run(
        str(zoo_entry(entry)),
        pool,
        time_scale,
        out,
        broker_url,
        max_fail_ratio,
        max_lateness_p95,
        workers,
        backend,
    )


@zoo.command("report")
def report_entries(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run directories of zoo entries (`harness zoo run`).")
    ],
    out: Annotated[
        Path, typer.Option(help="Where zoo.md, zoo.html and each run's report go.")
    ] = Path("reports/zoo"),
) -> None:
    """Write the zoo table (bug x lane: reproduced, fixed, not reproduced) from runs, each
    cell linking its run's report, drawn again beside it."""
    from ..report.zoo import write_zoo_report  # matplotlib: only to draw (cli.reports)

    markdown, html = write_zoo_report(run_dirs, out)
    say(f"zoo report: {markdown} and {html}")
