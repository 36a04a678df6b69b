"""`send_whatsapp_message`: load one outbox part, POST it to the Cloud API, record the answer."""

from __future__ import annotations

import logging
import threading
import time

import httpx
from celery import Celery, Task
from celery.signals import worker_process_init, worker_ready

from .cloud_api import make_client, send_text
from .settings import BotSettings
from .store import Store

SEND_TASK = "bot.send_whatsapp_message"
logger = logging.getLogger("bot.tasks")


class ClientHolder:
    """One httpx client per worker process, thread-safe, made when the process starts.

    Making a client costs about 0.1 s (its SSL context); made on the first send, that
    cost would land on part 0 as lateness. A production worker that has been up for a
    while has paid it long ago, so each worker process makes its client when it is ready.
    """

    def __init__(self, settings: BotSettings) -> None:
        self._settings = settings
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        uid = f"bot-client-{id(self)}"
        worker_process_init.connect(self._fresh, weak=False, dispatch_uid=f"{uid}-fork")
        worker_ready.connect(self._warm, weak=False, dispatch_uid=f"{uid}-ready")

    def get(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = make_client(self._settings)
            return self._client

    def _fresh(self, **_: object) -> None:
        """A forked pool process must not share its parent's connections: make its own."""
        self._client = None
        self.get()

    def _warm(self, **_: object) -> None:
        self.get()


def backoff_s(retries: int, settings: BotSettings) -> float:
    """Exponential backoff: base, 2x base, 4x base ... capped."""
    return min(settings.send_retry_backoff_max_s, settings.send_retry_backoff_s * 2**retries)


def register_send_task(app: Celery, settings: BotSettings, store: Store) -> Task:
    """Define the send task on `app`, bound to these settings and this store."""
    clients = ClientHolder(settings)

    @app.task(
        bind=True,
        name=SEND_TASK,
        rate_limit=settings.send_rate_limit,
        max_retries=settings.send_max_retries,
        ignore_result=True,
        shared=False,  # this app's task only: never registered on another bot's app
    )
    def send_whatsapp_message(self: Task, message_id: str) -> str:
        logger.info("TASK START %s", message_id)
        record = store.start_attempt(message_id)
        if record is None:
            logger.error("TASK MISSING %s: no outbox record", message_id)
            return "missing"
        result = send_text(clients.get(), settings, record.recipient, record.body, message_id)
        if result.outcome == "sent":
            store.update(
                message_id,
                state="sent",
                wamid=result.wamid,
                sent_at=time.time(),
                last_error=None,
                error_code=None,
            )
            logger.info("TASK SENT %s %s", message_id, result.wamid)
            return "sent"
        retries = self.request.retries or 0
        if result.outcome == "retry" and retries < settings.send_max_retries:
            delay = backoff_s(retries, settings)
            store.update(
                message_id, state="queued", last_error=result.error, error_code=result.code
            )
            logger.warning("TASK RETRY %s in %.1f s: %s", message_id, delay, result.error)
            raise self.retry(countdown=delay)
        store.update(message_id, state="failed", last_error=result.error, error_code=result.code)
        logger.error("TASK FAILED %s: %s", message_id, result.error)
        return "failed"

    return send_whatsapp_message
