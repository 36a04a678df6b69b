"""Python environments for lanes that run another Celery release, made with uv and cached.

A lane that pins versions (`celery = "5.3.6"`, optionally `kombu`, `redis`, ...) runs
its webhook and worker from an environment holding the installed harness's own
requirements (its distribution's metadata, wherever it is installed) with exactly those
versions (uv's overrides: a pin wins over the harness's own bounds). The bot's code
comes from the running harness itself, through a folder that links only its packages
(`code_path`), put on PYTHONPATH: never the harness's environment, whose Celery would
shadow the pinned one. Environments live under ~/.cache/stagger-harness/envs/<hash>
(or $STAGGER_ENV_CACHE), the hash covering the pins, the Python version and the
harness's requirements. Each is built in a temporary directory and renamed into
place only once complete, so a failed or interrupted build leaves nothing in the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
from importlib import metadata
from importlib.resources import files
from pathlib import Path

from packaging.requirements import Requirement

from ..errors import InputError

DISTRIBUTION = "stagger-harness"
# The packages a lane with its own environment imports from the running harness.
PACKAGES = ("harness", "mock_meta_api")
CACHE_VARIABLE = "STAGGER_ENV_CACHE"
BUILD_TIMEOUT_S = 900.0  # a cold build downloads Celery and friends once
FORMAT = 2  # bump when the way environments are built changes


class EnvError(InputError):
    """An environment that cannot be made; the message names the lane and its pins."""


def cache_dir() -> Path:
    override = os.environ.get(CACHE_VARIABLE)
    return Path(override) if override else Path.home() / ".cache" / "stagger-harness" / "envs"


def project_requirements() -> list[str]:
    """The installed harness's own requirements (no extras), from its metadata."""
    requirements = [Requirement(text) for text in metadata.requires(DISTRIBUTION) or []]
    return sorted(
        str(requirement)
        for requirement in requirements
        if requirement.marker is None or "extra" not in str(requirement.marker)
    )


def code_path() -> Path:
    """A folder holding links to the running harness's packages, for a lane's PYTHONPATH.

    One per place the harness is installed (a checkout, or a wheel in any environment),
    made once and renamed into place whole.
    """
    sources = {name: Path(str(files(name))).resolve() for name in PACKAGES}
    key = hashlib.sha256(json.dumps({k: str(v) for k, v in sources.items()}).encode())
    final = cache_dir() / "code" / key.hexdigest()[:16]
    if all((final / name).exists() for name in PACKAGES):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    building = final.parent / f".{final.name}.{secrets.token_hex(4)}.building"
    building.mkdir()
    try:
        for name, source in sources.items():
            (building / name).symlink_to(source, target_is_directory=True)
        try:
            building.rename(final)
        except OSError:
            if not all((final / name).exists() for name in PACKAGES):
                raise
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return final


def describe_pins(pins: dict[str, str]) -> str:
    return ", ".join(f"{name} = {version!r}" for name, version in sorted(pins.items()))


def env_key(pins: dict[str, str]) -> str:
    """Stable for the same pins, Python and dependency list; anything else, a new env."""
    identity = {
        "format": FORMAT,
        "python": [platform.python_implementation(), platform.python_version()],
        "pins": sorted(pins.items()),
        "requirements": project_requirements(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def python_of(env: Path) -> Path:
    return env / "bin" / "python"


def uv_command() -> list[str]:
    """uv as `uv run` named it, else on PATH, else the module next to this interpreter."""
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )


def ensure_env(pins: dict[str, str], lane: str) -> Path:
    """The interpreter of an environment for `pins`, built now if the cache lacks it."""
    root = cache_dir()
    final = root / env_key(pins)
    if python_of(final).exists():
        return python_of(final)
    root.mkdir(parents=True, exist_ok=True)
    building = root / f".{final.name}.{secrets.token_hex(4)}.building"
    try:
        _build(building, pins, lane)
        try:
            building.rename(final)  # atomic: the cache holds a whole environment or none
        except OSError:
            if not python_of(final).exists():  # not a rival build that finished first
                raise
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return python_of(final)


def _build(path: Path, pins: dict[str, str], lane: str) -> None:
    failure = f"lane {lane}: {describe_pins(pins)} cannot be installed"
    made = _run(
        [*uv_command(), "venv", "--quiet", "--relocatable", "--python", sys.executable, str(path)],
        path.parent,
    )
    if made.returncode != 0:
        raise EnvError(f"{failure}: uv venv: {_last_lines(made.stderr)}")
    requirements = path / "stagger-requirements.txt"
    overrides = path / "stagger-overrides.txt"
    requirements.write_text("\n".join(project_requirements()) + "\n")
    extras = {"celery": "[redis]"}  # the bot's broker and store need Celery's Redis extra
    overrides.write_text(
        "".join(f"{name}{extras.get(name, '')}=={version}\n" for name, version in pins.items())
    )
    installed = _run(
        [
            *uv_command(),
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",
            "--python",
            str(python_of(path)),
            "--requirement",
            str(requirements),
            "--override",
            str(overrides),
        ],
        path.parent,
    )
    if installed.returncode != 0:
        raise EnvError(f"{failure}: {_last_lines(installed.stderr)}")
    (path / "stagger-env.json").write_text(json.dumps({"pins": pins}, indent=2) + "\n")


def _last_lines(text: str, count: int = 6) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "(no output)"
