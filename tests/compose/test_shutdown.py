"""Compose runs under `uv run`, signalled as CI runners do: containers counted after.

SIGTERM to the group during `compose up` and once the stack is healthy: the harness's
own teardown removes the project (its reaper finds nothing). SIGKILL to the harness: its
reaper removes the project. The harness and its reaper both SIGKILLed (a whole cgroup
killed): the next compose run removes what was left, by the owner label, and says so.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import psutil
import pytest

from harness.reaper import LOG as REAPER_LOG
from tests.shutdown.trials import EXIT_S, STOPPED, Command, clean_up

from .conftest import run_dir_project, stagger_containers, stagger_networks

pytestmark = [pytest.mark.compose, pytest.mark.shutdown, pytest.mark.timeout(900)]

REMOVE_S = 60.0  # a killed run's containers removed by the reaper (force, in turn)


@pytest.fixture(autouse=True)
def _nothing_left() -> Iterator[None]:
    yield
    clean_up()


def compose_run(run_dir: Path) -> Command:
    """The incident on one lane at full length (42 s of schedule): time to signal it."""
    return Command(
        ["harness", "run", "incident", "-p", "solo", "--backend", "compose", "--out", str(run_dir)]
    )


def project_of(run_dir: Path) -> str | None:
    return run_dir_project(run_dir) if (run_dir / "compose-project.txt").exists() else None


def healthy(client: docker.DockerClient, run_dir: Path) -> bool:
    project = project_of(run_dir)
    if project is None:
        return False
    label = {"label": f"com.docker.compose.project={project}"}
    for container in client.containers.list(filters=label):
        if container.labels.get("com.docker.compose.service") == "worker-solo":
            return container.attrs["State"].get("Health", {}).get("Status") == "healthy"
    return False


def counted(client: docker.DockerClient, run_dir: Path) -> Callable[[], list[str]]:
    def left() -> list[str]:
        project = project_of(run_dir)
        if project is None:
            return []
        return stagger_containers(client, project) + stagger_networks(client, project)

    return left


MOMENTS: dict[str, Callable[[docker.DockerClient, Path], bool]] = {
    "compose up under way": lambda _client, run_dir: project_of(run_dir) is not None,
    "stack healthy": healthy,
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigterm_to_the_group_removes_the_project(
    docker_engine: docker.DockerClient,
    offline_images: dict[str, str],
    tmp_path: Path,
    moment: str,
) -> None:
    kind = "compose run, SIGTERM to the group"
    run_dir = tmp_path / "run"
    command = compose_run(run_dir)
    command.start(tmp_path / "uv.log", lambda: MOMENTS[moment](docker_engine, run_dir))
    command.signal_group(signal.SIGTERM)
    trial = command.finish(kind, moment, counted(docker_engine, run_dir), REMOVE_S)
    output = command.output()
    assert trial.left == [], f"{trial.left}\n{output}"
    assert STOPPED in trial.last_line, output
    assert trial.exit_code == 130, output
    assert not (run_dir / REAPER_LOG).exists(), (run_dir / REAPER_LOG).read_text()


def test_sigkill_to_the_harness_leaves_the_reaper_to_remove_the_project(
    docker_engine: docker.DockerClient, offline_images: dict[str, str], tmp_path: Path
) -> None:
    kind = "compose run, SIGKILL to the harness"
    run_dir = tmp_path / "run"
    command = compose_run(run_dir)
    command.start(tmp_path / "uv.log", lambda: healthy(docker_engine, run_dir))
    harness = command.child("bin/harness")
    assert harness is not None, command.output()
    harness.kill()
    trial = command.finish(kind, "stack healthy", counted(docker_engine, run_dir), REMOVE_S)
    assert trial.left == [], f"{trial.left}\n{command.output()}"
    assert not trial.claimed_stopped
    removed = (run_dir / REAPER_LOG).read_text()
    assert f"the harness (PID {harness.pid}) ended: removing" in removed, removed


def test_the_next_run_removes_what_a_run_killed_with_its_reaper_left(
    docker_engine: docker.DockerClient, offline_images: dict[str, str], tmp_path: Path
) -> None:
    """As when a whole cgroup is killed: the harness and its reaper at once."""
    kind = "compose run, harness and reaper SIGKILLed"
    killed_dir = tmp_path / "killed"
    killed = compose_run(killed_dir)
    killed.start(tmp_path / "killed.log", lambda: healthy(docker_engine, killed_dir))
    for process in psutil.Process(killed.group).children(recursive=True):
        process.kill()  # the harness, its reaper (a child of its own), the docker CLI
    killed.signal_group(signal.SIGKILL)
    project = project_of(killed_dir)
    assert project is not None
    killed.process.popen.wait(timeout=EXIT_S)
    assert stagger_containers(docker_engine, project), "the killed run left its containers"

    next_dir = tmp_path / "next"
    following = compose_run(next_dir)
    following.start(tmp_path / "next.log", lambda: healthy(docker_engine, next_dir))
    following.signal_group(signal.SIGTERM)
    both = [counted(docker_engine, killed_dir), counted(docker_engine, next_dir)]
    trial = following.finish(kind, "next run", lambda: both[0]() + both[1](), REMOVE_S)
    output = following.output()
    said = " ".join(output.split())
    assert f"removed what a killed run left: compose project {project}" in said, output
    assert stagger_containers(docker_engine, project) == []
    assert stagger_networks(docker_engine, project) == []
    assert trial.left == [], f"{trial.left}\n{output}"
    assert STOPPED in trial.last_line, output
