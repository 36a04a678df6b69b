"""What the local and the compose stack share, written once: a stack is started once and
stopped whatever happens, a lane has one shape, one environment and its own recipients.

Each backend (`local`, `compose`) writes only what differs: how its parts come up
(`_start`), go down (`_stop`), and how a lane reaches its broker and the mock.
"""

from __future__ import annotations

import functools
import json
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from mock_meta_api.config import DEFAULT_ACCESS_TOKEN, DEFAULT_APP_SECRET

from ..bot.settings import BotSettings
from ..bot.store import Store
from ..errors import RunError
from ..proxy import through
from ..signals import deferred
from .backend import Worker
from .spec import LaneSpec, StackSpec, phone_number_id

VERIFY_TOKEN = "stagger-verify-token"

W = TypeVar("W", bound=Worker)


class StackStopped(RunError):
    """A part was not started because the stack is being stopped."""


def recipient_of(lane_index: int, n: int) -> str:
    """The `n`th user of the lane at `lane_index`: lanes never share recipients (pair limits)."""
    return f"4477{lane_index:03d}{n:05d}"


def key_prefix(run_id: str, lane: str) -> str:
    """The lane's keys in a shared Redis (the bot's, and kombu's where it shares too)."""
    return f"stagger:{run_id}:{lane}:"


def lane_env(
    spec: StackSpec,
    index: int,
    lane: LaneSpec,
    *,
    run_id: str,
    api_url: str,
    base: Mapping[str, str],
    queue: str | None = None,
) -> dict[str, str]:
    """The environment a deployment of this lane would have: `base` (how the backend's
    lane reaches its broker and store), the bot's settings, then the scenario's bot
    settings and the lane's own, which win."""
    env = dict(base)
    env |= {
        "BOT_KEY_PREFIX": key_prefix(run_id, lane.name),
        "CELERY_TASK_QUEUE": queue or f"stagger-{lane.name}",
        "WHATSAPP_API_URL": api_url,
        "WHATSAPP_PHONE_NUMBER_ID": phone_number_id(index),
        "WHATSAPP_ACCESS_TOKEN": DEFAULT_ACCESS_TOKEN,
        "WHATSAPP_APP_SECRET": DEFAULT_APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
    }
    if lane.pool_from_settings:
        env["CELERY_WORKER_POOL"] = lane.pool
    return env | spec.bot_env | lane.env


# The variable each network-fault target's URL is in, in a lane's environment.
URL_VARIABLE = {"broker": "CELERY_BROKER_URL", "api": "WHATSAPP_API_URL"}


def through_proxies(env: Mapping[str, str], hosts: Mapping[str, str]) -> dict[str, str]:
    """A lane's environment with Celery's broker connection and the API's through the
    proxies at `hosts` (target: host:port); the bot's own store (BOT_REDIS_URL: outbox,
    events) stays on the broker itself, so the harness's evidence survives a network
    fault."""
    out = dict(env)
    if "broker" in hosts:
        out.setdefault("BOT_REDIS_URL", out[URL_VARIABLE["broker"]])
    for target, host_port in hosts.items():
        out[URL_VARIABLE[target]] = through(out[URL_VARIABLE[target]], host_port)
    return out


def write_mock_config(path: Path, lanes: int, behaviours: Mapping[str, Any]) -> Path:
    """The mock's configuration: every lane's business number, the scenario's behaviours."""
    config = {
        "access_token": DEFAULT_ACCESS_TOKEN,
        "app_secret": DEFAULT_APP_SECRET,
        "phone_number_ids": [phone_number_id(index) for index in range(lanes)],
        "behaviours": dict(behaviours),
    }
    path.write_text(json.dumps(config, indent=2))
    return path


@dataclass(kw_only=True)
class LaneCore(Generic[W]):
    """A running lane: its settings as the bot sees them, its workers and where its store
    is. A lane starts with one worker; faults may stop it and start others (`workers`
    keeps every one started, oldest first)."""

    spec: LaneSpec
    index: int
    env: dict[str, str]
    settings: BotSettings
    store_url: str  # where the harness reads the lane's outbox and events
    workers: list[W]
    requests: list[tuple[str, str, float]] = field(default_factory=list)
    """(correlation id, recipient, sent at) of each request posted to the webhook."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def worker(self) -> W:
        """The newest worker."""
        return self.workers[-1]

    def oldest_running_worker(self) -> W | None:
        return next((worker for worker in self.workers if worker.alive()), None)

    @property
    def phone_number_id(self) -> str:
        return self.settings.whatsapp_phone_number_id

    def recipient(self, n: int = 0) -> str:
        """The `n`th user of this lane: lanes never share recipients (pair rate limits)."""
        return recipient_of(self.index, n)

    @functools.cached_property
    def store(self) -> Store:
        """The lane's outbox, events and statuses, as the bot keeps them (one client per lane)."""
        return Store(self.store_url, self.settings.bot_key_prefix)

    def close(self) -> None:
        """Close the lane's Redis client, if anyone used it."""
        if "store" in vars(self):
            self.store.redis.close()


L = TypeVar("L", bound=LaneCore[Any])


class StackCore(ABC, Generic[L]):
    """Start with `with <Backend>Stack(spec, run_dir) as stack:`; everything stops on exit.

    A stack starts once (starting it again would lose track of what the first start
    made); any failure or Ctrl-C while starting stops what started, then is raised. A
    signal while stopping waits until the stop is done (`signals.deferred`).
    """

    def __init__(self, spec: StackSpec, run_dir: Path) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.run_id = secrets.token_hex(4)
        self.broker_versions: dict[str, str] = {}  # per lane, what its broker said it is
        self.mock_url = ""
        self._lanes: dict[str, L] = {}
        self._worker_starts: dict[str, int] = {}  # per lane, the initial worker included
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False

    @property
    def lanes(self) -> dict[str, L]:
        return self._lanes

    def start(self) -> Self:
        """Bring everything up; on any failure (or Ctrl-C) stop what started, then re-raise."""
        if self._started:
            raise RunError(f"this stack was already started; make a new {type(self).__name__}")
        self._started = True
        self._prepare()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything that started, whatever state the start reached."""
        with deferred():
            with self._lock:
                self._stopping = True
            try:
                self._stop()
            finally:
                for lane in self._lanes.values():
                    lane.close()

    def _prepare(self) -> None:
        """What is checked and made before anything starts (nothing to stop if it fails)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def _start(self) -> None:
        """Bring the backend's parts up and fill `lanes`."""

    @abstractmethod
    def _stop(self) -> None:
        """Stop or remove every part started, however far `_start` got."""

    def _refuse_when_stopping(self, doing: str) -> None:
        """StackStopped ("not <doing>: the stack is stopping") once the stop has begun:
        what started then could be missed by the stop, and outlive the stack."""
        with self._lock:
            if self._stopping:
                raise StackStopped(f"not {doing}: the stack is stopping")

    def _worker_number(self, lane: str) -> int:
        """The number of the lane's next worker (2 for the first the nemesis starts); a
        failed start keeps its number, so its log is never appended to."""
        with self._lock:
            if self._stopping:
                raise StackStopped(f"not starting a worker for {lane}: the stack is stopping")
            self._worker_starts[lane] = self._worker_starts.get(lane, 1) + 1
            return self._worker_starts[lane]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
