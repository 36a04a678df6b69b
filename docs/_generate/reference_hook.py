"""MkDocs hook: fills each `<!-- generated: NAME -->` line of a page from the code.

The reference pages hold their prose by hand and their tables from the code itself (the
Typer apps, the pydantic models' JSON Schema, the mock's OpenAPI document, the error
classes, pyproject.toml), so a reference cannot name an option, a field or a route the
code no longer has. A marker naming no generator fails the build.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ref_cli import cli_reference
from ref_misc import (
    error_tree,
    fault_actions_table,
    markers_table,
    plugin_options_table,
)
from ref_openapi import openapi_reference
from ref_schema import models_reference

import harness.cli
import harness.pytest_plugin
import mock_meta_api.cli
from harness.capacity.results import CapacityResults
from harness.errors import HarnessError
from harness.results import Results
from harness.scenario import scenario_json_schema
from mock_meta_api import MockConfig, create_app

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)
TIMINGS = "../development/test-sets.md"


def exit_statuses() -> str:
    """The statuses the command line exits with, by the constants it exits with."""
    cli = harness.cli
    rows = [
        (0, "every lane reached the verdict its scenario expects, every fault was done"),
        (
            cli.EXIT_DIFFERS,
            "a lane did not (or a fault could not be done, or a load bound was passed)",
        ),
        (
            cli.EXIT_INPUT,
            "a `HarnessError` (below): bad input, or a run that could not be done (`error.txt` "
            "in the run directory holds the traceback of a run that failed mid-way)",
        ),
        (
            cli.EXIT_LEFT,
            "a process or container the command started was still running at its end: the "
            "last line names each, with its PID",
        ),
        (
            cli.EXIT_INTERRUPTED,
            "interrupted (Ctrl-C, SIGTERM): every process stopped, the partial results "
            'written (`"complete": false`)',
        ),
    ]
    return "\n".join(
        ["| status | meaning |", "|---|---|", *(f"| {code} | {text} |" for code, text in rows)]
    )


GENERATORS: dict[str, Callable[[], str]] = {
    "cli-harness": lambda: cli_reference(harness.cli.app, "harness"),
    "cli-mock": lambda: cli_reference(mock_meta_api.cli.cli, "mock-meta-api", level=3),
    "scenario": lambda: models_reference(scenario_json_schema(), "Scenario", level=3),
    "fault-actions": lambda: fault_actions_table(scenario_json_schema()),
    "results": lambda: models_reference(
        Results.model_json_schema(), "Results", level=3, show_places=False
    ),
    "capacity-results": lambda: models_reference(
        CapacityResults.model_json_schema(),
        "CapacityResults",
        level=4,
        show_places=False,
        prefix="capacity-",
    ),
    "mock-openapi": lambda: openapi_reference(create_app(MockConfig()).openapi(), level=3),
    "mock-config": lambda: models_reference(
        MockConfig.model_json_schema(), "MockConfig", level=3, show_places=False, prefix="config-"
    ),
    "exit-statuses": exit_statuses,
    "errors": lambda: error_tree(HarnessError),
    "markers": lambda: markers_table(ROOT, TIMINGS),
    "plugin-options": lambda: plugin_options_table(harness.pytest_plugin.pytest_addoption),
    "plugin-marker": lambda: f"```\n{harness.pytest_plugin.MARKER}\n```",
}


def generated(name: str) -> str:
    if name not in GENERATORS:
        raise KeyError(f"no generator {name!r}; known: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name]()


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda m: generated(m[1]), markdown)
