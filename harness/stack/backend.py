"""What a run needs of a stack, whichever backend brings it up (local processes, compose).

The run triggers the flow through each lane's webhook, reads each lane's store and the
mock's journal, and the nemesis stops, kills and starts workers: these protocols are that
much and no more, so both backends drive the same run code (as httpx's transports share
`handle_request`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from ..bot.settings import BotSettings
from ..bot.store import Store
from ..errors import RunError
from .spec import LaneSpec

Backend = Literal["local", "compose"]
BACKENDS: tuple[Backend, ...] = ("local", "compose")


class StackError(RunError):
    """A stack could not be started; the message (one line) says why."""


class Worker(Protocol):
    """One worker of a lane: a process (local) or a container (compose)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def alive(self) -> bool: ...

    def stop(self, grace_s: float = 5.0) -> int | None:
        """Warm shutdown (SIGTERM), SIGKILL after `grace_s`; the exit code."""
        ...

    def kill(self) -> None:
        """SIGKILL the worker and its pool at once, as the OOM killer would."""
        ...


class Lane(Protocol):
    """A running lane as the run sees it: where to send, whom, and where the bot writes."""

    @property
    def name(self) -> str: ...

    @property
    def spec(self) -> LaneSpec: ...

    @property
    def settings(self) -> BotSettings: ...

    @property
    def webhook_url(self) -> str: ...

    @property
    def phone_number_id(self) -> str: ...

    @property
    def store(self) -> Store: ...

    @property
    def requests(self) -> list[tuple[str, str, float]]:
        """(correlation id, recipient, sent at) of each request sent to the lane."""
        ...

    @property
    def task_events(self) -> Any | None:
        """Celery's task events of an external lane (one's own bot); None for the replica."""
        ...

    @property
    def worker(self) -> Worker: ...

    def recipient(self, n: int = 0) -> str: ...

    def oldest_running_worker(self) -> Worker | None: ...


class Stack(Protocol):
    """Started once, stopped whatever happens; `start_worker` serves the nemesis."""

    run_dir: Path
    mock_url: str
    broker_versions: dict[str, str]  # per lane, what its broker said it is

    @property
    def lanes(self) -> Mapping[str, Lane]: ...

    def start(self) -> Stack: ...

    def stop(self) -> None: ...

    def start_worker(self, name: str) -> Worker: ...

    def stop_broker(self, keep_data: bool) -> int:
        """Stop the broker the lanes share (saved first with `keep_data`); its PID."""
        ...

    def start_broker(self) -> int:
        """Start again, where it was, what `stop_broker` stopped; the new PID."""
        ...
