"""Scenario files: finding one by name or path, reading it, and refusing what cannot run.

Every problem comes back as a `ScenarioError` naming the file, the field and the value,
before anything starts.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..resources import on_disk, scenario_dir
from .base import Scenario
from .errors import ScenarioError, scenario_error


def scenario_path(name_or_path: str) -> Path:
    """A path to a .toml file, or the name of a scenario shipped in scenarios/."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"{path}: no such scenario file")
        return path
    if not scenario_dir().joinpath(f"{name_or_path}.toml").is_file():
        raise ScenarioError(
            f"no scenario named {name_or_path!r}; shipped: {', '.join(shipped_names())} "
            "(or give a path to a .toml file)"
        )
    return on_disk("scenarios", f"{name_or_path}.toml")


def shipped_names() -> list[str]:
    """The scenarios shipped with the harness, by name."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in scenario_dir().iterdir()
        if entry.name.endswith(".toml")
    )


# `harness init` marks what it could not tell with this; such a file is not run as it is.
UNFILLED_MARK = "FILL IN (harness init)"


def parse_scenario(text: str, source: str) -> Scenario:
    """Validate TOML text; every problem is named with `source`, the field and the value."""
    unfilled = [n for n, line in enumerate(text.splitlines(), 1) if UNFILLED_MARK in line]
    if unfilled:
        lines = ", ".join(f"{source}:{n + 1}" for n in unfilled)
        raise ScenarioError(
            f"{source}: still marked '{UNFILLED_MARK}': fill in {lines} and delete each mark"
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    return validate_scenario(data, source)


def validate_scenario(data: dict[str, Any], source: str) -> Scenario:
    """A scenario from parsed TOML; every problem is named with `source` and the field."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise scenario_error(exc, source, data) from None
    scenario._source = source
    return scenario


def load_scenario(name_or_path: str) -> tuple[Scenario, str]:
    """The scenario and its file's text (kept verbatim with the results)."""
    path = scenario_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc}") from None
    return with_workdirs(parse_scenario(text, str(path)), path.resolve().parent), text


def with_workdirs(scenario: Scenario, directory: Path) -> Scenario:
    """External lanes' paths (`cwd`, a build's context, a compose file), relative to the
    scenario's file, made absolute."""

    def absolute(path: str) -> str:
        return path if Path(path).is_absolute() else str((directory / path).resolve())

    lanes = []
    for lane in scenario.lanes:
        external = lane.external
        if external is not None:
            update: dict[str, object] = {}
            if external.cwd is not None and not external.in_containers:
                update["cwd"] = absolute(external.cwd)  # in a container: the image's path
            if external.build is not None:
                context = absolute(external.build.context)
                update["build"] = external.build.model_copy(update={"context": context})
            if external.compose is not None:
                file = absolute(external.compose.file)
                update["compose"] = external.compose.model_copy(update={"file": file})
            if update:
                lane = lane.model_copy(update={"external": external.model_copy(update=update)})
        lanes.append(lane)
    return scenario.model_copy(update={"lanes": lanes})
