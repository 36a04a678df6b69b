"""The `celery -A harness.bot.worker worker` target: the bot's Celery app from the environment.

With WORKER_READY_FILE set, the worker creates that file once it consumes (Celery's
`worker_ready`, when it logs "ready.") and removes it on shutdown: a container's
healthcheck tests for the file instead of starting a Python process every few seconds.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from .app import create_bot
from .settings import SettingsError, load_settings

try:
    bot = create_bot(load_settings())
except SettingsError as exc:
    print(exc, file=sys.stderr)
    raise SystemExit(2) from None

app = bot.celery
READY_FILE = os.environ.get("WORKER_READY_FILE")


@worker_ready.connect(weak=False)
def _mark_ready(**_: Any) -> None:
    if READY_FILE:
        Path(READY_FILE).touch()


@worker_shutdown.connect(weak=False)
def _mark_stopping(**_: Any) -> None:
    if READY_FILE:
        with contextlib.suppress(FileNotFoundError):
            Path(READY_FILE).unlink()
