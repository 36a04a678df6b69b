"""The compose stack: a scenario's lanes as containers of compose/stack.yml's services.

The run directory gets a compose file of its own: the broker and the mock of stack.yml,
and per lane a `webhook-<lane>` and a `worker-<lane>` that extend stack.yml's webhook and
worker with the lane's settings, exactly as compose/matrix.yml does for the four pools.
An external lane's services come from its own image instead (`own_services`): the broker
and mock come up first, its task events are heard, then its containers, ready when the
webhook answers and each worker announced itself.
`docker compose up --wait` brings it up (every service has a healthcheck); the harness
reaches the broker, the mock and the webhooks through ports published on 127.0.0.1.
Faults go through the Docker API: kill is SIGKILL to the worker's container, stop is
`docker stop` with the fault's grace, start is a new container of the lane's worker.
A broker fault stops the broker container and starts it again on the port the harness
pinned for it (Docker would choose a new one).
Network faults go through a `proxy` service the project then has (`compose_proxies`).
Whatever way the run ends, the containers' logs are written to the run directory and
`docker compose down --volumes` removes every container, network and volume it started.
If the harness is killed instead, its reaper (`harness.reaper`) removes the project; every
container is also labelled with the run and the harness that owns it, so the next run on
this host removes what a harness that died with its reaper (a whole cgroup killed) left.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import redis
import requests
from docker.models.containers import Container

from .. import reaper
from ..processes import run_command
from ..proxy_service import ProxyPlan, RemoteProxy
from ..waiting import DeadlineExceeded, wait_for
from . import compose_proxies
from .broker import Broker, request_shutdown
from .compose_host import (
    COMPOSE_DIR,
    OWNER_LABEL,
    PROJECT_LABEL,
    RUN_LABEL,
    SERVICE_LABEL,
    STACK_FILE,
    ComposeError,
    ComposeUnavailable,
    check_ports,
    compose_command,
    images,
    owner,
    preflight,
    remove_orphans,
    unclaimed_port,
)
from .core import LaneCore, StackCore, StackStopped, write_mock_config
from .core import lane_env as core_lane_env
from .external import LOG_LINES, ExternalLaneError, TaskEvents, answers, last_lines
from .own_services import OwnLane, make_images, plan, project_services
from .spec import LaneSpec, StackSpec, phone_number_id, settings_from_env

# Names a caller may import from here, wherever they are written.
__all__ = [
    "COMPOSE_DIR",
    "PROJECT_LABEL",
    "STACK_FILE",
    "ComposeError",
    "ComposeLane",
    "ComposeStack",
    "ComposeUnavailable",
    "ComposeWorker",
    "check_ports",
    "compose_command",
    "lane_env",
    "preflight",
    "project_file",
    "remove_orphans",
    "worker_env",
]

DOWN_TIMEOUT_S = 10  # a worker's warm shutdown at the end of a run, then SIGKILL
BROKER_STOP_S = 30.0  # a broker fault: the broker's own save and exit
COMMAND_TIMEOUT_S = 120.0  # `compose down` and friends, beyond the bring-up's own deadline


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

    @property
    def output(self) -> str:
        """The container's last lines (an external lane's error quotes them)."""
        try:
            return self.container.logs(tail=50).decode(errors="replace")
        except docker.errors.APIError:
            return ""

    def kill(self) -> None:
        """SIGKILL the container's main process: the whole container dies with it."""
        with contextlib.suppress(docker.errors.APIError):  # already stopped: nothing to kill
            self.container.kill(signal="SIGKILL")
        self._wait(timeout_s=30)


@dataclass(kw_only=True)
class ComposeLane(LaneCore[ComposeWorker]):
    """A lane on containers: its settings inside the stack, and where the host reaches it
    (its store through the broker's published port)."""

    webhook_url: str
    task_events: TaskEvents | None = None  # an external lane's Celery task events
    proxies: dict[str, RemoteProxy] = field(default_factory=dict)  # network faults


def lane_env(spec: StackSpec, index: int, lane: LaneSpec, run_id: str) -> dict[str, str]:
    """The lane's environment inside the stack (as the local stack sets it; lane settings win)."""
    base = {
        "LANE": lane.name,
        "CELERY_BROKER_URL": f"redis://broker:6379/{spec.database_of(index)}",
    }
    return core_lane_env(spec, index, lane, run_id=run_id, api_url="http://mock:8000", base=base)


def worker_env(spec: StackSpec, lane: LaneSpec) -> dict[str, str]:
    """stack.yml's worker parameters: the pool, where it is set, the concurrency."""
    return {
        "CELERY_POOL": lane.pool,
        "CELERY_POOL_SET_BY": "settings" if lane.pool_from_settings else "argv",
        "CELERY_CONCURRENCY": "" if lane.concurrency is None else str(lane.concurrency),
        "CELERY_LOGLEVEL": spec.worker_loglevel,
    }


def project_file(
    spec: StackSpec,
    envs: Mapping[str, dict[str, str]],
    mock_config: Path,
    project: str,
    labels: Mapping[str, str] | None = None,
    own: Mapping[str, OwnLane] | None = None,
    proxies: Sequence[ProxyPlan] = (),
) -> dict[str, Any]:
    """The run's compose file: stack.yml's services, one webhook and worker per lane (an
    external lane's from its own image, `own_services`), the lanes' `proxy` when they
    have proxies (`compose_proxies`); every service carries `labels` (the run and its
    owner)."""
    healthy = {"condition": "service_healthy"}
    depends = {"broker": healthy, "mock": healthy}
    if proxies:
        depends[compose_proxies.SERVICE] = healthy

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
    if proxies:
        services[compose_proxies.SERVICE] = compose_proxies.service(proxies, labels or {})
    for lane in spec.lanes:
        env = envs[lane.name]
        if own and lane.name in own:
            common = {"labels": dict(labels or {}), "depends_on": depends}
            services |= project_services(lane.name, own[lane.name], common)
            continue
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


class ComposeStack(StackCore[ComposeLane]):
    """The lanes as containers of one compose project, removed on exit (see the module)."""

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
            if lane.external is not None and not lane.external.in_containers:
                raise ComposeUnavailable(
                    f"lane {lane.name}: on the compose backend an external lane runs in "
                    "containers: give it `image` or `build` (with its commands), or "
                    "`compose` services; its local commands are for the local backend"
                )
        super().__init__(spec, run_dir)
        self.project = f"stagger-{self.run_id}"
        self.broker: Broker | None = None
        self._client: docker.DockerClient | None = None
        self._compose: list[str] = []
        self._extra: list[ComposeWorker] = []  # workers the nemesis started
        self.removed: list[str] = []  # what killed runs had left, removed before this one
        self._brought_up = False
        self._envs: dict[str, dict[str, str]] = {}
        self._own: dict[str, OwnLane] = {}  # external lanes: their containers
        self._passed: dict[str, str] = {}  # their team's values, by reference (`by_reference`)
        self._task_events: dict[str, TaskEvents] = {}
        # With a broker fault, pinned: the fault starts the same container again, and
        # Docker would give it a new port where compose left the choice to it (0: Docker's
        # choice, or the BROKER_PORT of the environment).
        self._broker_port = 0
        self._proxy_plans: list[ProxyPlan] = []  # network faults: the lanes' proxies

    # -- start ---------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Engine, compose, images and ports checked; what killed runs left removed."""
        self._client = preflight()
        self._compose = compose_command()
        super()._prepare()
        self.removed = remove_orphans(self._client)
        if self.removed:
            with (self.run_dir / "compose.log").open("a", encoding="utf-8") as log:
                log.writelines(f"{line}\n" for line in self.removed)
        self._envs = {
            lane.name: lane_env(self.spec, index, lane, self.run_id)
            for index, lane in enumerate(self.spec.lanes)
        }
        if self.spec.proxied:  # before the external lanes' services take their values
            self._proxy_plans = compose_proxies.plans(self.spec, self._envs)
            self._envs = {
                name: compose_proxies.routed_env(env, name, self._proxy_plans)
                for name, env in self._envs.items()
            }
        for lane in self.spec.lanes:
            if lane.external is not None:
                self._own[lane.name] = plan(lane, self._envs[lane.name])
        for own in self._own.values():
            self._passed |= own.passed
        if self._own:  # bad input is said here, before anything starts
            make_images(self._client, self._own, images()["STAGGER_IMAGE"])

    def _start(self) -> None:
        envs = self._envs
        labels = {RUN_LABEL: self.run_id, OWNER_LABEL: owner()}
        mock_config = self._write_mock_config()
        project = project_file(
            self.spec, envs, mock_config, self.project, labels, self._own, self._proxy_plans
        )
        (self.run_dir / "compose.yml").write_text(json.dumps(project, indent=2))  # JSON is YAML
        (self.run_dir / "compose-project.txt").write_text(
            f"{self.project}\n# remove what a crashed run left: docker compose -p {self.project}"
            " down --volumes\n"
        )
        reaper.tie_project(self.project, self.run_dir)  # removed even if the harness is killed
        if self.spec.restarts_broker and not int(os.environ.get("BROKER_PORT") or 0):
            self._broker_port = unclaimed_port()
        self._brought_up = True  # from here on, `down` has something to remove
        if self._own:  # the broker first: task events are heard before any worker starts
            self._up("broker", "mock")
            self._listen(_host_port(self._containers()["broker"], "6379/tcp"))
        self._up()
        containers = self._containers()
        broker_port = _host_port(containers["broker"], "6379/tcp")
        self.broker = Broker(url=f"redis://127.0.0.1:{broker_port}/0")
        version = self.broker.version()
        self.broker_versions = {lane.name: version for lane in self.spec.lanes}
        self.mock_url = f"http://127.0.0.1:{_host_port(containers['mock'], '8000/tcp')}"
        control_url = ""
        if self._proxy_plans:
            proxy = containers[compose_proxies.SERVICE]
            control_url = (
                f"http://127.0.0.1:{_host_port(proxy, f'{compose_proxies.CONTROL_PORT}/tcp')}"
            )
        for index, lane in enumerate(self.spec.lanes):
            own = self._own.get(lane.name)
            port, path = (8000, "/webhook") if own is None else (own.port, own.path)
            web_port = _host_port(containers[f"webhook-{lane.name}"], f"{port}/tcp")
            env = envs[lane.name]
            worker = containers[f"worker-{lane.name}"]
            self._lanes[lane.name] = ComposeLane(
                spec=lane,
                index=index,
                env=env,
                settings=settings_from_env(env),
                webhook_url=f"http://127.0.0.1:{web_port}{path}",
                store_url=self.broker.url_for_db(self.spec.database_of(index)),
                workers=[ComposeWorker(worker, f"worker-{lane.name}", _main_pid(worker))],
                task_events=self._task_events.get(lane.name),
                proxies=compose_proxies.remote_proxies(control_url, lane.name, self._proxy_plans),
            )
        for name, own in self._own.items():
            self._wait_own_ready(self._lanes[name], len(own.workers))

    def _up(self, *services: str) -> None:
        """`compose up --wait` of the services (all when none is named)."""
        deadline = math.ceil(self.spec.start_timeout_s)
        self._run_compose(
            "up", "--detach", "--wait", "--wait-timeout", str(deadline), "--no-build",
            "--pull", "never", "--quiet-pull", *services,
            timeout_s=deadline + 30,
        )  # fmt: skip

    def _listen(self, broker_port: int) -> None:
        """Each external lane's task events, from its database on the published broker."""
        for index, lane in enumerate(self.spec.lanes):
            if lane.name not in self._own:
                continue
            url = f"redis://127.0.0.1:{broker_port}/{self.spec.database_of(index)}"
            events = TaskEvents(url)
            self._task_events[lane.name] = events
            try:
                events.start(timeout_s=self.spec.start_timeout_s)
            except ExternalLaneError as exc:
                raise ExternalLaneError(f"lane {lane.name}: {exc}") from None

    def _wait_own_ready(self, lane: ComposeLane, workers: int) -> None:
        """An external lane is ready when its webhook answers and its workers announced
        themselves on its broker (its containers need no healthcheck); one that exits
        first fails the start at once, with its last lines."""
        events = lane.task_events
        assert events is not None

        names = {f"webhook-{lane.name}", f"worker-{lane.name}"}
        names |= {f"worker-{lane.name}-{n}" for n in range(2, workers + 1)}

        def ready() -> bool:
            for service, container in self._containers().items():
                if service in names and container.status in ("exited", "dead"):
                    tail = container.logs(tail=LOG_LINES).decode(errors="replace")
                    raise ExternalLaneError(
                        f"lane {lane.name}: its {service} container exited at start; its "
                        f"last lines:\n{last_lines(tail)}"
                    )
            return events.online_count >= workers and answers(lane.webhook_url, timeout_s=0.5)

        try:
            wait_for(ready, timeout_s=self.spec.start_timeout_s, interval_s=0.2)
        except DeadlineExceeded:
            what = "webhook" if events.online_count >= workers else "worker"
            container = self._containers()[f"{what}-{lane.name}"]
            tail = container.logs(tail=LOG_LINES).decode(errors="replace")
            raise ExternalLaneError(
                f"lane {lane.name}: its {what} container was not ready within "
                f"{self.spec.start_timeout_s:g} s; its last lines:\n{last_lines(tail)}"
            ) from None

    def _write_mock_config(self) -> Path:
        """Every lane's business number, the scenario's behaviours, and each number's status
        webhooks routed to its own lane's webhook on the stack's network."""
        behaviours = dict(self.spec.mock_behaviours)
        webhooks = dict(behaviours.get("webhooks") or {})
        webhooks["url_per_phone_number"] = {
            phone_number_id(index): self._internal_webhook(lane.name)
            for index, lane in enumerate(self.spec.lanes)
        }
        behaviours["webhooks"] = webhooks
        path = write_mock_config(
            self.run_dir / "mock-config.json", len(self.spec.lanes), behaviours
        )
        path.chmod(0o644)  # read by the mock's unprivileged user
        return path

    def _internal_webhook(self, lane: str) -> str:
        """The lane's webhook as the mock reaches it on the stack's network."""
        own = self._own.get(lane)
        if own is None:
            return f"http://webhook-{lane}:8000/webhook"
        return f"http://webhook-{lane}:{own.port}{own.path}"

    def _run_compose(self, *args: str, timeout_s: float) -> str:
        """One compose command on this project; ComposeError with its telling line if it fails."""
        env = {**os.environ, **images(), "WEBHOOK_PORT": "0", **self._passed}
        if self._broker_port:
            env["BROKER_PORT"] = str(self._broker_port)
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
        it is ready (`_wait_started`)."""
        assert self._client is not None
        lane = self._lanes[name]
        template = lane.workers[0].container.attrs
        number = self._worker_number(name)
        seen = 0 if lane.task_events is None else lane.task_events.online_count
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
            entrypoint=config.get("Entrypoint"),
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
        self._wait_started(container, lane.task_events, seen)
        worker.pid = _main_pid(container)
        lane.workers.append(worker)
        return worker

    def _wait_started(self, container: Container, events: TaskEvents | None, seen: int) -> None:
        """A new worker container is ready once its healthcheck passes (the replica's), or
        once it announced itself on the lane's broker (an external lane's: its image may
        have no healthcheck); one that exits first fails at once."""
        what = "healthy" if events is None else "online"

        def ready() -> bool:
            if self._stopping:  # the run ended first: the fault is cut short, not failed
                raise ComposeError(f"{container.name}: the stack stopped before it was {what}")
            container.reload()
            state = container.attrs["State"]
            if events is None and state.get("Health", {}).get("Status") == "healthy":
                return True
            if state["Status"] in ("exited", "dead"):
                tail = container.logs(tail=5).decode(errors="replace").strip()
                raise ComposeError(f"{container.name} exited with {state['ExitCode']}: {tail}")
            return events is not None and events.online_count > seen

        try:
            wait_for(ready, timeout_s=self.spec.start_timeout_s, interval_s=0.2)
        except DeadlineExceeded:
            raise ComposeError(
                f"{container.name} not {what} within {self.spec.start_timeout_s:g} s"
            ) from None

    def stop_broker(self, keep_data: bool) -> int:
        """Stop the broker container, as `restart-broker`/`stop-broker` stop the local one:
        Redis saves first with `keep_data` (`SHUTDOWN SAVE`: the container keeps its file
        for the start), else the file of an earlier save goes first and nothing is saved.
        The PID of its main process, as the host sees it. If it cannot, the broker is
        started again (or left running) before the error is raised: the run goes on with
        a broker."""
        self._refuse_when_stopping("stopping the broker")
        container = self._containers()["broker"]
        pid = _main_pid(container)
        try:
            self._shut_down(container, keep_data)
        except ComposeError:
            with contextlib.suppress(ComposeError, StackStopped):
                self.start_broker()  # a no-op where it still runs
            raise
        return pid

    def _shut_down(self, container: Container, keep_data: bool) -> None:
        assert self.broker is not None
        client = redis.Redis.from_url(self.broker.url, socket_timeout=BROKER_STOP_S)
        try:
            if not keep_data:
                self._forget_saved(client, container)
            request_shutdown(client, keep_data)
        except redis.RedisError as exc:  # it runs on, e.g. where it could not save
            raise ComposeError(
                f"the broker container did not stop: {exc} (its log: broker.log in the run "
                "directory; with keep_data its image must let it write its directory)"
            ) from None
        finally:
            client.close()
        try:
            container.wait(timeout=BROKER_STOP_S)
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise ComposeError(
                f"the broker container did not exit within {BROKER_STOP_S:g} s of SHUTDOWN: {exc}"
            ) from None

    @staticmethod
    def _forget_saved(client: redis.Redis, container: Container) -> None:
        """Remove what an earlier `SHUTDOWN SAVE` left, so the start again loads nothing."""
        directory = client.config_get("dir")["dir"]
        name = client.config_get("dbfilename")["dbfilename"]
        removed = container.exec_run(["rm", "-f", f"{directory}/{name}"])
        if removed.exit_code != 0:
            said = removed.output.decode(errors="replace").strip()
            raise ComposeError(f"the broker's saved data could not be removed: {said}")

    def start_broker(self) -> int:
        """Start the broker container again (on its pinned port, its saved data loaded, if
        any); returns once it answers PING, with its main process's PID."""
        self._refuse_when_stopping("starting the broker")
        container = self._containers()["broker"]
        try:
            container.start()
        except docker.errors.APIError as exc:
            if self._stopping:  # removed by the stop meanwhile
                raise StackStopped("not starting the broker: the stack is stopping") from None
            assert self.broker is not None
            raise ComposeError(
                f"the broker container did not start again on {self.broker.url}: "
                f"{exc.explanation or exc} (BROKER_PORT pins a port of your choice)"
            ) from None
        assert self.broker is not None
        client = redis.Redis.from_url(self.broker.url, socket_timeout=1.0)

        def answers() -> bool:
            # Loading its data, or slow to answer on a loaded machine: not yet.
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                return bool(client.ping())
            return False

        try:
            wait_for(answers, timeout_s=self.spec.start_timeout_s, interval_s=0.1)
        except DeadlineExceeded:
            raise ComposeError(
                f"the broker container did not answer within {self.spec.start_timeout_s:g} s "
                "of its start again"
            ) from None
        finally:
            client.close()
        return _main_pid(container)

    # -- stop ----------------------------------------------------------------------------------

    def _stop(self) -> None:
        """Save every container's log, then remove containers, networks and volumes."""
        for events in self._task_events.values():
            events.stop()
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
