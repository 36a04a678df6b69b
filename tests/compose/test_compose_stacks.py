"""The compose stacks, run for real on a local Docker engine with the offline images.

The compose files validate and come up healthy; shipped scenarios run through
`--backend compose` reach the verdicts the local backend reaches on the same lanes; bad
input fails in seconds with one line; a run removes every container and network it
started, also when interrupted. Scenarios run time scaled; tolerances come from them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import httpx
import pytest

from harness.bot.store import Store
from harness.mock_admin import MockAdmin
from harness.results import RESULTS, Results
from harness.run import RunOutcome, run_scenario
from harness.scenario import load_scenario
from harness.stack.compose import COMPOSE_DIR, compose_command
from harness.waiting import wait_for
from harness.workload import inbound_text, new_inbound_id, post_inbound

from .conftest import run_dir_project, stagger_containers, stagger_networks

pytestmark = [pytest.mark.compose, pytest.mark.timeout(900)]

HARNESS = [sys.executable, "-m", "harness"]
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
# Each compose file with every profile it defines (no profile: the default services).
FILES = {
    "stack.yml": ["", "observe", "load"],
    "matrix.yml": ["", "observe"],
    "incident.yml": ["before", "after", "observe"],
}
# The bound for bad input: it fails "within seconds" (interpreter start included).
FAIL_FAST_S = 15.0
STACK_START_S = 120.0  # compose up --wait on a loaded 2-core machine, images present
SCALE = 0.25
# The backends are compared at full length, the scenarios as written: containers add the
# engine's own work (proxies, healthchecks) to a 2-core machine, and in CI, beside the
# fault suite, a half-length run's on-time bound (1 s) made the first parts late on
# compose (a cold worker received part 1 1.5 s after it was queued), not the flow.
COMPARED_SCALE = 1.0
# Shipped scenarios and the lanes run on both backends (solo and gevent at least).
COMPARED = {
    "incident": ["solo", "gevent"],
    "worker-killed": ["solo", "gevent", "warm-restart", "short-visibility"],
}


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose_command(), *args],
        capture_output=True,
        text=True,
        timeout=STACK_START_S + 60,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_load_profile_swarms_the_webhook_and_counts_deliveries(
    docker_engine: docker.DockerClient, offline_images: dict[str, str]
) -> None:
    """stack.yml with `--profile load` (and `observe`): Locust's master and two workers run
    the repository's locustfile against the webhook; deliveries reach Locust's statistics."""
    project = f"stagger-test-{secrets.token_hex(3)}"
    args = ["--project-name", project, "--file", str(COMPOSE_DIR / "stack.yml")]
    args += ["--env-file", str(ENV_EXAMPLE), "--profile", "load", "--profile", "observe"]
    try:
        up = compose(*args, "up", "--detach", "--wait", "--no-build", env=offline_images)
        assert up.returncode == 0, up.stderr
        port = compose(*args, "port", "locust-master", "8089").stdout.strip().rsplit(":", 1)[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as locust:
            wait_for(  # a worker is healthy once it runs; the master says when it joined
                lambda: locust.get("/stats/requests").json().get("worker_count"),
                lambda count: count == 2,
                timeout_s=STACK_START_S,
                interval_s=0.5,
                what="both Locust workers connected to the master",
            )
            swarm = locust.post("/swarm", data={"user_count": 2, "spawn_rate": 2})
            assert swarm.json()["success"], swarm.text
            stats = wait_for(
                lambda: {s["name"]: s for s in locust.get("/stats/requests").json()["stats"]},
                lambda rows: any(
                    name.startswith("lateness") and row["num_requests"] > 0
                    for name, row in rows.items()
                ),
                timeout_s=STACK_START_S,
                interval_s=0.5,
                what="a part delivered, counted by Locust",
            )
            locust.get("/stop")
        assert all(row["num_failures"] == 0 for row in stats.values()), stats
    finally:
        down = compose(*args, "down", "--volumes", "--timeout", "10", env=offline_images)
    assert down.returncode == 0, down.stderr
    assert stagger_containers(docker_engine, project) == []


def test_every_compose_file_validates_with_docker_compose_config() -> None:
    for name, profiles in FILES.items():
        for profile in profiles:
            args = ["--file", str(COMPOSE_DIR / name), "--env-file", str(ENV_EXAMPLE)]
            args += ["--profile", profile] if profile else []
            answer = compose(*args, "config", "--quiet")
            assert answer.returncode == 0, f"{name} {profile}: {answer.stderr}"


@pytest.mark.parametrize(
    ("name", "profile"),
    [("matrix.yml", "observe"), ("incident.yml", "before"), ("incident.yml", "after")],
)
def test_the_matrix_and_incident_stacks_come_up_healthy_and_go_without_a_trace(
    docker_engine: docker.DockerClient, offline_images: dict[str, str], name: str, profile: str
) -> None:
    project = f"stagger-test-{secrets.token_hex(3)}"
    args = ["--project-name", project, "--file", str(COMPOSE_DIR / name)]
    args += ["--env-file", str(ENV_EXAMPLE), "--profile", profile]
    try:
        up = compose(*args, "up", "--detach", "--wait", "--no-build", env=offline_images)
        assert up.returncode == 0, up.stderr
        containers = docker_engine.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}
        )
        services = {c.labels["com.docker.compose.service"]: c for c in containers}
        expected = {
            "matrix.yml": {"broker", "mock", "flower"}
            | {f"{kind}-{pool}" for kind in ("webhook", "worker") for pool in COMPARED["incident"]},
            "incident.yml": {"broker", "mock", "webhook", "worker-cpu", f"worker-io-{profile}"},
        }[name]
        assert expected <= set(services)
        for service, container in services.items():
            assert container.attrs["State"]["Health"]["Status"] == "healthy", service
        if name == "incident.yml":
            argv = services[f"worker-io-{profile}"].attrs["Config"]["Cmd"]
            assert ("--pool=gevent" in argv) == (profile == "after")
            assert argv[argv.index("-Q") + 1] == "celery"
            assert "--concurrency=20" in argv
            cpu = services["worker-cpu"].attrs["Config"]["Cmd"]
            assert "cpu_heavy" in cpu
            assert "--pool=prefork" in cpu
            assert "--concurrency=1" in cpu
    finally:
        down = compose(*args, "down", "--volumes", "--timeout", "10", env=offline_images)
    assert down.returncode == 0, down.stderr
    assert stagger_containers(docker_engine, project) == []
    assert stagger_networks(docker_engine, project) == []


@pytest.mark.parametrize("profile", ["before", "after"])
def test_the_incident_replayed_before_its_fix_runs_no_part_and_after_it_every_part(
    docker_engine: docker.DockerClient, offline_images: dict[str, str], profile: str
) -> None:
    """incident.yml as deployed: gevent only in settings, the I/O worker receives every part
    and starts none; with --pool=gevent on its command line, every part reaches the API."""
    scenario = load_scenario("incident")[0].scaled(SCALE)
    parts, spacing = scenario.flow.messages, scenario.flow.spacing_s
    project = f"stagger-test-{secrets.token_hex(3)}"
    args = ["--project-name", project, "--file", str(COMPOSE_DIR / "incident.yml")]
    args += ["--env-file", str(ENV_EXAMPLE), "--profile", profile]
    env = offline_images | {"FIXTURES_PARTS": str(parts), "FIXTURES_SPACING_S": str(spacing)}
    try:
        up = compose(*args, "up", "--detach", "--wait", "--no-build", env=env)
        assert up.returncode == 0, up.stderr
        ports = {
            service: compose(*args, "port", service, port, env=env).stdout.strip().split(":")[-1]
            for service, port in (("webhook", "8000"), ("mock", "8000"), ("broker", "6379"))
        }
        store = Store(f"redis://127.0.0.1:{ports['broker']}/1", "stagger:incident:")
        payload = inbound_text(
            phone_number_id="106540352290000",
            sender="447700000001",
            text="fixtures",
            message_id=new_inbound_id(),
        )
        with httpx.Client(timeout=10) as client:
            url = f"http://127.0.0.1:{ports['webhook']}/webhook"
            assert post_inbound(client, url, payload, "mock-app-secret").status_code == 200
        received = wait_for(
            lambda: [e for e in store.events() if e["event"] == "received"],
            lambda events: len(events) >= parts,
            timeout_s=scenario.flow.schedule_s + scenario.tolerances.missing_after_s,
            what="every part received by the I/O worker",
        )
        last_due = max(event["eta"] or 0 for event in received)
        with MockAdmin(f"http://127.0.0.1:{ports['mock']}") as mock:
            journal = wait_for(
                mock.journal,
                lambda entries: (
                    len(entries) >= parts
                    or time.time() > last_due + scenario.tolerances.missing_after_s
                ),
                timeout_s=scenario.flow.schedule_s + 2 * scenario.tolerances.missing_after_s,
                interval_s=0.2,
                what="every part sent, or the last one missing",
            )
        started = [e for e in store.events() if e["event"] == "started"]
        ready = next(  # the I/O worker's (the CPU worker, prefork, shares the bot's store)
            e for e in store.events() if e["event"] == "worker_ready" and e["pool"] == "gevent"
        )
        store.redis.close()
        if profile == "before":
            assert ready["gevent_patched"] is False
            assert (len(journal), len(started)) == (0, 0)
        else:
            assert ready["gevent_patched"] is True
            assert len(journal) == parts
    finally:
        down = compose(*args, "down", "--volumes", "--timeout", "10", env=env)
    assert down.returncode == 0, down.stderr
    assert stagger_containers(docker_engine, project) == []


@pytest.fixture(scope="module")
def outcomes(
    docker_engine: docker.DockerClient,
    offline_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, str], RunOutcome]:
    """Each compared scenario, scaled, once on each backend, on the same lanes."""
    runs: dict[tuple[str, str], RunOutcome] = {}
    for name, lanes in COMPARED.items():
        scenario, text = load_scenario(name)
        scaled = scenario.only(lanes).scaled(COMPARED_SCALE)
        for backend in ("local", "compose"):
            run_dir = tmp_path_factory.mktemp(f"{name}-{backend}")
            started = time.monotonic()
            runs[name, backend] = run_scenario(scaled, run_dir, source_text=text, backend=backend)
            print(f"{name} on {backend}: {time.monotonic() - started:.0f} s")
    return runs


@pytest.mark.compared
@pytest.mark.parametrize("name", list(COMPARED))
def test_a_scenario_on_compose_reaches_the_local_backends_verdicts(
    outcomes: dict[tuple[str, str], RunOutcome], docker_engine: docker.DockerClient, name: str
) -> None:
    local, composed = outcomes[name, "local"], outcomes[name, "compose"]
    for outcome in (local, composed):
        assert outcome.results.complete
        assert outcome.results.as_expected, [lane.mismatch for lane in outcome.results.lanes]
    # The verdict and the reasons the scenario names; how many parts a killed worker had
    # fetched by the kill is timing, not verdict (both backends count them as missing).
    for lane in COMPARED[name]:
        mine, theirs = composed.lane(lane), local.lane(lane)
        assert (mine.verdict, mine.as_expected) == (theirs.verdict, theirs.as_expected), lane
        expected = set(composed.scenario.lane(lane).because)
        assert expected <= set(mine.reason_codes), (lane, mine.reasons)
        assert expected <= set(theirs.reason_codes), (lane, theirs.reasons)
    # Every container and network the run started is gone; their logs are in the run dir.
    project = run_dir_project(composed.run_dir)
    assert stagger_containers(docker_engine, project) == []
    assert stagger_networks(docker_engine, project) == []
    for lane in COMPARED[name]:
        assert "ready." in (composed.run_dir / f"worker-{lane}.log").read_text()


@pytest.mark.compared
def test_faults_on_compose_act_on_the_worker_containers(
    outcomes: dict[tuple[str, str], RunOutcome],
) -> None:
    """SIGKILL ends a container with 137, a warm stop with 0 (unless its grace ran out), and
    a new worker container (its own log) starts and becomes healthy for every lane restarted."""
    composed = outcomes["worker-killed", "compose"]
    faults = {(f.lane, f.action): f for f in composed.results.faults}
    for lane in ("solo", "gevent", "short-visibility"):
        assert faults[lane, "kill-worker"].exit_code == 137
    # A warm stop: SIGTERM, and SIGKILL (137) only once the grace ran out.
    stop = faults["warm-restart", "stop-worker"]
    grace = composed.scenario.faults_of("warm-restart")[0].grace
    assert stop.exit_code == 0 or (
        stop.exit_code == 137 and stop.done_at - stop.begun_at >= grace
    ), stop
    for lane in COMPARED["worker-killed"]:
        started = faults[lane, "start-worker"]
        assert started.error is None
        if not started.cancelled:  # not cut short by the run's end
            assert started.pid > 0
            assert "ready." in (composed.run_dir / f"worker-{lane}.2.log").read_text()


def _harness(*argv: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    answer = subprocess.run(
        [*HARNESS, *argv],
        capture_output=True,
        text=True,
        timeout=FAIL_FAST_S * 4,
        env={**os.environ, "COLUMNS": "80", **env},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return answer, time.monotonic() - started


@pytest.mark.parametrize("fault", ["no engine", "missing image", "port in use"])
def test_bad_input_fails_in_seconds_in_one_line_and_starts_nothing(
    docker_engine: docker.DockerClient,
    offline_images: dict[str, str],
    tmp_path: Path,
    fault: str,
) -> None:
    with contextlib.ExitStack() as stack:
        if fault == "no engine":
            env, said = {"DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}"}, "dockerd"
        elif fault == "missing image":
            env, said = {"STAGGER_IMAGE": "stagger/missing:none"}, "harness images"
        else:
            taken = stack.enter_context(socket.socket())
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            env, said = {"MOCK_PORT": str(taken.getsockname()[1])}, "is in use"
        before = stagger_containers(docker_engine)
        run_dir = tmp_path / "run"
        argv = ["run", "incident", "-p", "solo", "--backend", "compose", "--out", str(run_dir)]
        answer, took = _harness(*argv, env=env)
    lines = [line for line in (answer.stdout + answer.stderr).splitlines() if line.strip()]
    assert answer.returncode == 2, lines
    assert len(lines) == 1, lines
    assert said in lines[0], lines
    assert took < FAIL_FAST_S, f"took {took:.1f} s"
    assert not run_dir.exists()
    assert stagger_containers(docker_engine) == before


def test_ctrl_c_during_a_compose_run_removes_everything_and_keeps_partial_results(
    docker_engine: docker.DockerClient, offline_images: dict[str, str], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    runner = subprocess.Popen(
        [*HARNESS, "run", "incident", "-p", "solo", "--backend", "compose", "--out", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        start_new_session=True,
    )
    try:
        # The full-length schedule takes 42 s: interrupt once the worker is up and healthy.
        wait_for(
            lambda: (run_dir / "compose-project.txt").exists() or runner.poll() is not None,
            timeout_s=FAIL_FAST_S * 4,
            interval_s=0.1,
            what="the run's compose project",
        )
        project = run_dir_project(run_dir)

        def worker_healthy() -> bool:
            for container in docker_engine.containers.list(
                filters={"label": f"com.docker.compose.project={project}"}
            ):
                if container.labels.get("com.docker.compose.service") == "worker-solo":
                    return container.attrs["State"].get("Health", {}).get("Status") == "healthy"
            return False

        wait_for(
            lambda: worker_healthy() or runner.poll() is not None,
            timeout_s=STACK_START_S,
            interval_s=0.2,
            what="the solo worker healthy",
        )
        assert runner.poll() is None, "the run ended before it could be interrupted"
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=STACK_START_S)
    finally:
        if runner.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    assert runner.returncode == 130, output
    assert "Traceback" not in output
    assert stagger_containers(docker_engine, project) == []
    assert stagger_networks(docker_engine, project) == []
    assert not Results.model_validate_json((run_dir / RESULTS).read_text()).complete
    assert (run_dir / "worker-solo.log").exists()
