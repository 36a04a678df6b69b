"""Comparison reports for people: report.md and report.html, from a stored run.

`write_reports(run_dir)` reads results.json and history.jsonl (`data`), draws the plots
(`plots`, matplotlib, SVG), and writes beside them `report.md` (`markdown`: to paste
into an issue or a pull request, plots linked from `plots/`) and `report.html` (`html`:
one self-contained page, plots inlined), each from its Jinja template in `templates/`.
Every file is written atomically, and only from stored files, so `harness report RUN_DIR`
redraws any run, old or interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..results import HISTORY, RESULTS, ResultsError, read_results, results_path, write_atomic
from .data import Report, build_report, load_report
from .html import render_html
from .markdown import render_markdown
from .plots import draw

__all__ = [
    "REPORT_HTML",
    "REPORT_MD",
    "Report",
    "ReportError",
    "Written",
    "build_report",
    "write_reports",
]

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PLOTS_DIR = "plots"
# What `--out` copies beside the report: enough to draw it again from there.
SOURCES = (RESULTS, HISTORY, "scenario.toml")


class ReportError(InputError):
    """The report cannot go where it was asked to; the message says why."""


@dataclass(frozen=True)
class Written:
    """Where `write_reports` put the reports and their plots."""

    markdown: Path
    html: Path
    plots: list[Path]


def write_reports(run: Path, out: Path | None = None) -> Written:
    """Render the run in `run` (a run directory or its results.json) into `out`
    (default: the run directory itself).

    Given another `out`, the run's results, history and scenario file are copied there
    too, so that directory is a small run of its own: `harness report OUT` redraws it.
    Raises `ResultsError` (naming the file) if the run cannot be read, `ReportError` if
    `out` is a file, a run's directory, a non-empty directory with no earlier report in
    it, or the report of another scenario: only an earlier report of the same scenario
    is ever overwritten.
    """
    report = load_report(run)
    run_dir = results_path(run).parent
    out = run_dir if out is None else out
    elsewhere = not (out.exists() and out.resolve() == run_dir.resolve())
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out} is a file; give a directory for the report")
    if elsewhere and (out / "processes.json").exists():
        raise ReportError(f"{out} holds a run of its own; give another directory for the report")
    if elsewhere and out.is_dir() and any(out.iterdir()) and not (out / REPORT_MD).exists():
        raise ReportError(
            f"{out} is not empty and holds no earlier report; give a new or empty directory, "
            "or one with a report to replace"
        )
    if elsewhere and (out / RESULTS).is_file():
        earlier = _scenario_of(out)
        if earlier != report.results.scenario:
            raise ReportError(
                f"{out} holds a report of scenario {earlier!r}, not {report.results.scenario!r}; "
                "give its own directory, or an empty one"
            )
    out.mkdir(parents=True, exist_ok=True)
    if elsewhere:
        for name in SOURCES:  # a source this run lacks must not survive from an earlier one
            if (run_dir / name).is_file():
                write_atomic(out / name, (run_dir / name).read_text(encoding="utf-8"))
            else:
                (out / name).unlink(missing_ok=True)
    plots = draw(report)
    plots_dir = out / PLOTS_DIR
    plots_dir.mkdir(exist_ok=True)
    for stale in plots_dir.glob("timeline-*.svg"):  # lanes of an earlier report
        if stale.name not in plots:
            stale.unlink()
    written = []
    for name, svg in plots.items():
        write_atomic(plots_dir / name, svg)
        written.append(plots_dir / name)
    write_atomic(out / REPORT_MD, render_markdown(report, PLOTS_DIR))
    write_atomic(out / REPORT_HTML, render_html(report, plots))
    return Written(out / REPORT_MD, out / REPORT_HTML, written)


def _scenario_of(directory: Path) -> str | None:
    """The scenario of the report already in `directory` (None if its results are unreadable)."""
    try:
        return read_results(directory).scenario
    except ResultsError:
        return None
