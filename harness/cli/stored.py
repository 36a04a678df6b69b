"""`harness check` and `harness report`: a stored run judged again, its reports redrawn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..capacity.results import is_capacity
from ..errors import InputError
from ..results import RESULTS, recheck
from ..tables import comparison_table
from .exits import EXIT_DIFFERS, EXIT_INPUT
from .output import console, say
from .reports import draw_capacity_reports


def check(
    results: Annotated[Path, typer.Argument(help="A run directory or its results.json.")],
) -> None:
    """Judge a stored run again from its history; exit 1 if a lane is not as expected."""
    if is_capacity(results):
        raise InputError(
            f"{results} is a capacity run: each of its rounds is a run of its own, to check "
            f"with harness check {results if results.is_dir() else results.parent}/steps/round-N"
        )
    stored, again = recheck(results)
    console.print(comparison_table(again))
    unrecorded = [lane.lane for lane in stored.lanes if lane.ledger is None]
    if unrecorded:
        say(
            f"ledger not recorded in {RESULTS} (written before the ledger) for "
            f"{', '.join(unrecorded)}: judged again from the history, every request's parts "
            "counted, as a fresh run counts them",
            "yellow",
        )
    changed = [
        f"{a.lane}: stored {a.verdict}, now {b.verdict}"
        for a, b in zip(stored.lanes, again.lanes, strict=True)
        if (a.verdict, a.reason_codes) != (b.verdict, b.reason_codes)
    ]
    for line in changed:
        say(f"verdict changed since the run: {line}", "yellow")
    if not again.as_expected:
        raise typer.Exit(EXIT_DIFFERS)


def report(
    run: Annotated[Path, typer.Argument(help="A run directory or its results.json.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the reports there, with a copy of the results, history and scenario "
            "file they are drawn from; default: the run directory."
        ),
    ] = None,
) -> None:
    """Write report.md and report.html (plots in plots/) again from a stored run."""
    from ..report import write_reports  # matplotlib: ~1 s to import; only to draw

    if is_capacity(run):
        if out is not None:
            raise InputError(
                "a capacity run's reports are drawn in its own directory: leave out --out"
            )
        if not draw_capacity_reports(run if run.is_dir() else run.parent):
            raise typer.Exit(EXIT_INPUT)
        return
    try:
        written = write_reports(run, out)
    except OSError as exc:  # the file system's word, said as the harness's input error
        raise InputError(
            f"cannot draw the report: {exc.filename or out or run}: {exc.strerror}"
        ) from None
    say(f"report: {written.markdown} and {written.html}")
