"""The compose set: a Docker engine (started here when none answers, stopped if started
here) and the offline images, built once per session by `harness images`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from harness.processes import start_server
from harness.stack.compose import PROJECT_LABEL

DOCKERD_READY = re.compile(r"API listen on")
DOCKERD_START_S = 60.0
# The images this set runs: the tags `harness images` builds with no registry.
OFFLINE_IMAGES = {
    "STAGGER_IMAGE": "stagger/harness:local",
    "BROKER_IMAGE": "stagger/redis:bookworm",
    "BASE_IMAGE": "stagger/debian:bookworm",
}
BUILD_TIMEOUT_S = 900  # a first build: debootstrap, apt-get in two builds, the wheels


def _engine_answers() -> bool:
    try:
        client = docker.from_env(timeout=5)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except docker.errors.DockerException:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[docker.DockerClient]:
    """The engine that answers; else a dockerd started here (and stopped at the end)."""
    daemon = None
    if not _engine_answers():
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            pytest.fail("no Docker engine answers, and no dockerd: apt-get install docker.io")
        log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
        daemon = start_server([dockerd], DOCKERD_READY, timeout_s=DOCKERD_START_S, log_path=log)
    client = docker.from_env(timeout=60)
    try:
        yield client
    finally:
        client.close()
        if daemon is not None:
            daemon.stop(grace_s=30.0)


@pytest.fixture(scope="session")
def offline_images(docker_engine: docker.DockerClient) -> Iterator[dict[str, str]]:
    """`harness images` (present images are kept; the project image is rebuilt from the
    build cache), and the environment pointing runs at those images. STAGGER_IMAGE,
    BROKER_IMAGE and BASE_IMAGE, when set, choose other tags (two checkouts on one engine)."""
    wanted = {name: os.environ.get(name) or tag for name, tag in OFFLINE_IMAGES.items()}
    started = time.monotonic()
    build = subprocess.run(
        [sys.executable, "-m", "harness", "images"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        env={**os.environ, **wanted},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    print(f"images built in {time.monotonic() - started:.0f} s:\n{build.stdout}")
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield dict(wanted)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stagger_containers(client: docker.DockerClient, project: str | None = None) -> list[str]:
    """Names of the containers of one compose project (or of any stagger-* project)."""
    found = client.containers.list(all=True, filters={"label": PROJECT_LABEL})
    return [
        container.name
        for container in found
        if (project is None and container.labels[PROJECT_LABEL].startswith("stagger-"))
        or container.labels[PROJECT_LABEL] == project
    ]


def stagger_networks(client: docker.DockerClient, project: str) -> list[str]:
    return [
        network.name
        for network in client.networks.list(filters={"label": f"{PROJECT_LABEL}={project}"})
    ]


def run_dir_project(run_dir: Path) -> str:
    """The compose project a run wrote down in its run directory."""
    return (run_dir / "compose-project.txt").read_text().splitlines()[0]
