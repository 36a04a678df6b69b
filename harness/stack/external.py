"""External lanes: a bot the harness did not write, started from its own commands.

A lane names the commands of its webhook and worker (placeholders the harness fills, such
as `{broker_url}` and `{port}`), or the URL of a webhook already running (the scenario's
`External`, `harness.scenario.external`). The harness
still owns the broker, the mock Cloud API, the requests, the checks and the report; it
starts the worker with task events on (`-E`) and follows them with Celery's own event
receiver, so the history needs nothing the bot itself writes.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import RunError
from ..waiting import DeadlineExceeded, wait_for

if TYPE_CHECKING:
    from .spec import LaneSpec

LOG_LINES = 15  # a failed start quotes the process's last lines
RECONNECT_S = 0.2  # the event receiver, between tries to reach a broker that went away


class ExternalLaneError(RunError):
    """An external lane that cannot run: the message names the lane and says why."""


def placeholders(
    lane: LaneSpec, env: Mapping[str, str], *, python: str, api_url: str, port: int
) -> dict[str, str]:
    """What a lane's commands, `env` and `cwd` may name in braces, from the lane's
    environment: one meaning on either backend (on compose, as seen inside the stack)."""
    return {
        "python": python,
        "broker_url": env["CELERY_BROKER_URL"],
        "api_url": api_url,
        "phone_number_id": env["WHATSAPP_PHONE_NUMBER_ID"],
        "token": env["WHATSAPP_ACCESS_TOKEN"],
        "app_secret": env["WHATSAPP_APP_SECRET"],
        "verify_token": env["WHATSAPP_VERIFY_TOKEN"],
        "port": str(port),
        "pool": lane.pool,
        "concurrency": "" if lane.concurrency is None else str(lane.concurrency),
        "queue": env["CELERY_TASK_QUEUE"],
        "lane": lane.name,
        "parts": env.get("FIXTURES_PARTS", ""),
        "spacing_s": env.get("FIXTURES_SPACING_S", ""),
    }


def fill(text: str, values: dict[str, str]) -> str:
    return text.format(**values)


def command_argv(command: str, values: dict[str, str]) -> list[str]:
    """The command split as a shell would, each word's placeholders filled."""
    return [fill(word, values) for word in shlex.split(command)]


def worker_argv(command: str, values: dict[str, str]) -> list[str]:
    """The worker's command with task events on: the history is built from them."""
    argv = command_argv(command, values)
    if not {"-E", "--task-events"} & set(argv):
        argv.append("-E")
    return argv


def workdir(cwd: str | None, scenario_dir: Path | None) -> Path | None:
    if cwd is None:
        return None
    path = Path(cwd)
    return path if path.is_absolute() or scenario_dir is None else scenario_dir / path


def last_lines(output: str, n: int = LOG_LINES) -> str:
    lines = [line for line in output.splitlines() if line.strip()][-n:]
    return "\n".join(f"    {line}" for line in lines) or "    (it printed nothing)"


def answers(url: str, timeout_s: float = 1.0) -> bool:
    """Any HTTP answer (even 404 or 405) means a server listens there."""
    try:
        httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return True


def check_url(lane: str, url: str, timeout_s: float) -> None:
    """A webhook already running must answer before the run starts."""
    try:
        wait_for(lambda: answers(url), timeout_s=timeout_s, interval_s=0.2)
    except DeadlineExceeded:
        raise ExternalLaneError(
            f"lane {lane}: the webhook at {url} does not answer (tried for {timeout_s:g} s); "
            "start it first, or give the lane a `webhook` command"
        ) from None


class TaskEvents:
    """Celery's task events from one lane's broker, as Celery's own event receiver sees them.

    Started before the worker (events sent before anyone listens are lost); `online_count`
    counts the workers that announced themselves: an external worker is ready when it grows.
    A broker that goes away (a fault) ends the receiver's connection: it connects again
    until stopped (`reconnects` counts how often), so the events after the outage are heard;
    those sent while it was down are lost, as they are to Flower.
    """

    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url
        self.events: list[dict[str, Any]] = []
        # Workers by (hostname, pid): a worker announces itself again when its consumer
        # restarts after a lost connection, and that is no new worker.
        self._online: set[tuple[str, int]] = set()
        self.reconnects = 0
        self._lock = threading.Lock()
        self._receiver: Any = None
        self._listening = threading.Event()
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self._last_connection_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="task-events")

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        if not self._listening.wait(timeout_s):
            why = self._last_connection_error
            detail = "" if why is None else f" (last: {why})"
            raise ExternalLaneError(
                f"no event receiver on {self.broker_url} in {timeout_s:g} s{detail}"
            )
        if self._error is not None:
            raise ExternalLaneError(f"event receiver on {self.broker_url}: {self._error}")

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind == "worker-online":
            with self._lock:
                self._online.add((str(event.get("hostname")), int(event.get("pid") or 0)))
        if kind.startswith("task-"):
            with self._lock:
                self.events.append(event)

    def _run(self) -> None:
        from celery import Celery
        from kombu.exceptions import OperationalError

        app = Celery(broker=self.broker_url, set_as_current=False)
        try:
            while not self._stopped.is_set():
                with app.connection_for_read() as connection:
                    lost = (
                        OperationalError,  # no connection made (kombu's wrapping)
                        *connection.connection_errors,
                        *connection.channel_errors,
                    )
                    try:
                        self._capture(app, connection)
                    except lost as exc:  # the broker went away: connect again
                        self._last_connection_error = exc
                        if self._listening.is_set():
                            self.reconnects += 1
                        self._stopped.wait(RECONNECT_S)
        except Exception as exc:
            self._error = exc
            self._listening.set()
        finally:
            app.close()

    def _capture(self, app: Any, connection: Any) -> None:
        """Events until stopped, or until the connection is lost (raised)."""
        connection.ensure_connection(max_retries=0)  # one try: `_run` retries, stoppably
        receiver = app.events.Receiver(connection, handlers={"*": self._on_event})
        receiver.connect_max_retries = 0  # its own connection (a clone) too
        consume_ready = receiver.on_consume_ready

        def listening(*args: Any, **kwargs: Any) -> None:
            self._listening.set()  # the queue is bound: no event is lost from here
            consume_ready(*args, **kwargs)

        receiver.on_consume_ready = listening
        self._receiver = receiver
        if self._stopped.is_set():  # stopped while connecting
            return
        receiver.capture(limit=None, timeout=None, wakeup=False)  # until should_stop

    @property
    def online_count(self) -> int:
        """How many workers announced themselves (`worker-online`), each counted once."""
        with self._lock:
            return len(self._online)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def stop(self) -> None:
        self._stopped.set()
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=5.0)
