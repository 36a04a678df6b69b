"""Worker events from Celery's signals, written to the store as they happen.

A run can then be rebuilt without parsing logs: per task when the worker
received it (with its ETA), started and finished it, in which process, pool
and host, whether gevent or eventlet had patched the socket module, and the
versions of Celery, kombu and friends the worker runs with.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import metadata
from typing import Any

from celery import Celery
from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_received,
    task_retry,
    worker_init,
    worker_ready,
    worker_shutdown,
)

from .store import Store

# Celery's pool classes live in modules named after the pool (`thread` is the threads pool).
POOL_MODULES = {
    "thread": "threads",
    "prefork": "prefork",
    "solo": "solo",
    "gevent": "gevent",
    "eventlet": "eventlet",
}
# What a worker reports of itself at start-up: a lane may run its own Celery release.
REPORTED_PACKAGES = ("celery", "kombu", "amqp", "redis", "billiard", "gevent", "eventlet")


def pool_name(pool_cls: object) -> str:
    """`celery.concurrency.thread:TaskPool` (class or dotted name) -> `threads`."""
    dotted = pool_cls if isinstance(pool_cls, str) else getattr(pool_cls, "__module__", "")
    module = str(dotted).split(":")[0].rsplit(".", 1)[-1]
    return POOL_MODULES.get(module, module or "unknown")


def gevent_patched() -> bool:
    """True when gevent has replaced the socket module (only `-P gevent` on argv does it)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("socket"))


def eventlet_patched() -> bool:
    """True when eventlet has replaced the socket module (only `-P eventlet` on argv does it)."""
    patcher = sys.modules.get("eventlet.patcher")
    return bool(patcher is not None and patcher.is_monkey_patched("socket"))


def package_versions() -> dict[str, str]:
    """The versions this worker runs with, from package metadata (nothing is imported)."""
    found = {"python": platform.python_version()}
    for package in REPORTED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


class WorkerEvents:
    """Connects the signal handlers of one app; events of other apps are ignored."""

    def __init__(self, app: Celery, store: Store) -> None:
        self.app = app
        self.store = store
        self.pool = "unknown"
        self.hostname = ""
        self.concurrency: int | None = None
        uid = f"bot-events-{id(app)}"
        worker_init.connect(self._worker_init, weak=False, dispatch_uid=f"{uid}-init")
        worker_ready.connect(self._worker_ready, weak=False, dispatch_uid=f"{uid}-ready")
        worker_shutdown.connect(self._worker_shutdown, weak=False, dispatch_uid=f"{uid}-down")
        task_received.connect(self._received, weak=False, dispatch_uid=f"{uid}-received")
        task_prerun.connect(self._started, weak=False, dispatch_uid=f"{uid}-started")
        task_postrun.connect(self._finished, weak=False, dispatch_uid=f"{uid}-finished")
        task_retry.connect(self._retry, weak=False, dispatch_uid=f"{uid}-retry")
        task_failure.connect(self._failure, weak=False, dispatch_uid=f"{uid}-failure")

    def _record(self, event: str, **fields: Any) -> None:
        self.store.record_event(
            {
                "event": event,
                "at": time.time(),
                "pid": os.getpid(),
                "pool": self.pool,
                "hostname": self.hostname,
                **fields,
            }
        )

    def _ours(self, task: Any) -> bool:
        return getattr(task, "app", None) is self.app

    @staticmethod
    def _message_id(args: Any) -> str | None:
        return str(args[0]) if args else None

    def _worker_init(self, sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not self.app:
            return
        self.pool = pool_name(getattr(sender, "pool_cls", ""))
        self.hostname = str(getattr(sender, "hostname", ""))
        self.concurrency = getattr(sender, "concurrency", None)

    def _worker_ready(self, sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is self.app:
            controller = getattr(sender, "controller", None)  # pool and concurrency now resolved
            self.pool = pool_name(getattr(controller, "pool_cls", self.pool))
            self.concurrency = getattr(controller, "concurrency", self.concurrency)
            self._record(
                "worker_ready",
                concurrency=self.concurrency,
                gevent_patched=gevent_patched(),
                eventlet_patched=eventlet_patched(),
                broker=str(self.app.conf.broker_url).split("://", 1)[0],
                versions=package_versions(),
            )

    def _worker_shutdown(self, sender: Any = None, **_: Any) -> None:
        if self.hostname:
            self._record("worker_shutdown")

    def _received(self, request: Any = None, **_: Any) -> None:
        if not self._ours(getattr(request, "task", None)):
            return
        eta = getattr(request, "eta", None)
        self._record(
            "received",
            task_id=request.id,
            message_id=self._message_id(request.args),
            eta=eta.timestamp() if eta is not None and hasattr(eta, "timestamp") else eta,
            retries=request.request_dict.get("retries", 0),
        )

    def _started(self, task_id: str = "", task: Any = None, args: Any = (), **_: Any) -> None:
        if self._ours(task):
            self._record(
                "started",
                task_id=task_id,
                message_id=self._message_id(args),
                retries=task.request.retries,
            )

    def _finished(
        self, task_id: str = "", task: Any = None, args: Any = (), state: Any = None, **_: Any
    ) -> None:
        if self._ours(task):
            self._record(
                "finished", task_id=task_id, message_id=self._message_id(args), state=state
            )

    def _retry(self, sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
        if self._ours(sender):
            self._record(
                "retry",
                task_id=getattr(request, "id", None),
                message_id=self._message_id(getattr(request, "args", ())),
                reason=str(reason),
            )

    def _failure(
        self, sender: Any = None, task_id: str = "", exception: Any = None, args: Any = (), **_: Any
    ) -> None:
        if self._ours(sender):
            self._record(
                "failure",
                task_id=task_id,
                message_id=self._message_id(args),
                error=f"{type(exception).__name__}: {exception}",
            )
