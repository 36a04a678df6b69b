"""GraphRedirectTransport: graph.facebook.com requests go to the mock, others pass through."""

from __future__ import annotations

import httpx
import pytest

from mock_meta_api.redirect import AsyncGraphRedirectTransport, GraphRedirectTransport

from .conftest import AUTH, BASE_URL, MESSAGES, assert_accepted, running_mock, text_message

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

GRAPH = "https://graph.facebook.com"


def recording_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler)


def test_graph_requests_are_rewritten_to_the_target() -> None:
    seen: list[httpx.Request] = []
    transport = GraphRedirectTransport(
        "http://127.0.0.1:8123/ignored/path", transport=recording_transport(seen)
    )

    with httpx.Client(transport=transport) as client:
        client.post(f"{GRAPH}{MESSAGES}?access_token=t", json={})

    (request,) = seen
    assert str(request.url) == f"http://127.0.0.1:8123{MESSAGES}?access_token=t"
    assert request.headers["host"] == "127.0.0.1:8123"


def test_other_hosts_pass_through_unchanged() -> None:
    seen: list[httpx.Request] = []
    transport = GraphRedirectTransport("http://127.0.0.1:8123", transport=recording_transport(seen))

    with httpx.Client(transport=transport) as client:
        client.get("https://example.test/x?y=1")

    (request,) = seen
    assert str(request.url) == "https://example.test/x?y=1"
    assert request.headers["host"] == "example.test"


def test_extra_hosts_can_be_redirected() -> None:
    seen: list[httpx.Request] = []
    transport = GraphRedirectTransport(
        "http://127.0.0.1:8123",
        hosts=("graph.facebook.com", "graph.example.test"),
        transport=recording_transport(seen),
    )

    with httpx.Client(transport=transport) as client:
        client.get("https://graph.example.test/v21.0/me")

    assert str(seen[0].url) == "http://127.0.0.1:8123/v21.0/me"


async def test_async_client_reaches_the_mock_through_graph_facebook_com() -> None:
    async with running_mock() as mock:
        inner = httpx.ASGITransport(app=mock.app)
        transport = AsyncGraphRedirectTransport(BASE_URL, transport=inner)
        async with httpx.AsyncClient(transport=transport) as client:
            answer = await client.post(f"{GRAPH}{MESSAGES}", headers=AUTH, json=text_message())
        (entry,) = await mock.journal()

    assert_accepted(answer)
    assert entry["path"] == MESSAGES
