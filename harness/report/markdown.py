"""report.md: a summary to paste into an issue or a pull request.

GitHub-flavoured Markdown: the comparison table, each lane's verdict and reasons, the
plots as links to the SVG files beside it (`plots/`; GitHub renders them, a pasted
copy shows the text), the scenario as run and the versions, folded away.
"""

from __future__ import annotations

import json
import re

from ..load.figures import LoadResult
from .data import LATENESS_PLOT, LOAD_PLOT, Report
from .load import LOAD_COLUMNS, LOAD_NOTE, load_facts, load_rows
from .text import (
    COLUMNS,
    LANE_ENV_COLUMNS,
    LANE_ENV_NOTE,
    PLOTS_NOTE,
    TABLE_NOTE,
    cells,
    expected,
    facts,
    headline,
    lane_versions,
    ledger_line,
    verdict,
)

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def escape(text: str) -> str:
    """Text from files (descriptions, reasons) shown as written, never as markup."""
    return _SPECIAL.sub(r"\\\1", text)


def _fenced(text: str, language: str) -> str:
    """A code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _folded(summary: str, body: str) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", body, "", "</details>", ""]


def render_markdown(report: Report, plots_dir: str) -> str:
    """The report, linking its plots as `plots_dir/<name>.svg` (relative to report.md)."""
    results = report.results
    out = [f"# {escape(results.scenario)}: {escape(headline(report))}", ""]
    out += [f"- **{label}**: {escape(value)}" for label, value in facts(report)]
    out += ["", "## Comparison", ""]
    out.append("| " + " | ".join(heading for heading, _ in COLUMNS) + " |")
    out.append("|" + "|".join("---:" if align == "r" else "---" for _, align in COLUMNS) + "|")
    for lane in report.lanes:
        out.append("| " + " | ".join(escape(cell) for cell in cells(lane)) + " |")
    out += ["", f"_{escape(TABLE_NOTE)}_", "", "## Verdicts", ""]
    for lane in report.lanes:
        out += [f"### {escape(lane.name)}: {verdict(lane)}, expected {expected(lane)}", ""]
        if lane.why:
            out += [f"_{escape(lane.why)}_", ""]
        if lane.result.mismatch and results.complete:
            out += [f"**NOT AS EXPECTED: {escape(lane.result.mismatch)}**", ""]
        out += [f"- {escape(ledger_line(lane))}"]
        out += [f"- {escape(reason)}" for reason in lane.result.reasons] or ["- every check passed"]
        out.append("")
    if results.load is not None:
        out += _load_section(results.load, plots_dir)
    out += ["## Plots", "", escape(PLOTS_NOTE), ""]
    out += [f"![lateness per lane]({plots_dir}/{LATENESS_PLOT})", ""]
    for lane in report.lanes:
        out += [f"![{escape(lane.name)}: timeline]({plots_dir}/{lane.plot})", ""]
    out += ["## Scenario as run", ""]
    if report.scenario_text is not None:
        out += _folded("scenario.toml, as written", _fenced(report.scenario_text, "toml"))
    as_run = json.dumps(results.scenario_definition, indent=2)
    out += _folded("as run: lanes picked, durations scaled", _fenced(as_run, "json"))
    out += ["## Versions", "", "| component | version |", "|---|---|"]
    out += [f"| {escape(k)} | {escape(v)} |" for k, v in results.versions.items()]
    out += ["", escape(LANE_ENV_NOTE), ""]
    out.append("| " + " | ".join(LANE_ENV_COLUMNS) + " |")
    out.append("|" + "---|" * len(LANE_ENV_COLUMNS))
    out += [
        "| " + " | ".join(escape(c) for c in lane_versions(lane)) + " |" for lane in report.lanes
    ]
    return "\n".join(out) + "\n"


def _load_section(load: LoadResult, plots_dir: str) -> list[str]:
    out = ["## Load", ""]
    out += [f"- {escape(fact)}" for fact in load_facts(load)]
    out += ["", "| " + " | ".join(heading for heading, _ in LOAD_COLUMNS) + " |"]
    out.append("|" + "|".join("---:" if align == "r" else "---" for _, align in LOAD_COLUMNS) + "|")
    out += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in load_rows(load)]
    out += ["", f"_{escape(LOAD_NOTE)}_", ""]
    out += [f"![load and lateness over time]({plots_dir}/{LOAD_PLOT})", ""]
    return out
