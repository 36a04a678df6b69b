"""What a run's report templates show, gathered once for report.md and report.html alike."""

from __future__ import annotations

import json
from typing import Any

from .data import LATENESS_PLOT, LOAD_PLOT, Report
from .load import LOAD_COLUMNS, LOAD_NOTE, load_facts, load_rows
from .text import (
    COLUMNS,
    EXPECTED_COLUMN,
    LANE_ENV_COLUMNS,
    LANE_ENV_NOTE,
    PLOTS_NOTE,
    TABLE_NOTE,
    VERDICT_COLUMN,
    cells,
    expected,
    facts,
    headline,
    lane_versions,
    ledger_line,
    verdict,
)


def run_view(report: Report) -> dict[str, Any]:
    """The templates' context: figures and words from `text` and `load`, and the helpers
    that say a lane's verdict, expectation and ledger."""
    results = report.results
    load = results.load
    return {
        "results": results,
        "lanes": report.lanes,
        "headline": headline(report),
        "facts": facts(report),
        "columns": COLUMNS,
        "comparison": [(lane, cells(lane)) for lane in report.lanes],
        "verdict_column": VERDICT_COLUMN,
        "expected_column": EXPECTED_COLUMN,
        "table_note": TABLE_NOTE,
        "verdict": verdict,
        "expected": expected,
        "ledger_line": ledger_line,
        "load": load,
        "load_facts": [] if load is None else load_facts(load),
        "load_columns": LOAD_COLUMNS,
        "load_rows": [] if load is None else load_rows(load),
        "load_note": LOAD_NOTE,
        "load_plot": LOAD_PLOT,
        "lateness_plot": LATENESS_PLOT,
        "plots_note": PLOTS_NOTE,
        "scenario_text": report.scenario_text,
        "as_run": json.dumps(results.scenario_definition, indent=2),
        "versions": list(results.versions.items()),
        "lane_env_note": LANE_ENV_NOTE,
        "lane_env_columns": [(heading, "l") for heading in LANE_ENV_COLUMNS],
        "lane_env_rows": [lane_versions(lane) for lane in report.lanes],
    }
