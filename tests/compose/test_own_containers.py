"""A team's own bot in its own containers: the Django example (examples/django-bot) on
`--backend compose`, built offline from its Dockerfile, run from its own compose file.

Two runs, each scenario once: the four pools (the `build` form, the commands of the local
runs), and the incident's topology before and after its fix (the `compose` form: the
example's web, I/O and CPU worker services). Each lane reaches the verdict its local run
reaches (tests/ownbots/test_django_bot.py), and nothing of a run is left on the engine:
after a run, after a start that fails, after bad input. Time scale as the local runs'.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from harness.expect import assert_as_expected, assert_delivered, assert_fails_with
from harness.run import RunOutcome, run_scenario
from harness.scenario import Scenario, load_scenario
from harness.stack.compose_host import PROJECT_LABEL

from .conftest import run_dir_project, stagger_containers

pytestmark = [pytest.mark.compose, pytest.mark.timeout(600)]

DJANGO = Path(__file__).resolve().parents[2] / "examples" / "django-bot"
POOLS = DJANGO / "scenarios" / "django-compose-pools.toml"
INCIDENT = DJANGO / "scenarios" / "django-compose-incident.toml"
SCALE = 0.5  # as the local runs: the on-time bound at a quarter of the time


def _run(path: Path, tmp: Path, client: docker.DockerClient) -> Iterator[RunOutcome]:
    scenario, text = load_scenario(str(path))
    run_dir = tmp / "run"
    started = time.monotonic()
    outcome = run_scenario(scenario.scaled(SCALE), run_dir, source_text=text, backend="compose")
    print(f"{path.name}: {time.monotonic() - started:.0f} s")
    assert_nothing_left(client, run_dir_project(run_dir))
    yield outcome


def assert_nothing_left(client: docker.DockerClient, project: str) -> None:
    label = {"label": f"{PROJECT_LABEL}={project}"}
    assert stagger_containers(client, project) == []
    assert client.networks.list(filters=label) == []
    assert client.volumes.list(filters=label) == []


@pytest.fixture(scope="module")
def pools_run(
    docker_engine: docker.DockerClient,
    offline_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunOutcome]:
    yield from _run(POOLS, tmp_path_factory.mktemp("own-pools"), docker_engine)


@pytest.fixture(scope="module")
def incident_run(
    docker_engine: docker.DockerClient,
    offline_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunOutcome]:
    yield from _run(INCIDENT, tmp_path_factory.mktemp("own-incident"), docker_engine)


@pytest.mark.parametrize("pool", ["solo", "prefork", "threads", "gevent"])
def test_the_django_image_delivers_every_part_on_time_on_every_pool(
    pools_run: RunOutcome, pool: str
) -> None:
    assert_delivered(pools_run, pool)
    history = pools_run.history[pool]
    # Read from Celery's task events, as the local external lanes: received and started.
    assert all(m.received and m.started and m.worker_pids for m in history)


def test_the_incident_compose_file_before_its_fix_receives_every_part_and_runs_none(
    incident_run: RunOutcome,
) -> None:
    assert_as_expected(incident_run, "before")
    assert_fails_with(incident_run, "before", "missing")
    history = incident_run.history["before"]
    assert len(history) == incident_run.scenario.expected_messages
    assert all(m.received is not None and m.started is None for m in history)


def test_the_incident_compose_file_after_its_fix_delivers_every_part(
    incident_run: RunOutcome,
) -> None:
    assert_delivered(incident_run, "after")
    # The lane's worker is the compose file's I/O worker, given the pool on its argv.
    compose = (incident_run.run_dir / "compose.yml").read_text()
    assert "--pool=gevent" in compose
    assert "cpu_heavy" in compose


KILLED = {
    "name": "django-compose-killed",
    "description": "The Django bot's I/O worker container SIGKILLed mid-flow, then another.",
    "flow": {"messages": 6, "spacing_s": 1.0},
    "tolerances": {"on_time_s": 1.0, "missing_after_s": 8.0},
    "lanes": [
        {
            "name": "solo",
            "pool": "solo",
            "expect": "fail",
            "because": ["missing"],
            "external": {
                "compose": {
                    "file": str(DJANGO / "compose.yml"),
                    "webhook": "web",
                    "workers": ["celery_io_worker"],
                },
                "part_regex": r"part (?P<seq>\d+) of",
                "first_seq": 1,
            },
        }
    ],
    "faults": [
        {"at_s": 2.5, "action": "kill-worker"},
        {"at_s": 3.0, "action": "start-worker"},
    ],
}


def test_the_nemesis_kills_the_teams_worker_container_and_starts_another(
    docker_engine: docker.DockerClient, offline_images: dict[str, str], tmp_path: Path
) -> None:
    """As on the local backend: the parts the killed container held are received, never
    started (unacked in Redis for its one-hour visibility timeout), though a new
    container of the same image and command is up and online."""
    run_dir = tmp_path / "run"
    outcome = run_scenario(Scenario.model_validate(KILLED).scaled(1.0), run_dir, backend="compose")
    assert_fails_with(outcome, "solo", "missing")
    faults = outcome.results.model_dump()["faults"]
    assert [f["action"] for f in faults] == ["kill-worker", "start-worker"]
    lost = [m for m in outcome.history["solo"] if not m.accepted]
    assert lost
    assert all(m.received is not None and m.started is None for m in lost)
    assert (run_dir / "worker-solo.2.log").read_text().strip()  # the new container's log
    assert_nothing_left(docker_engine, run_dir_project(run_dir))


# -- bad input and a failed start: one line, exit 2, nothing left --------------------------

COMPOSE = """
services:
  web:
    build: {{ context: {context} }}
    command: python3 manage.py runserver 0.0.0.0:8000 --noreload --skip-checks
  worker:
    build: {{ context: {context} }}
    command: {worker}
"""
LANE = """
name = "own-bad"
description = "A lane of one's own that cannot run."
[flow]
messages = 2
spacing_s = 1.0
[tolerances]
on_time_s = 1.0
missing_after_s = 5.0
[[lanes]]
name = "mine"
pool = "threads"
[lanes.external]
{form}
"""
WORKER = "celery -A botsite worker -Q celery"
CASES = {
    "a service the compose file lacks": (
        'compose = { file = "compose.yml", webhook = "web", workers = ["celery_worker"] }',
        WORKER,
        "has no service 'celery_worker'",
    ),
    "a command that cannot take a pool": (
        'compose = { file = "compose.yml", webhook = "web", workers = ["worker"] }',
        "sh -c 'exec celery -A botsite worker'",
        "cannot take a pool",
    ),
    "a missing image": (
        'image = "stagger/missing:none"\nwebhook = "x {port}"\nworker = "celery worker"',
        WORKER,
        "image 'stagger/missing:none' is missing",
    ),
    "a worker that exits at start": (
        'compose = { file = "compose.yml", webhook = "web", workers = ["worker"] }',
        "celery -A no_such_app worker",
        "",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_lane_that_cannot_run_says_so_in_one_line_and_leaves_nothing(
    docker_engine: docker.DockerClient,
    offline_images: dict[str, str],
    tmp_path: Path,
    case: str,
) -> None:
    form, worker, said = CASES[case]
    (tmp_path / "compose.yml").write_text(COMPOSE.format(context=DJANGO, worker=worker))
    (tmp_path / "own.toml").write_text(LANE.format(form=form))
    before = stagger_containers(docker_engine)
    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "harness", "run", str(tmp_path / "own.toml")]
    answer = subprocess.run(
        [*argv, "--backend", "compose", "--out", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    output = answer.stdout + answer.stderr
    assert answer.returncode == 2, output
    assert "mine" in output, output
    if said:  # bad input: one line, before anything is built or started
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert said in lines[0], lines
        assert not (run_dir / "compose-project.txt").exists(), "a project was brought up"
    assert stagger_containers(docker_engine) == before
    if (run_dir / "compose-project.txt").exists():
        assert_nothing_left(docker_engine, run_dir_project(run_dir))
