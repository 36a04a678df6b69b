"""Status webhooks: sent -> delivered -> read (or failed), signed like Meta signs them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from dataclasses import dataclass

import httpx
import orjson
from pydantic import BaseModel

from .config import StatusFailure, Webhooks
from .errors import CATALOGUE, title_of


def business_scoped_user_id(waba_id: str, wa_id: str) -> str:
    """A stable BSUID for a recipient, in Meta's `CC.digits` form (the mock always says US)."""
    digest = hashlib.sha256(f"{waba_id}:{wa_id}".encode()).digest()
    return f"US.{int.from_bytes(digest[:8], 'big')}"


def sign(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What a status webhook needs to know about an accepted send."""

    wamid: str
    phone_number_id: str
    recipient: str
    biz_opaque_callback_data: str | None


class Delivery(BaseModel):
    """One attempt to post one status to the receiver."""

    wamid: str
    status: str
    attempt: int
    at: float
    http_status: int | None = None
    error: str | None = None
    delivered: bool = False


class StatusWebhooks:
    """Posts status updates for accepted sends, one task per message, bounded retries."""

    def __init__(
        self,
        app_secret: str,
        waba_id: str,
        display_phone_number: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._app_secret = app_secret
        self._waba_id = waba_id
        self._display = display_phone_number
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random()
        self.deliveries: list[Delivery] = []

    def reseed(self, seed: int | None) -> None:
        self._rng = random.Random(seed)

    def schedule(self, behaviour: Webhooks, message: SentMessage) -> None:
        """Queue the status sequence for `message` (nothing when no URL is set)."""
        url = behaviour.url_for(message.phone_number_id)
        if url is None:
            return
        failure = self._failure_for(behaviour.failures, message.recipient)
        task = asyncio.get_running_loop().create_task(self._run(behaviour, url, message, failure))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _failure_for(self, failures: list[StatusFailure], recipient: str) -> StatusFailure | None:
        for rule in failures:
            if rule.recipient in (None, recipient) and self._rng.random() < rule.probability:
                return rule
        return None

    async def _run(
        self, behaviour: Webhooks, url: str, message: SentMessage, failure: StatusFailure | None
    ) -> None:
        if failure is not None:
            steps = [("failed", behaviour.sent_delay_s or 0.0)]
        else:
            steps = [
                (status, delay)
                for status, delay in (
                    ("sent", behaviour.sent_delay_s),
                    ("delivered", behaviour.delivered_delay_s),
                    ("read", behaviour.read_delay_s),
                )
                if delay is not None
            ]
        for status, delay in steps:
            await asyncio.sleep(delay)
            body = orjson.dumps(self.payload(message, status, failure))
            await self._post(behaviour, url, message.wamid, status, body)

    async def _post(
        self, behaviour: Webhooks, url: str, wamid: str, status: str, body: bytes
    ) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(body, self._app_secret),
            "User-Agent": "facebookexternalua",
        }
        client = self._http()
        for attempt in range(1, behaviour.max_attempts + 1):
            record = Delivery(wamid=wamid, status=status, attempt=attempt, at=time.time())
            self.deliveries.append(record)
            try:
                answer = await client.post(
                    url, content=body, headers=headers, timeout=behaviour.timeout_s
                )
                record.http_status = answer.status_code
                record.delivered = answer.is_success
            except httpx.HTTPError as exc:
                record.error = f"{type(exc).__name__}: {exc}"
            if record.delivered:
                return
            if attempt < behaviour.max_attempts:
                await asyncio.sleep(behaviour.retry_backoff_s * 2 ** (attempt - 1))

    def payload(self, message: SentMessage, status: str, failure: StatusFailure | None) -> dict:
        """Meta's `statuses[]` webhook body for one status of one message.

        Since Meta's BSUID rollout (31 March 2026) sent/delivered/read statuses also
        carry the recipient's business-scoped user ID and a `contacts` entry; failed
        statuses of messages sent to a phone number carry neither.
        """
        user_id = business_scoped_user_id(self._waba_id, message.recipient)
        entry: dict = {
            "id": message.wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": message.recipient,
        }
        if failure is None:
            entry["recipient_user_id"] = user_id
        if message.biz_opaque_callback_data is not None:
            entry["biz_opaque_callback_data"] = message.biz_opaque_callback_data
        if status in ("sent", "delivered"):
            entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "utility"}
        if failure is not None:
            title = title_of(failure.code)
            details = CATALOGUE.get(failure.code, ("", "", title))[2]
            entry["errors"] = [
                {
                    "code": failure.code,
                    "title": title,
                    "message": title,
                    "error_data": {"details": details},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }
            ]
        value: dict = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self._display,
                "phone_number_id": message.phone_number_id,
            },
        }
        if failure is None:
            value["contacts"] = [{"wa_id": message.recipient, "user_id": user_id}]
        value["statuses"] = [entry]
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": self._waba_id, "changes": [{"value": value, "field": "messages"}]}],
        }

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self._transport)
        return self._client

    @property
    def pending(self) -> int:
        """Messages whose status sequence is still running."""
        return len(self._tasks)

    async def drain(self, within_s: float) -> bool:
        """Wait for scheduled webhooks to finish; False if some are still running."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=within_s)
        return not pending

    def clear(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.deliveries.clear()

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
