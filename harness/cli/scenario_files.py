"""`harness scenarios` lists the scenarios, or checks files without running them;
`harness schema` prints the JSON Schema a scenario file meets."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..scenario import (
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_json_schema,
    shipped_names,
)
from ..tables import scenarios_table
from .exits import EXIT_INPUT
from .output import console, say


def scenarios(
    files: Annotated[
        list[str] | None,
        typer.Argument(help="Scenario files or names to check; default: the shipped ones."),
    ] = None,
    time_scale: Annotated[
        float | None, typer.Option(help="Also check that this time scale is accepted.")
    ] = None,
) -> None:
    """List scenarios with their lanes; given files, check them without running anything."""
    found: list[Scenario] = []
    errors = 0
    for name in files or shipped_names():
        try:  # each file is said and counted, the others still checked
            scenario = load_scenario(name)[0]
            scenario.scaled(time_scale)
            found.append(scenario)
        except ScenarioError as exc:
            say(str(exc), "red")
            errors += 1
    if found:
        console.print(scenarios_table(found))
    if errors:
        raise typer.Exit(EXIT_INPUT)


def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of a scenario file, read as JSON: for editors
    and validators (`harness schema > scenario.schema.json`)."""
    print(json.dumps(scenario_json_schema(), indent=2))  # plain: no Rich markup nor wrapping
