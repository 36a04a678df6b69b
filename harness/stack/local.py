"""The local stack: broker, mock Cloud API, and per lane a bot webhook and a Celery worker.

Every part is a real process on 127.0.0.1 on a port chosen at run time, logs
to the run directory, is waited for by a condition (its ready line) and is
stopped by PID, whatever way the run ends.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from mock_meta_api import server as mock_server

from ..bot import serve as bot_server
from ..mock_admin import MockAdmin
from ..processes import ServerProcess, ServerStartError, start_server
from ..proxy import Proxy
from ..scenario.containers import local_lanes_only
from . import broker as brokers
from . import rabbitmq
from .core import (
    VERIFY_TOKEN,
    LaneCore,
    StackCore,
    StackStopped,
    lane_env,
    through_proxies,
    write_mock_config,
)
from .external import (
    ExternalLaneError,
    TaskEvents,
    answers,
    check_url,
    command_argv,
    last_lines,
    placeholders,
    workdir,
    worker_argv,
)
from .local_brokers import LocalBrokers
from .spec import LaneSpec, StackSpec, settings_from_env

# Celery logs "<name>@<host> ready." once the worker consumes.
WORKER_READY = re.compile(r"\S+@\S+ ready\.")
URL_WAIT_S = 10.0  # a webhook said to be running gets this long to answer
NEVER = re.compile(r"(?!)")  # external processes are ready by a check, not a line

__all__ = ["VERIFY_TOKEN", "Lane", "LocalStack", "StackStopped", "worker_command"]


@dataclass(kw_only=True)
class Lane(LaneCore[ServerProcess]):
    """A lane of processes: its webhook (none for an external one already running), its
    workers, and its own proxies for network faults."""

    web: ServerProcess | None  # None: an external webhook already running
    external_url: str | None = None  # an external lane's webhook URL
    task_events: TaskEvents | None = None  # an external lane's Celery task events
    proxies: dict[str, Proxy] = field(default_factory=dict)  # "broker", "api": network faults

    @property
    def webhook_url(self) -> str:
        if self.external_url is not None:
            return self.external_url
        assert self.web is not None
        return f"{self.web.url}/webhook"


def worker_command(spec: LaneSpec, queue: str, loglevel: str) -> list[str]:
    """`celery worker` for one lane; the pool is on the command line unless settings-only."""
    python = str(spec.python or sys.executable)
    argv = [python, "-m", "celery", "-A", "harness.bot.worker", "worker"]
    argv += ["--loglevel", loglevel, "--hostname", f"{spec.name}@%h", "--queues", queue]
    if not spec.pool_from_settings:
        argv += ["--pool", spec.pool]
    if spec.concurrency is not None:
        argv += ["--concurrency", str(spec.concurrency)]
    return argv


class LocalStack(StackCore[Lane]):
    """Every part a real process on 127.0.0.1, stopped by PID (see the module)."""

    def __init__(self, spec: StackSpec, run_dir: Path) -> None:
        local_lanes_only(spec.lanes)
        super().__init__(spec, run_dir)
        self.brokers = LocalBrokers(spec, run_dir, self._own)
        self.mock: ServerProcess | None = None
        self._processes: dict[str, ServerProcess] = {}
        self._values: dict[str, dict[str, str]] = {}  # external lanes' placeholders
        self._task_events: dict[str, TaskEvents] = {}
        self._broker_starts = 1
        self._proxies: list[Proxy] = []

    @property
    def broker(self) -> brokers.Broker | None:
        """The embedded Valkey (or --broker-url's Redis), if a lane uses one."""
        return self.brokers.valkey

    @property
    def rabbit(self) -> rabbitmq.RabbitNode | None:
        """The RabbitMQ node the harness started, if a lane uses one."""
        return self.brokers.rabbit

    # -- start ---------------------------------------------------------------------------------

    def _start(self) -> None:
        self.broker_versions |= self.brokers.start()
        # The mock's port is chosen now, so the lanes (configured with its URL) start with it:
        # start-up is mostly imports, and every process starts at once.
        mock_port = brokers.free_port()
        self.mock_url = f"http://127.0.0.1:{mock_port}"
        specs = list(enumerate(self.spec.lanes))
        direct = {spec.name: self._lane_env(index, spec) for index, spec in specs}
        proxies = {name: self._start_proxies(name, env, mock_port) for name, env in direct.items()}
        envs = {
            name: through_proxies(env, {t: p.url_host for t, p in proxies[name].items()})
            for name, env in direct.items()
        }
        settings = {name: settings_from_env(env) for name, env in envs.items()}
        for _, spec in specs:
            if spec.external is not None:
                broker_url = direct[spec.name]["CELERY_BROKER_URL"]
                self._prepare_external(spec, envs[spec.name], broker_url)
        mock_argv = mock_server.command("--config", str(self._write_mock_config()))
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1 + 2 * len(specs))
        try:
            mock = pool.submit(
                self._spawn, [*mock_argv, "--port", str(mock_port)], mock_server.READY, "mock"
            )
            webs = {
                spec.name: pool.submit(self._start_web, spec, envs[spec.name]) for _, spec in specs
            }
            workers = {
                spec.name: pool.submit(self._start_worker, spec, envs[spec.name])
                for _, spec in specs
            }
            self.mock = mock.result()
            for index, spec in specs:
                self.lanes[spec.name] = Lane(
                    spec=spec,
                    index=index,
                    env=envs[spec.name],
                    settings=settings[spec.name],
                    store_url=settings[spec.name].store_url,
                    web=webs[spec.name].result(),
                    workers=[workers[spec.name].result()],
                    external_url=self._external_url(spec),
                    task_events=self._task_events.get(spec.name),
                    proxies=proxies[spec.name],
                )
        except BaseException:
            self.stop()  # also the processes still starting: Ctrl-C does not wait for them
            raise
        finally:
            pool.shutdown(wait=True)
        self._route_status_webhooks()

    def _start_proxies(self, lane: str, env: dict[str, str], mock_port: int) -> dict[str, Proxy]:
        """The lane's own proxies to its broker and to the API, as the scenario asks; each
        is stopped with the stack."""
        if not self.spec.proxied:
            return {}
        broker = urlsplit(env.get("CELERY_BROKER_URL", ""))
        upstreams = {
            "broker": (broker.hostname or "127.0.0.1", broker.port or 6379),
            "api": ("127.0.0.1", mock_port),
        }
        started: dict[str, Proxy] = {}
        for target in sorted(self.spec.proxied):
            proxy = Proxy(*upstreams[target], name=f"proxy-{lane}-{target}")
            with self._lock:
                self._proxies.append(proxy)
            proxy.start()
            started[target] = proxy
        return started

    def _start_web(self, spec: LaneSpec, env: dict[str, str]) -> ServerProcess | None:
        external = spec.external
        if external is None:
            argv = bot_server.command(python=str(spec.python or sys.executable))
            return self._spawn(argv, bot_server.READY, f"bot-{spec.name}", env)
        if external.url is not None:
            check_url(spec.name, external.url, min(self.spec.start_timeout_s, URL_WAIT_S))
            return None
        assert external.webhook is not None
        url = self._external_url(spec)
        assert url is not None
        return self._spawn_external(
            spec.name,
            "webhook",
            command_argv(external.webhook, self._values[spec.name]),
            f"bot-{spec.name}",
            env,
            lambda: answers(url, timeout_s=0.5),
        )

    def _start_worker(
        self, spec: LaneSpec, env: dict[str, str], log_name: str | None = None
    ) -> ServerProcess:
        if spec.external is not None:
            events = self._task_events[spec.name]
            assert spec.external.worker is not None  # a local lane has its command
            seen = events.online_count
            return self._spawn_external(
                spec.name,
                "worker",
                worker_argv(spec.external.worker, self._values[spec.name]),
                log_name or f"worker-{spec.name}",
                env,
                lambda: events.online_count > seen,  # announced itself on the lane's broker
            )
        argv = worker_command(spec, env["CELERY_TASK_QUEUE"], self.spec.worker_loglevel)
        return self._spawn(argv, WORKER_READY, log_name or f"worker-{spec.name}", env)

    # -- external lanes ------------------------------------------------------------------------

    def _prepare_external(self, spec: LaneSpec, env: dict[str, str], broker_url: str) -> None:
        """Fill the lane's placeholders; listen to its task events before its worker starts,
        on `broker_url`, the broker itself (a network fault on the lane's proxy must not
        silence the evidence)."""
        assert spec.external is not None
        values = placeholders(
            spec,
            env,
            python=str(spec.python or sys.executable),
            api_url=self.mock_url,
            port=brokers.free_port(),
        )
        self._values[spec.name] = values
        env.update({name: value.format(**values) for name, value in spec.external.env.items()})
        events = TaskEvents(broker_url)
        self._task_events[spec.name] = events
        try:
            events.start(timeout_s=self.spec.start_timeout_s)
        except ExternalLaneError as exc:
            raise ExternalLaneError(f"lane {spec.name}: {exc}") from None

    def _external_url(self, spec: LaneSpec) -> str | None:
        if spec.external is None:
            return None
        if spec.external.url is not None:
            return spec.external.url
        return f"http://127.0.0.1:{self._values[spec.name]['port']}{spec.external.webhook_path}"

    def _spawn_external(
        self,
        lane: str,
        role: str,
        argv: list[str],
        name: str,
        env: dict[str, str],
        ready_check: Callable[[], bool],
    ) -> ServerProcess:
        """An external lane's process; a failed start names the lane with its last lines."""
        spec = next(s for s in self.spec.lanes if s.name == lane)
        assert spec.external is not None
        cwd = workdir(spec.external.cwd, None)
        try:
            return self._spawn(argv, NEVER, name, env, ready_check=ready_check, cwd=cwd)
        except ServerStartError as exc:
            head, _, output = str(exc).partition("\n")
            raise ExternalLaneError(
                f"lane {lane}: the {role} command ({_short(argv)}) {head.rstrip(':')}; "
                f"its last lines (all in {self.run_dir / (name + '.log')}):\n{last_lines(output)}"
            ) from None
        except FileNotFoundError as exc:
            raise ExternalLaneError(
                f"lane {lane}: the {role} command cannot start: {exc.strerror}: {exc.filename}"
            ) from None

    def start_worker(self, name: str) -> ServerProcess:
        """Start one more worker for lane `name` (logged as worker-<lane>.<n>); wait until ready."""
        lane = self.lanes[name]
        log_name = f"worker-{name}.{self._worker_number(name)}"
        worker = self._start_worker(lane.spec, lane.env, log_name)
        lane.workers.append(worker)
        return worker

    def stop_broker(self, keep_data: bool) -> int:
        """Stop every broker the harness owns that a lane uses (`LocalBrokers.stop`)."""
        return self.brokers.stop(keep_data)

    def start_broker(self) -> int:
        """Start again what `stop_broker` stopped (`LocalBrokers.start_again`)."""
        with self._lock:
            if self._stopping:
                raise StackStopped("not starting the broker: the stack is stopping")
            self._broker_starts += 1
            count = self._broker_starts
        return self.brokers.start_again(count)

    def _spawn(
        self,
        argv: list[str],
        ready: re.Pattern[str],
        name: str,
        env: dict[str, str] | None = None,
        ready_check: Callable[[], bool] | None = None,
        cwd: Path | None = None,
    ) -> ServerProcess:
        self._refuse_when_stopping(f"starting {name}")
        return start_server(
            argv,
            ready,
            timeout_s=self.spec.start_timeout_s,
            env=env,
            log_path=self.run_dir / f"{name}.log",
            on_start=lambda process: self._own(name, process),
            ready_check=ready_check,
            cwd=cwd,
        )

    def _own(self, name: str, process: ServerProcess | None) -> None:
        """Remember a process as soon as it exists, ready or not.

        It is also listed in `processes.json`, for anyone cleaning up after a crash.
        """
        if process is None:
            return
        with self._lock:
            if self._stopping:  # launched just as the stack began to stop: its start fails now
                process.popen.terminate()
            self._processes[name] = process
            listing = {key: value.pid for key, value in self._processes.items()}
            partial = self.run_dir / "processes.json.partial"
            partial.write_text(json.dumps(listing, indent=2))
            partial.replace(self.run_dir / "processes.json")  # readers never see half a file

    def _write_mock_config(self) -> Path:
        """The mock serves every lane's business number, with the scenario's behaviours."""
        path = self.run_dir / "mock-config.json"
        return write_mock_config(path, len(self.spec.lanes), self.spec.mock_behaviours)

    def _lane_env(self, index: int, spec: LaneSpec) -> dict[str, str]:
        """The environment a deployment of this lane would have; lane settings win."""
        base, queue = self.brokers.connection(index, spec, self.run_id)
        return lane_env(
            self.spec,
            index,
            spec,
            run_id=self.run_id,
            api_url=self.mock_url,
            base=base,
            queue=queue,
        )

    def _route_status_webhooks(self) -> None:
        """Meta's per-number webhook override: each lane's statuses go to its own bot."""
        with MockAdmin(self.mock_url) as admin:
            webhooks = admin.get_behaviours()["webhooks"]
            webhooks["url_per_phone_number"] = {
                lane.phone_number_id: lane.webhook_url for lane in self.lanes.values()
            }
            admin.patch_behaviours({"webhooks": webhooks})

    # -- inspect -------------------------------------------------------------------------------

    def processes(self) -> dict[str, ServerProcess]:
        """Every process the stack started, by the name of its log file."""
        with self._lock:
            return dict(self._processes)

    def pids(self) -> set[int]:
        """The PIDs of every started process and of everything they forked (pool processes)."""
        pids: set[int] = set()
        for process in self.processes().values():
            with contextlib.suppress(psutil.NoSuchProcess):
                parent = psutil.Process(process.pid)
                pids.add(parent.pid)
                pids.update(child.pid for child in parent.children(recursive=True))
        return pids

    # -- stop ----------------------------------------------------------------------------------

    def _stop(self) -> None:
        """Workers first (warm shutdown), then webhooks, mock and broker; all by PID."""
        try:
            self._stop_processes()
        finally:
            with self._lock:
                proxies = list(self._proxies)
            for proxy in proxies:
                proxy.stop()

    def _stop_processes(self) -> None:
        started = self.processes()
        workers = [p for name, p in started.items() if name.startswith("worker-")]
        rest = [p for name, p in reversed(started.items()) if not name.startswith("worker-")]
        for group in (workers, rest):
            if group:
                with concurrent.futures.ThreadPoolExecutor(max_workers=len(group)) as pool:
                    list(pool.map(lambda process: process.stop(grace_s=10.0), group))
            if group is workers:  # the event receivers after the workers, before the broker
                for events in self._task_events.values():
                    events.stop()


def _short(argv: list[str], limit: int = 100) -> str:
    text = shlex.join(argv)
    return text if len(text) <= limit else text[: limit - 3] + "..."
