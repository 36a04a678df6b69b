"""The bot's Cloud API client: send one text part and say what Meta's answer means.

`classify` is a pure function of the HTTP answer, so every answer Meta can give
is unit-tested without a network; `send_text` adds the request and the
transport errors (timeouts, resets), which are retried like throttling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import httpx

from .settings import BotSettings

# Meta codes worth another attempt: throttling (4, 80007, 130429, 131056) and
# temporary trouble on Meta's side (1, 2, 131000, 131016: service unavailable).
RETRYABLE_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131056})

Outcome = Literal["sent", "retry", "failed"]


@dataclass(frozen=True)
class SendResult:
    """What one attempt came to; `error` is short and human, `code` is Meta's."""

    outcome: Outcome
    wamid: str | None = None
    http_status: int | None = None
    code: int | None = None
    error: str | None = None


def make_client(settings: BotSettings) -> httpx.Client:
    """One client per worker process; a timeout of None waits forever, as old code did."""
    timeout = httpx.Timeout(
        connect=settings.whatsapp_connect_timeout_s,
        read=settings.whatsapp_read_timeout_s,
        write=settings.whatsapp_write_timeout_s,
        pool=settings.whatsapp_pool_timeout_s,
    )
    return httpx.Client(
        timeout=timeout,
        headers={"Authorization": f"Bearer {settings.whatsapp_access_token}"},
    )


def text_payload(recipient: str, body: str, message_id: str) -> dict[str, object]:
    """A text send that carries our message id back in every status webhook."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient,
        "type": "text",
        "text": {"preview_url": False, "body": body},
        "biz_opaque_callback_data": message_id,
    }


def classify(response: httpx.Response) -> SendResult:
    """Map one Cloud API answer to sent / retry / failed."""
    status = response.status_code
    try:
        data = response.json()
    except ValueError:
        data = None
    if status == 200:
        try:
            wamid = data["messages"][0]["id"]
        except (TypeError, KeyError, IndexError):
            wamid = None
        if not isinstance(wamid, str) or not wamid:
            return SendResult("failed", http_status=status, error="200 without a message id")
        return SendResult("sent", wamid=wamid, http_status=status)
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    code = code if isinstance(code, int) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = f"HTTP {status}" + (f" code {code}" if code is not None else "")
    text += f": {message}" if message else ""
    retry = status == 429 or status >= 500 or code in RETRYABLE_CODES
    return SendResult("retry" if retry else "failed", http_status=status, code=code, error=text)


def send_text(
    client: httpx.Client, settings: BotSettings, recipient: str, body: str, message_id: str
) -> SendResult:
    """POST one text part; a timeout or broken connection is worth a retry."""
    try:
        response = client.post(
            settings.messages_url, json=text_payload(recipient, body, message_id)
        )
    except httpx.TransportError as exc:
        return SendResult("retry", error=f"{type(exc).__name__}: {exc}".rstrip(": "))
    return classify(response)
