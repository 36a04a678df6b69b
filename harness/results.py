"""The run directory's files and `results.json`, the stable contract for machines.

`results.json` holds the figures and verdict of each lane (`LaneResult`, made by
harness.verdict), the scenario as run (scaled) and its time scale, the faults done
(`FaultRecord`) and the versions of every component. `history.jsonl` holds one
`MessageHistory` per line, then one line per fault, so `harness check` can judge a
stored run again with `recheck`. Fields are only ever added within a schema version.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from mock_meta_api.config import describe_validation_error

from .errors import InputError
from .fault_record import FaultRecord
from .history import History, MessageHistory, parse_line
from .load.figures import LoadResult
from .scenario import Scenario

# The verdict's names, also where results.json's readers have always found them.
from .verdict import BrokerServer as BrokerServer
from .verdict import LaneResult, judge_again, run_as_expected
from .verdict import LedgerCounts as LedgerCounts
from .verdict import judge as judge
from .verdict import lane_result as lane_result
from .verdict import load_requests as load_requests

# 2 added `harness_version`, `command`, and per lane `backend` and `broker_server`;
# version 1 files are still read (those fields None).
SCHEMA_VERSION = 2
RESULTS = "results.json"
HISTORY = "history.jsonl"
PACKAGES = ("celery", "kombu", "gevent", "redis", "httpx", "stagger-harness")


class Results(BaseModel):
    """What `results.json` holds."""

    schema_version: Literal[1, 2] = SCHEMA_VERSION
    harness_version: str | None = Field(
        default=None, description="stagger-harness's own version (absent before schema 2)."
    )
    command: str | None = Field(
        default=None, description="The command line that made the run, when the CLI did."
    )
    scenario: str
    description: str
    time_scale: float
    complete: bool = Field(description="False when the run was interrupted: figures are partial.")
    as_expected: bool = Field(
        description="Every lane reached the verdict its scenario expects; every fault was done."
    )
    started_at: float
    finished_at: float
    stack_start_s: float | None
    trigger_at: float | None = Field(description="When the first request was posted (epoch s).")
    verdict_at: float | None = Field(
        default=None, description="When every lane had settled, or the deadline passed."
    )
    versions: dict[str, str]
    lanes: list[LaneResult]
    trigger_errors: list[str] = Field(default_factory=list)
    faults: list[FaultRecord] = Field(default_factory=list)
    scenario_definition: dict[str, Any] = Field(
        description="The scenario as run: its lanes, with every duration already scaled."
    )
    load: LoadResult | None = Field(
        default=None, description="A load test's figures per lane (scenarios with [load])."
    )


class ResultsError(InputError):
    """Stored results that cannot be read; the message names the file and what is wrong."""


def harness_version() -> str:
    """The installed stagger-harness's version, as results.json records it."""
    try:
        return metadata.version("stagger-harness")
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(broker: str | None) -> dict[str, str]:
    """Python, Celery, kombu, gevent, redis-py, httpx, the harness and the broker.

    Read from package metadata: the harness process never imports gevent.
    """
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["broker"] = broker or "unknown"
    return found


# -- files ---------------------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def write_results(run_dir: Path, results: Results) -> Path:
    path = run_dir / RESULTS
    write_atomic(path, results.model_dump_json(indent=2) + "\n")
    return path


def write_jsonl(path: Path, rows: list[Any]) -> None:
    lines = [
        row.model_dump_json() if isinstance(row, BaseModel) else json.dumps(row) for row in rows
    ]
    write_atomic(path, "".join(line + "\n" for line in lines))


def results_path(path: Path) -> Path:
    """A run directory or its results.json."""
    return path / RESULTS if path.is_dir() else path


def read_results(path: Path) -> Results:
    file = results_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"{file}: cannot read results: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return Results.model_validate_json(text)
    except ValidationError as exc:
        raise ResultsError(describe_validation_error(exc, str(file))) from None


def read_history(run_dir: Path) -> dict[str, list[MessageHistory]]:
    """Each lane's messages in the run directory's history.jsonl."""
    return read_run_history(run_dir).messages


def read_run_history(run_dir: Path) -> History:
    """history.jsonl: each lane's messages, and the faults (none in runs stored before)."""
    file = run_dir / HISTORY
    history = History()
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ResultsError(f"{file}: cannot read the history: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(lines, start=1):
        try:
            history.add(parse_line(line))
        except ValidationError as exc:
            raise ResultsError(describe_validation_error(exc, f"{file}:{number}")) from None
    return history


def recheck(path: Path) -> tuple[Results, Results]:
    """The stored results, and the same run judged again from its stored history."""
    stored = read_results(path)
    run_dir = results_path(path).parent
    try:
        scenario = Scenario.model_validate(stored.scenario_definition)
    except ValidationError as exc:
        source = f"{results_path(path)}: scenario_definition"
        raise ResultsError(describe_validation_error(exc, source)) from None
    lanes = judge_again(scenario, read_history(run_dir), stored.lanes, stored.load)
    again = stored.model_copy(
        update={
            "lanes": lanes,
            "as_expected": run_as_expected(stored.complete, lanes, stored.faults, stored.load),
        }
    )
    return stored, again
