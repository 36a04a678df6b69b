"""The zoo's entries: the shipped scenarios under `scenarios/zoo/`, each with a `[zoo]`
table, found by the table's id."""

from __future__ import annotations

from pathlib import Path

from ..resources import on_disk
from .base import Scenario
from .errors import ScenarioError
from .files import load_scenario

ZOO_DIR = "zoo"


def zoo_paths() -> list[Path]:
    """The zoo's scenario files, by file name."""
    return sorted(on_disk("scenarios", ZOO_DIR).glob("*.toml"))


def zoo_entries() -> list[tuple[Scenario, Path]]:
    """Every entry, read and checked: each file has a `[zoo]` table, each id is its own."""
    entries: list[tuple[Scenario, Path]] = []
    seen: dict[str, Path] = {}
    for path in zoo_paths():
        scenario = load_scenario(str(path))[0]
        if scenario.zoo is None:
            raise ScenarioError(f"{path}: a zoo scenario needs a [zoo] table")
        if scenario.zoo.id in seen:
            raise ScenarioError(
                f"{path}: zoo id {scenario.zoo.id!r} is already {seen[scenario.zoo.id]}'s"
            )
        seen[scenario.zoo.id] = path
        entries.append((scenario, path))
    return entries


def zoo_entry(entry_id: str) -> Path:
    """The scenario file of the entry `entry_id`."""
    entries = zoo_entries()
    for scenario, path in entries:
        if scenario.zoo is not None and scenario.zoo.id == entry_id:
            return path
    known = ", ".join(s.zoo.id for s, _ in entries if s.zoo is not None)
    raise ScenarioError(f"no zoo entry {entry_id!r}; entries: {known}")
