"""The local stack: broker, mock Cloud API, and per lane a bot webhook and a Celery worker.

Every part is a real process on 127.0.0.1 on a port chosen at run time, logs
to the run directory, is waited for by a condition (its ready line) and is
stopped by PID, whatever way the run ends.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import re
import secrets
import shlex
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import psutil

from mock_meta_api import server as mock_server
from mock_meta_api.config import DEFAULT_ACCESS_TOKEN, DEFAULT_APP_SECRET

from ..bot import serve as bot_server
from ..bot.settings import BotSettings
from ..bot.store import Store
from ..errors import RunError
from ..mock_admin import MockAdmin
from ..processes import ServerProcess, ServerStartError, start_server
from ..proxy import Proxy
from ..signals import deferred
from . import broker as brokers
from . import rabbitmq
from .envs import code_path
from .external import (
    ExternalLaneError,
    TaskEvents,
    answers,
    check_url,
    command_argv,
    last_lines,
    workdir,
    worker_argv,
)
from .spec import LaneSpec, StackSpec, phone_number_id, settings_from_env

# Celery logs "<name>@<host> ready." once the worker consumes.
WORKER_READY = re.compile(r"\S+@\S+ ready\.")
VERIFY_TOKEN = "stagger-verify-token"
URL_WAIT_S = 10.0  # a webhook said to be running gets this long to answer
NEVER = re.compile(r"(?!)")  # external processes are ready by a check, not a line


class StackStopped(RunError):
    """A process was not started because the stack is being stopped."""


@dataclass
class Lane:
    """A running lane: its settings as the bot sees them, its webhook and its workers.

    A lane starts with one worker; faults may stop it and start others (`workers` keeps
    every one started, oldest first).
    """

    spec: LaneSpec
    index: int
    env: dict[str, str]
    settings: BotSettings
    web: ServerProcess | None  # None: an external webhook already running
    workers: list[ServerProcess]
    external_url: str | None = None  # an external lane's webhook URL
    task_events: TaskEvents | None = None  # an external lane's Celery task events
    requests: list[tuple[str, str, float]] = field(default_factory=list)
    """(correlation id, recipient, sent at) of each request posted to the webhook."""
    proxies: dict[str, Proxy] = field(default_factory=dict)  # "broker", "api": network faults

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def worker(self) -> ServerProcess:
        """The newest worker."""
        return self.workers[-1]

    def oldest_running_worker(self) -> ServerProcess | None:
        return next((worker for worker in self.workers if worker.alive()), None)

    @property
    def webhook_url(self) -> str:
        if self.external_url is not None:
            return self.external_url
        assert self.web is not None
        return f"{self.web.url}/webhook"

    @property
    def phone_number_id(self) -> str:
        return self.settings.whatsapp_phone_number_id

    def recipient(self, n: int = 0) -> str:
        """The `n`th user of this lane: lanes never share recipients (pair rate limits)."""
        return f"4477{self.index:03d}{n:05d}"

    @functools.cached_property
    def store(self) -> Store:
        """The lane's outbox, events and statuses, as the bot keeps them (one client per lane)."""
        return Store(self.settings.store_url, self.settings.bot_key_prefix)


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


class LocalStack:
    """Start with `with LocalStack(spec, run_dir) as stack:`; everything stops on exit."""

    def __init__(self, spec: StackSpec, run_dir: Path) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.run_id = secrets.token_hex(4)
        self.broker: brokers.Broker | None = None  # the embedded Valkey (or --broker-url)
        self.rabbit: rabbitmq.RabbitNode | None = None
        self.broker_versions: dict[str, str] = {}  # per lane, what its broker said it is
        self.mock: ServerProcess | None = None
        self.mock_url = ""
        self.lanes: dict[str, Lane] = {}
        self._processes: dict[str, ServerProcess] = {}
        self._worker_starts: dict[str, int] = {}  # per lane, the initial worker included
        self._values: dict[str, dict[str, str]] = {}  # external lanes' placeholders
        self._task_events: dict[str, TaskEvents] = {}
        self._broker_starts = 1
        self._proxies: list[Proxy] = []
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bring everything up; on any failure (or Ctrl-C) stop what started, then re-raise.

        A stack starts once: starting it again would lose track of the first processes.
        """
        if self._started:
            raise RuntimeError("this stack was already started; make a new LocalStack")
        self._started = True
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_brokers(self) -> None:
        """Every broker the lanes name, each checked (or started) before any lane starts."""
        lanes = self.spec.lanes
        timeout_s = self.spec.start_timeout_s
        if any(lane.embedded_db for lane in lanes):
            if self.spec.broker_url is None:
                self.broker = brokers.start_embedded(self.run_dir, timeout_s=timeout_s)
                self._own("broker", self.broker.process)
            else:
                self.broker = brokers.external(self.spec.broker_url)
            shared = self.broker.version()
            self.broker_versions |= {lane.name: shared for lane in lanes if lane.broker == "valkey"}
        if any(lane.broker == "rabbitmq" and lane.broker_url is None for lane in lanes):
            settings = self.spec.rabbitmq
            self.rabbit = rabbitmq.start_node(
                self.run_dir,
                consumer_timeout_s=settings.consumer_timeout_s,
                check_interval_s=settings.check_interval_s,
                timeout_s=timeout_s,
                on_start=self._own,
            )
        for lane in lanes:
            if lane.broker == "redis":
                assert lane.broker_url is not None
                self.broker_versions[lane.name] = brokers.external(lane.broker_url).version()
            elif lane.broker == "rabbitmq":
                if lane.broker_url is None:
                    assert self.rabbit is not None
                    self.broker_versions[lane.name] = self.rabbit.version
                else:
                    self.broker_versions[lane.name] = rabbitmq.probe(lane.broker_url)

    def _start(self) -> None:
        self._start_brokers()
        # The mock's port is chosen now, so the lanes (configured with its URL) start with it:
        # start-up is mostly imports, and every process starts at once.
        mock_port = brokers.free_port()
        self.mock_url = f"http://127.0.0.1:{mock_port}"
        specs = list(enumerate(self.spec.lanes))
        envs = {spec.name: self._lane_env(index, spec) for index, spec in specs}
        proxies = {name: self._start_proxies(name, env, mock_port) for name, env in envs.items()}
        envs = {name: _through(env, proxies[name]) for name, env in envs.items()}
        settings = {name: settings_from_env(env) for name, env in envs.items()}
        for _, spec in specs:
            if spec.external is not None:
                self._prepare_external(spec, envs[spec.name])
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

    def _prepare_external(self, spec: LaneSpec, env: dict[str, str]) -> None:
        """Fill the lane's placeholders; listen to its task events before its worker starts."""
        assert spec.external is not None
        values = {
            "python": str(spec.python or sys.executable),
            "broker_url": env["CELERY_BROKER_URL"],
            "api_url": self.mock_url,
            "phone_number_id": env["WHATSAPP_PHONE_NUMBER_ID"],
            "token": env["WHATSAPP_ACCESS_TOKEN"],
            "app_secret": env["WHATSAPP_APP_SECRET"],
            "verify_token": env["WHATSAPP_VERIFY_TOKEN"],
            "port": str(brokers.free_port()),
            "pool": spec.pool,
            "concurrency": "" if spec.concurrency is None else str(spec.concurrency),
            "queue": env["CELERY_TASK_QUEUE"],
            "lane": spec.name,
            "parts": env.get("FIXTURES_PARTS", ""),
            "spacing_s": env.get("FIXTURES_SPACING_S", ""),
        }
        self._values[spec.name] = values
        env.update({name: value.format(**values) for name, value in spec.external.env.items()})
        events = TaskEvents(env["CELERY_BROKER_URL"])
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
        with self._lock:  # a failed start keeps its number: its log is not appended to
            self._worker_starts[name] = self._worker_starts.get(name, 1) + 1
            log_name = f"worker-{name}.{self._worker_starts[name]}"
        worker = self._start_worker(lane.spec, lane.env, log_name)
        lane.workers.append(worker)
        return worker

    def stop_broker(self, keep_data: bool) -> int:
        """Stop every broker the harness owns that a lane uses: the embedded Valkey (saved
        first with `keep_data`, else emptied) and its RabbitMQ node (with its database, or
        without). The PID of the Valkey, or of the node when no lane is on Valkey."""
        valkey, rabbit = self._owned_brokers()
        pids: list[int] = []
        if valkey:
            if self.broker is None or self.broker.process is None:
                raise brokers.BrokerError(
                    "the broker is external: only an embedded one is restarted"
                )
            pids.append(self.broker.process.pid)
            brokers.shut_down(self.broker, keep_data)
        if rabbit:
            assert self.rabbit is not None
            pids.append(self.rabbit.server.pid)
            rabbitmq.shut_down(self.rabbit, keep_data)
        if not pids:
            raise brokers.BrokerError("no lane runs on a broker the harness started")
        return pids[0]

    def start_broker(self) -> int:
        """Start again what `stop_broker` stopped, on the same ports, with what it kept; the
        PID of the Valkey, or of the RabbitMQ node when no lane is on Valkey."""
        valkey, rabbit = self._owned_brokers()
        with self._lock:
            if self._stopping:
                raise StackStopped("not starting the broker: the stack is stopping")
            self._broker_starts += 1
            count = self._broker_starts
        pids: list[int] = []
        if valkey:
            assert self.broker is not None
            name = f"broker.{count}"
            brokers.start_again(
                self.broker,
                self.run_dir / f"{name}.log",
                timeout_s=self.spec.start_timeout_s,
                on_start=lambda process: self._own(name, process),
            )
            assert self.broker.process is not None
            pids.append(self.broker.process.pid)
        if rabbit:
            assert self.rabbit is not None
            node = f"rabbitmq.{count}"
            rabbitmq.start_again(
                self.rabbit,
                self.run_dir / f"{node}.log",
                timeout_s=self.spec.start_timeout_s,
                on_start=lambda process: self._own(node, process),
            )
            pids.append(self.rabbit.server.pid)
        return pids[0]

    def _owned_brokers(self) -> tuple[bool, bool]:
        """(a lane is on the embedded Valkey, a lane is on the RabbitMQ node started here)."""
        lanes = self.spec.lanes
        valkey = any(lane.broker == "valkey" for lane in lanes)
        return valkey, self.rabbit is not None

    def _spawn(
        self,
        argv: list[str],
        ready: re.Pattern[str],
        name: str,
        env: dict[str, str] | None = None,
        ready_check: Callable[[], bool] | None = None,
        cwd: Path | None = None,
    ) -> ServerProcess:
        with self._lock:
            if self._stopping:
                raise StackStopped(f"not starting {name}: the stack is stopping")
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
        config = {
            "access_token": DEFAULT_ACCESS_TOKEN,
            "app_secret": DEFAULT_APP_SECRET,
            "phone_number_ids": [phone_number_id(index) for index in range(len(self.spec.lanes))],
            "behaviours": self.spec.mock_behaviours,
        }
        path.write_text(json.dumps(config, indent=2))
        return path

    def _store_url(self, index: int) -> str:
        """The lane's database of the embedded Valkey, or the shared external Redis."""
        assert self.broker is not None
        return self.broker.url if self.spec.broker_url else self.broker.url_for_db(index + 1)

    def _lane_env(self, index: int, spec: LaneSpec) -> dict[str, str]:
        """The environment a deployment of this lane would have; lane settings win.

        Lanes sharing a Redis database keep apart by key prefix (the bot's and kombu's);
        lanes sharing a RabbitMQ keep apart by queue (with the run in its name on a
        broker the harness does not own). On RabbitMQ the outbox and events stay in a
        Redis: the lane's database of the embedded Valkey.
        """
        prefix = f"stagger:{self.run_id}:{spec.name}:"
        queue = f"stagger-{spec.name}"
        env: dict[str, str] = {}
        if spec.broker == "valkey":
            env["CELERY_BROKER_URL"] = self._store_url(index)
            if self.spec.broker_url:  # lanes share the database: keep Celery's keys apart too
                env["CELERY_BROKER_GLOBAL_KEYPREFIX"] = prefix
        elif spec.broker == "redis":
            assert spec.broker_url is not None
            env["CELERY_BROKER_URL"] = spec.broker_url
            env["CELERY_BROKER_GLOBAL_KEYPREFIX"] = prefix
        else:
            env["CELERY_BROKER_URL"] = spec.broker_url or (self.rabbit.url if self.rabbit else "")
            env["BOT_REDIS_URL"] = self._store_url(index)
            if spec.broker_url:
                queue = f"stagger-{self.run_id}-{spec.name}"
        if spec.python is not None:  # its own environment: the bot's code from the harness
            env["PYTHONPATH"] = str(code_path())
        env |= {
            "BOT_KEY_PREFIX": prefix,
            "CELERY_TASK_QUEUE": queue,
            "WHATSAPP_API_URL": self.mock_url,
            "WHATSAPP_PHONE_NUMBER_ID": phone_number_id(index),
            "WHATSAPP_ACCESS_TOKEN": DEFAULT_ACCESS_TOKEN,
            "WHATSAPP_APP_SECRET": DEFAULT_APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        }
        if spec.pool_from_settings:
            env["CELERY_WORKER_POOL"] = spec.pool
        return env | self.spec.bot_env | spec.env

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

    def stop(self) -> None:
        """Stop workers first (warm shutdown), then webhooks, mock and broker; all by PID.

        A signal while stopping waits until every process is stopped (`signals.deferred`).
        """
        with deferred():
            with self._lock:
                self._stopping = True
            self._stop()

    def _stop(self) -> None:
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
        for lane in self.lanes.values():
            if "store" in vars(lane):  # the lane's Redis client, if anyone used it
                lane.store.redis.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _short(argv: list[str], limit: int = 100) -> str:
    text = shlex.join(argv)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _through(env: dict[str, str], proxies: dict[str, Proxy]) -> dict[str, str]:
    """A lane's environment with Celery's broker connection and the API's through its
    proxies; the bot's own store (outbox, events) stays direct, so the harness's evidence
    survives a network fault."""
    env = dict(env)
    if "broker" in proxies:
        env.setdefault("BOT_REDIS_URL", env["CELERY_BROKER_URL"])
        env["CELERY_BROKER_URL"] = _via(env["CELERY_BROKER_URL"], proxies["broker"])
    if "api" in proxies:
        env["WHATSAPP_API_URL"] = _via(env["WHATSAPP_API_URL"], proxies["api"])
    return env


def _via(url: str, proxy: Proxy | None) -> str:
    """`url` with its host and port replaced by the proxy's (unchanged without one)."""
    if proxy is None:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    auth = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=auth + proxy.url_host))
