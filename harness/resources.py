"""Where the files the harness ships beside its code are: scenarios, compose files, the
Locust side, all in `harness/shipped/`.

Everything here is read through `importlib.resources`, so a run finds it wherever the
package is installed (a wheel in any virtual environment, or this checkout, whose
top-level `scenarios/`, `compose/` and `locustfile.py` are links into this folder).
Tools that need a real path (Locust's `-f`, `docker compose --file`, a build context)
get one: a wheel installs these files on disk; a zipped install is refused with a line
saying so, never half-read.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from .errors import RunError


class ShippedFileError(RunError):
    """A shipped file is not on the file system (a zipped install)."""


def shipped(*parts: str) -> Traversable:
    """A file or folder shipped in the package, e.g. `shipped("scenarios", "incident.toml")`."""
    return files("harness.shipped").joinpath(*parts)


def on_disk(*parts: str) -> Path:
    """The real path of a shipped file or folder, for tools that open it themselves."""
    resource = shipped(*parts)
    path = Path(str(resource))
    if not path.exists():
        raise ShippedFileError(
            f"{'/'.join(parts)} is not on the file system ({resource!r}): install "
            "stagger-harness as a wheel (pip, uv, pipx), not zipped"
        )
    return path


def scenario_dir() -> Traversable:
    return shipped("scenarios")


def locustfile() -> Path:
    """The Locust users (`locust -f` this): webhook traffic and delivery figures."""
    return on_disk("locust", "locustfile.py")


def compose_dir() -> Path:
    """The compose files and Dockerfiles of `--backend compose`."""
    return on_disk("compose")
