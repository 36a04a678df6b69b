"""A thin client for a running mock: Graph sends and the /_mock admin routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from harness.mock_admin import MockAdmin
from harness.waiting import wait_for
from mock_meta_api.config import DEFAULT_ACCESS_TOKEN, DEFAULT_PHONE_NUMBER_ID

TOKEN = DEFAULT_ACCESS_TOKEN
PHONE_ID = DEFAULT_PHONE_NUMBER_ID
MESSAGES = f"/v21.0/{PHONE_ID}/messages"
RECIPIENT = "15551234567"

# The journal uses the wall clock (time.time), which NTP may slew by up to 500 ppm
# against the monotonic clock the mock sleeps on: a wall-clock interval can read
# that much shorter than the delay really was.
MAX_SLEW = 1e-3


def at_least(wall_interval_s: float, configured_s: float) -> bool:
    """A wall-clock interval is no shorter than `configured_s`, up to clock slew."""
    return wall_interval_s >= configured_s * (1 - MAX_SLEW)


def text_message(body: str = "hello", to: str = RECIPIENT, **extra: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}} | (
        extra
    )


class MockAPI(MockAdmin):
    """One server's URL plus an httpx client on it (loopback, real sockets)."""

    def __init__(self, url: str, token: str = TOKEN) -> None:
        super().__init__(url)
        self.token = token

    def client(self, **options: Any) -> httpx.Client:
        """A separate client on the same server (e.g. with its own timeouts)."""
        return httpx.Client(base_url=self.url, **options)

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def send(self, payload: Any = None, *, client: httpx.Client | None = None) -> httpx.Response:
        return (client or self.http).post(
            MESSAGES, json=text_message() if payload is None else payload, headers=self.auth()
        )

    def wait_journal(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 5.0
    ) -> list[dict[str, Any]]:
        """Poll the journal until `predicate` holds (short poll interval, hard deadline)."""
        return wait_for(
            self.journal, predicate, timeout_s=timeout_s, interval_s=0.02, what="journal"
        )

    def behaviours(self, behaviours: dict[str, Any]) -> dict[str, Any]:
        """Replace all behaviours (unset sections go back to their defaults)."""
        return self.put_behaviours(behaviours)

    def reset(self) -> None:
        """Default behaviours and an empty journal."""
        self.put_behaviours({})
        super().reset()
