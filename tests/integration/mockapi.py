"""A thin client for a running mock: Graph sends and the /_mock admin routes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

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


class MockAPI:
    """One server's URL plus an httpx client on it (loopback, real sockets)."""

    def __init__(self, url: str, token: str = TOKEN) -> None:
        self.url = url
        self.token = token
        self.http = httpx.Client(base_url=url, timeout=10)

    def close(self) -> None:
        self.http.close()

    def client(self, **options: Any) -> httpx.Client:
        """A separate client on the same server (e.g. with its own timeouts)."""
        return httpx.Client(base_url=self.url, **options)

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def send(self, payload: Any = None, *, client: httpx.Client | None = None) -> httpx.Response:
        return (client or self.http).post(
            MESSAGES, json=text_message() if payload is None else payload, headers=self.auth()
        )

    # -- admin ---------------------------------------------------------------

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        answer = self.http.get("/_mock/journal", params=filters)
        answer.raise_for_status()
        return answer.json()["entries"]

    def wait_journal(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 5.0
    ) -> list[dict[str, Any]]:
        """Poll the journal until `predicate` holds (short poll interval, hard deadline)."""
        deadline = time.monotonic() + timeout_s
        while not predicate(entries := self.journal()):
            if time.monotonic() > deadline:
                raise AssertionError(f"journal condition not met within {timeout_s} s: {entries}")
            time.sleep(0.02)
        return entries

    def behaviours(self, behaviours: dict[str, Any]) -> dict[str, Any]:
        """Replace all behaviours (unset sections go back to their defaults)."""
        answer = self.http.put("/_mock/behaviours", json=behaviours)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def reset(self) -> None:
        self.behaviours({})
        assert self.http.post("/_mock/reset").json() == {"reset": True}

    def health(self) -> dict[str, Any]:
        answer = self.http.get("/_mock/health")
        answer.raise_for_status()
        return answer.json()
