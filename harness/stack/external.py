"""External lanes: a bot the harness did not write, started from its own commands.

A lane names the commands of its webhook and worker (placeholders the harness fills, such
as `{broker_url}` and `{port}`), or the URL of a webhook already running. The harness
still owns the broker, the mock Cloud API, the requests, the checks and the report; it
starts the worker with task events on (`-E`) and follows them with Celery's own event
receiver, so the history needs nothing the bot itself writes.
"""

from __future__ import annotations

import re
import shlex
import string
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import RunError

# What a command, an `env` value or a `cwd` may name in braces.
PLACEHOLDERS = {
    "python": "the harness's Python interpreter",
    "broker_url": "the lane's broker",
    "api_url": "the mock Cloud API's base URL",
    "phone_number_id": "the lane's business phone number id",
    "token": "the Cloud API access token",
    "app_secret": "the app secret that signs webhook requests",
    "verify_token": "the webhook's verify token",
    "port": "a free port for the webhook",
    "pool": "the lane's pool",
    "concurrency": "the lane's concurrency (empty when unset)",
    "queue": "the lane's queue",
    "lane": "the lane's name",
    "parts": "the parts per request (the scenario's flow.messages)",
    "spacing_s": "seconds between parts (flow.spacing_s, time scaled)",
}
LOG_LINES = 15  # a failed start quotes the process's last lines
LOOPBACK_URL = re.compile(r"^https?://(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?(/|$)")


class ExternalLaneError(RunError):
    """An external lane that cannot run: the message names the lane and says why."""


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _known(text: str, what: str) -> str:
    try:
        unknown = sorted(_fields(text) - set(PLACEHOLDERS))
    except ValueError as exc:
        raise ValueError(
            f"{what}: {exc} in {text!r} (a literal brace is written {{{{ }}}})"
        ) from None
    if unknown:
        raise ValueError(
            f"{what}: unknown placeholder(s) {unknown}; allowed: {', '.join(PLACEHOLDERS)}"
        )
    return text


class External(BaseModel):
    """How to run and read a bot of one's own for one lane."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: str | None = Field(
        default=None, description="The webhook's command; it must listen on 127.0.0.1:{port}."
    )
    url: str | None = Field(
        default=None,
        description="The URL of a webhook already running (instead of `webhook`); it must "
        "queue onto the broker the harness gives the worker.",
    )
    webhook_path: str = Field(default="/webhook/", description="With `webhook`: the path.")
    worker: str = Field(description="The Celery worker's command; the harness adds -E.")
    cwd: str | None = Field(
        default=None, description="Where the commands run (relative: to the scenario's file)."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment.")
    part_regex: str | None = Field(
        default=None,
        description="Which part a sent text is: the regex's `seq` group (or first group). "
        "Unset: the order sent.",
    )
    first_seq: Annotated[int, Field(ge=0, le=1)] = Field(
        default=0, description="The number the bot gives its first part (0 or 1)."
    )
    keyword: str = Field(default="fixtures", description="The text that starts the flow.")

    @field_validator("webhook", "worker")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not shlex.split(value):
            raise ValueError("a command cannot be empty")
        return _known(value, "command")

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        bad = [name for name in env if not name.isidentifier() or name.upper() != name]
        if bad:
            raise ValueError(f"environment variable names must be UPPER_CASE, got {bad}")
        for name, value in env.items():
            _known(value, f"env {name}")
        return env

    @field_validator("part_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"part_regex {value!r} is not a regex: {exc}") from None
        if "seq" not in pattern.groupindex and pattern.groups == 0:
            raise ValueError(
                f"part_regex {value!r} needs a group for the part's number, e.g. (?P<seq>\\d+)"
            )
        return value

    @model_validator(mode="after")
    def _one_webhook(self) -> External:
        if (self.webhook is None) == (self.url is None):
            raise ValueError("give either `webhook` (a command) or `url` (one running), not both")
        if self.url is not None and not LOOPBACK_URL.match(self.url):
            raise ValueError(f"url {self.url!r}: only a webhook on 127.0.0.1 or ::1 is allowed")
        return self

    def seq_of(self, text: str | None) -> int | None:
        """The part a text is, by `part_regex` (None: no match, or no regex)."""
        if self.part_regex is None or text is None:
            return None
        match = re.search(self.part_regex, text)
        if match is None:
            return None
        raw = match.group("seq") if "seq" in match.re.groupindex else match.group(1)
        return int(raw) - self.first_seq if raw is not None and raw.isdigit() else None


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
    deadline = time.monotonic() + timeout_s
    while not answers(url):
        if time.monotonic() >= deadline:
            raise ExternalLaneError(
                f"lane {lane}: the webhook at {url} does not answer (tried for {timeout_s:g} s); "
                "start it first, or give the lane a `webhook` command"
            )
        time.sleep(0.2)


class TaskEvents:
    """Celery's task events from one lane's broker, as Celery's own event receiver sees them.

    Started before the worker (events sent before anyone listens are lost); `online_count`
    counts the workers that announced themselves: an external worker is ready when it grows.
    """

    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url
        self.events: list[dict[str, Any]] = []
        self.online_count = 0  # worker-online events: each worker announces itself once
        self._lock = threading.Lock()
        self._receiver: Any = None
        self._listening = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="task-events")

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        if not self._listening.wait(timeout_s):
            raise ExternalLaneError(f"no event receiver on {self.broker_url} in {timeout_s:g} s")
        if self._error is not None:
            raise ExternalLaneError(f"event receiver on {self.broker_url}: {self._error}")

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind == "worker-online":
            self.online_count += 1
        if kind.startswith("task-"):
            with self._lock:
                self.events.append(event)

    def _run(self) -> None:
        from celery import Celery

        app = Celery(broker=self.broker_url, set_as_current=False)
        try:
            with app.connection_for_read() as connection:
                receiver = app.events.Receiver(connection, handlers={"*": self._on_event})
                consume_ready = receiver.on_consume_ready

                def listening(*args: Any, **kwargs: Any) -> None:
                    self._listening.set()  # the queue is bound: no event is lost from here
                    consume_ready(*args, **kwargs)

                receiver.on_consume_ready = listening
                self._receiver = receiver
                receiver.capture(limit=None, timeout=None, wakeup=False)  # until should_stop
        except Exception as exc:
            self._error = exc
        finally:
            self._listening.set()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=5.0)
