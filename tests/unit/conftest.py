"""Unit-test helpers: the mock app in-process, a webhook receiver app, polling with a deadline.

Everything here runs in one event loop with no sockets: the mock is driven
through `httpx.ASGITransport`, and its status webhooks are delivered through
another `httpx.ASGITransport` to a tiny Starlette receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mock_meta_api import create_app
from mock_meta_api.config import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_APP_SECRET,
    DEFAULT_PHONE_NUMBER_ID,
    MockConfig,
)
from mock_meta_api.state import MockState

BASE_URL = "http://graph.test"
TOKEN = DEFAULT_ACCESS_TOKEN
APP_SECRET = DEFAULT_APP_SECRET
PHONE_ID = DEFAULT_PHONE_NUMBER_ID
VERSION = "v21.0"
MESSAGES = f"/{VERSION}/{PHONE_ID}/messages"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RECIPIENT = "15550100200"
RECEIVER_URL = "http://receiver.test/webhook"
LOOPBACK_CLIENT = ("127.0.0.1", 50000)
REMOTE_CLIENT = ("203.0.113.7", 5000)

# Keys Meta's error object may carry; the first four always.
ERROR_REQUIRED_KEYS = {"message", "type", "code", "fbtrace_id"}
ERROR_OPTIONAL_KEYS = {"error_data", "error_subcode"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- payloads and configs ----------------------------------------------------


def text_message(to: str = RECIPIENT, body: str = "hello", **extra: Any) -> dict[str, Any]:
    """A valid text send, with any top-level field added or overridden."""
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "text",
        "text": {"body": body},
    } | extra


def make_config(*, behaviours: dict[str, Any] | None = None, **settings: Any) -> MockConfig:
    """A MockConfig from plain data, validated exactly as a config file would be."""
    return MockConfig.model_validate({**settings, "behaviours": behaviours or {}})


def unlimited(**sections: Any) -> dict[str, Any]:
    """Behaviours with both rate limits off (plus any sections given), for tests that send a lot."""
    return {"throughput": {"enabled": False}, "pair_rate": {"enabled": False}} | sections


# -- the mock in-process -----------------------------------------------------


@dataclass
class Mock:
    """The app under test and a client talking to it in-process."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def state(self) -> MockState:
        return self.app.state.mock

    async def send(
        self,
        payload: Any = None,
        *,
        path: str = MESSAGES,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """POST a message (default: a valid text message) with the right token."""
        if payload is None and "content" not in kwargs:
            payload = text_message()
        if payload is not None:
            kwargs["json"] = payload
        return await self.client.post(path, headers=AUTH if headers is None else headers, **kwargs)

    async def journal(self, **params: Any) -> list[dict[str, Any]]:
        answer = await self.client.get("/_mock/journal", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert page["count"] == len(page["entries"])
        return page["entries"]

    async def deliveries(self) -> dict[str, Any]:
        answer = await self.client.get("/_mock/webhooks")
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def patch_behaviours(self, sections: dict[str, Any]) -> dict[str, Any]:
        answer = await self.client.patch("/_mock/behaviours", json=sections)
        assert answer.status_code == 200, answer.text
        return answer.json()


@asynccontextmanager
async def running_mock(
    config: MockConfig | None = None,
    *,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    client: tuple[str, int] = LOOPBACK_CLIENT,
) -> AsyncIterator[Mock]:
    """Create the app, run its lifespan (so webhook tasks are closed) and yield a client."""
    app = create_app(config, webhook_transport=webhook_transport)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=client), base_url=BASE_URL
        ) as http,
    ):
        yield Mock(app, http)


@pytest.fixture
async def mock() -> AsyncIterator[Mock]:
    """The mock with its default configuration."""
    async with running_mock() as running:
        yield running


# -- a status webhook receiver -----------------------------------------------


@dataclass(frozen=True)
class Received:
    body: bytes
    headers: dict[str, str]  # lower-cased names
    answered: int
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def status(self) -> dict[str, Any]:
        """The one `statuses[]` item of the webhook."""
        (entry,) = self.json()["entry"]
        (change,) = entry["changes"]
        (status,) = change["value"]["statuses"]
        return status


@dataclass
class Receiver:
    """A webhook endpoint app: records raw bodies and headers; fails the first `fail_first`."""

    fail_first: int = 0
    fail_status: int = 500
    calls: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/webhook", self._handle, methods=["POST"])])

    async def _handle(self, request: Request) -> Response:
        answer = self.fail_status if len(self.calls) < self.fail_first else 200
        self.calls.append(
            Received(await request.body(), dict(request.headers), answer, time.monotonic())
        )
        return Response(b"ok" if answer == 200 else b"nope", status_code=answer)

    @property
    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    @property
    def accepted(self) -> list[Received]:
        return [call for call in self.calls if call.answered == 200]

    def statuses(self, wamid: str | None = None) -> list[str]:
        """Statuses accepted by the receiver, in arrival order (for one message if given)."""
        return [
            call.status["status"]
            for call in self.accepted
            if wamid is None or call.status["id"] == wamid
        ]


def hub_signature(body: bytes, secret: str = APP_SECRET) -> str:
    """What `X-Hub-Signature-256` must be, computed independently of the mock."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- assertions and polling --------------------------------------------------


def assert_meta_error(answer: httpx.Response, *, status: int, code: int) -> dict[str, Any]:
    """Assert a Graph error in Meta's shape (and nothing else); return the `error` object."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert ERROR_REQUIRED_KEYS <= set(error) <= ERROR_REQUIRED_KEYS | ERROR_OPTIONAL_KEYS, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    assert error["type"]
    assert isinstance(error["fbtrace_id"], str)
    assert error["fbtrace_id"]
    if "error_data" in error:
        assert error["error_data"]["messaging_product"] == "whatsapp"
        assert isinstance(error["error_data"]["details"], str)
        assert error["error_data"]["details"]
    return error


def details_of(answer: httpx.Response) -> str:
    """The `error_data.details` of a code 100 answer."""
    error = assert_meta_error(answer, status=400, code=100)
    return error["error_data"]["details"]


def assert_accepted(answer: httpx.Response, to: str = RECIPIENT) -> str:
    """Assert Meta's success shape for a send; return the wamid."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"messaging_product", "contacts", "messages"}, body
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": to, "wa_id": re.sub(r"[^0-9]", "", to)}]
    (message,) = body["messages"]
    assert message["id"].startswith("wamid.")
    return message["id"]


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    timeout_s: float = 5.0,
    *,
    interval_s: float = 0.005,
    what: str = "condition",
) -> None:
    """Poll `predicate` (sync or async) until true; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout_s} s")
        await anyio.sleep(interval_s)
