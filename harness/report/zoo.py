"""The zoo report: one table of bug x lane (release, pool, broker) -> reproduced, fixed or
not reproduced, from the runs of zoo entries, each cell linking its run's own report.

Each run is read from its directory (results.json, and scenario.toml for the `[zoo]`
table as written, whatever lanes the run picked), its report drawn again beside the zoo
report (`<entry id>/report.md` and `.html`), so the zoo report and the runs it cites are
one directory that can be committed or moved as a whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import InputError
from ..results import LaneResult, Results, read_results, write_atomic
from ..scenario import LaneScenario, ScenarioError, Zoo, parse_scenario
from ..scenario.zoo import tracker_label
from . import REPORT_HTML, REPORT_MD, write_reports
from .render import render

ZOO_MD = "zoo.md"
ZOO_HTML = "zoo.html"
Outcome = Literal["reproduced", "not reproduced", "fixed", "not fixed", "incomplete"]


class ZooReportError(InputError):
    """A run given to the zoo report is not a zoo entry's run."""


@dataclass(frozen=True)
class ZooCell:
    """One lane of one entry's run, as the zoo table shows it."""

    entry: Zoo
    lane: str
    role: Literal["bug", "fix"]
    release: str
    pool: str
    broker: str
    outcome: Outcome
    reasons: list[str]
    link: str  # the run's report directory, relative to the zoo report
    setup: str  # the lane as its scenario set it up, but for its releases (see setup_of)

    @property
    def links(self) -> list[tuple[str, str]]:
        """The entry's trackers, (short label, URL) each."""
        return [(tracker_label(url), url) for url in self.entry.trackers]

    @property
    def trackers(self) -> str:
        return ", ".join(label for label, _ in self.links)


def lane_outcome(zoo: Zoo, result: LaneResult, complete: bool) -> Outcome:
    """A bug lane reproduces the bug when it fails with all the bug's reasons; a fix lane
    shows the fix when it passes, or fails for none of them."""
    if not complete:
        return "incomplete"
    showed = result.verdict == "fail" and all(code in result.reason_codes for code in zoo.reasons)
    shared = any(code in result.reason_codes for code in zoo.reasons)
    if zoo.role(result.lane) == "bug":
        return "reproduced" if showed else "not reproduced"
    return "not fixed" if shared else "fixed"


def release_of(result: LaneResult) -> str:
    """The releases the lane's worker ran, as it reported them at start-up."""
    said = [f"{name} {result.versions[name]}" for name in ("celery", "kombu", "redis")]
    extra = [f"{name} {v}" for name, v in result.pins.items() if name not in ("celery", "kombu")]
    return ", ".join(dict.fromkeys(said + extra)) if result.versions else "?"


# What a lane's releases are, and what it expects: the rest is its setup.
_NOT_SETUP = {"name", "celery", "kombu", "packages", "expect", "because", "or_because", "why"}


def setup_of(lane: LaneScenario) -> str:
    """The lane's pool, broker, concurrency, settings, ... but not its releases: two lanes
    with the same setup differ only in what they run on."""
    return json.dumps(lane.model_dump(mode="json", exclude=_NOT_SETUP), sort_keys=True)


def _zoo_of(run_dir: Path) -> tuple[Zoo, Results, dict[str, str]]:
    results = read_results(run_dir)
    source = run_dir / "scenario.toml"
    try:
        scenario = parse_scenario(source.read_text(encoding="utf-8"), str(source))
    except (OSError, ScenarioError) as exc:
        raise ZooReportError(f"{run_dir}: no zoo scenario to read: {exc}") from None
    if scenario.zoo is None:
        raise ZooReportError(f"{run_dir}: {results.scenario} is not a zoo entry (no [zoo] table)")
    return scenario.zoo, results, {lane.name: setup_of(lane) for lane in scenario.lanes}


def zoo_cells(run_dirs: list[Path], out: Path) -> list[ZooCell]:
    """Every bug and fix lane of every run, its run's report drawn again under `out`."""
    cells: list[ZooCell] = []
    taken: set[str] = set()
    for run_dir in run_dirs:
        zoo, results, setups = _zoo_of(run_dir)
        link, n = zoo.id, 1
        while link in taken:
            n += 1
            link = f"{zoo.id}-{n}"
        taken.add(link)
        write_reports(run_dir, out / link)
        for result in results.lanes:
            role = zoo.role(result.lane)
            if role is None:
                continue
            cells.append(
                ZooCell(
                    entry=zoo,
                    lane=result.lane,
                    role=role,
                    release=release_of(result),
                    pool=result.pool,
                    broker=result.broker,
                    outcome=lane_outcome(zoo, result, results.complete),
                    reasons=result.reason_codes,
                    link=link,
                    setup=setups[result.lane],
                )
            )
    return cells


@dataclass(frozen=True)
class ZooSummary:
    """What the table's runs show, by run (each named by its link): which reproduced the
    bug on a lane, and which of those show a release without it beside it."""

    reproduced: list[str]
    release_pairs: list[str]
    not_reproduced: list[str]


def _release_pair(cells: list[ZooCell]) -> bool:
    """A lane that reproduced the bug beside one that showed it fixed on another release,
    set up alike (pool, broker, settings, faults' lane ...): the fix is the release, not a
    setting."""
    return any(
        bug.release != fix.release and bug.setup == fix.setup
        for bug in cells
        if bug.role == "bug" and bug.outcome == "reproduced"
        for fix in cells
        if fix.role == "fix" and fix.outcome == "fixed"
    )


def zoo_summary(cells: list[ZooCell]) -> ZooSummary:
    """Each run's cells, said as one of reproduced (and a release pair) or not."""
    by_run: dict[str, list[ZooCell]] = {}
    for cell in cells:
        by_run.setdefault(cell.link, []).append(cell)
    reproduced = [
        link for link, own in by_run.items() if any(c.outcome == "reproduced" for c in own)
    ]
    return ZooSummary(
        reproduced=reproduced,
        release_pairs=[link for link in reproduced if _release_pair(by_run[link])],
        not_reproduced=[link for link in by_run if link not in reproduced],
    )


def write_zoo_report(run_dirs: list[Path], out: Path) -> tuple[Path, Path]:
    """zoo.md and zoo.html in `out`, with each run's report beside them."""
    if not run_dirs:
        raise ZooReportError("give at least one run directory of a zoo entry")
    out.mkdir(parents=True, exist_ok=True)
    cells = zoo_cells(run_dirs, out)
    context = {
        "cells": cells,
        "summary": zoo_summary(cells),
        "report_md": REPORT_MD,
        "report_html": REPORT_HTML,
    }
    markdown, html = out / ZOO_MD, out / ZOO_HTML
    write_atomic(markdown, render("zoo.md", **context))
    write_atomic(html, render("zoo.html", **context))
    return markdown, html
