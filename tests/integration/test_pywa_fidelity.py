"""Fidelity against a real client library: pywa, pointed at the mock as a user would.

pywa hard-codes https://graph.facebook.com; `GraphRedirectTransport` sends those
requests to the mock instead, so pywa's own request building and error parsing
are what is under test here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import pywa_async
from pywa import WhatsApp, errors, handlers
from pywa.types import MessageStatus, MessageStatusType

from mock_meta_api.redirect import AsyncGraphRedirectTransport, GraphRedirectTransport

from .mockapi import PHONE_ID, RECIPIENT, TOKEN, MockAPI
from .receiver import WebhookReceiver

pytestmark = pytest.mark.integration

APP_SECRET = "pywa-app-secret"


@pytest.fixture
def connect(mock: MockAPI) -> Iterator:
    """Build pywa clients on the mock; their sessions are closed after the test."""
    sessions: list[httpx.Client] = []

    def connect_(url: str = mock.url, token: str = TOKEN, **options) -> WhatsApp:
        session = httpx.Client(transport=GraphRedirectTransport(url), timeout=10)
        sessions.append(session)
        return WhatsApp(phone_id=PHONE_ID, token=token, session=session, **options)

    yield connect_
    for session in sessions:
        session.close()


@pytest.fixture
def wa(connect) -> WhatsApp:
    return connect()


def test_send_message_returns_the_mocks_wamid(wa: WhatsApp, mock: MockAPI) -> None:
    sent = wa.send_message(to=RECIPIENT, text="hello from pywa", tracker="lane-gevent:1")

    [entry] = mock.journal()
    assert sent.id == entry["wamid"]
    assert entry["outcome"] == "accepted"
    assert entry["body"] == "hello from pywa"
    assert entry["biz_opaque_callback_data"] == "lane-gevent:1"
    assert entry["recipient"] == RECIPIENT
    assert entry["path"] == f"/{entry['api_version']}/{PHONE_ID}/messages"


def test_wrong_token_raises_expired_access_token(connect) -> None:
    wa = connect(token="not-the-token")
    with pytest.raises(errors.ExpiredAccessToken) as caught:
        wa.send_message(to=RECIPIENT, text="hi")
    assert caught.value.code == 190
    assert caught.value.status_code == 401


def test_pair_rate_limit_raises_too_many_messages(wa: WhatsApp, mock: MockAPI) -> None:
    mock.behaviours({"pair_rate": {"period_s": 60, "burst": 1}})
    wa.send_message(to=RECIPIENT, text="first")
    with pytest.raises(errors.TooManyMessages) as caught:
        wa.send_message(to=RECIPIENT, text="second, too soon")
    assert caught.value.code == 131056
    wa.send_message(to="15557654321", text="another recipient has its own bucket")


def test_throughput_limit_raises_rate_limit_hit(wa: WhatsApp, mock: MockAPI) -> None:
    mock.behaviours({"throughput": {"messages_per_second": 0.1}})
    wa.send_message(to=RECIPIENT, text="first")
    with pytest.raises(errors.RateLimitHit) as caught:
        wa.send_message(to="15557654321", text="second, over the number's throughput")
    assert caught.value.code == 130429
    assert caught.value.status_code == 429


@pytest.mark.parametrize(
    ("code", "http_status", "pywa_error"),
    [
        (131000, 500, errors.UnknownError),
        (131016, 503, errors.ServiceUnavailable),
        (131026, 400, errors.MessageUndeliverable),
        (131047, 400, errors.ReEngagementMessage),
    ],
)
def test_scripted_errors_map_to_pywas_classes(
    wa: WhatsApp, mock: MockAPI, code: int, http_status: int, pywa_error: type
) -> None:
    answer = {"code": code, "http_status": http_status}
    mock.behaviours({"failures": {"scripted": [{"first": 1, "answer": answer}]}})
    with pytest.raises(pywa_error) as caught:
        wa.send_message(to=RECIPIENT, text="hi")
    assert (caught.value.code, caught.value.status_code) == (code, http_status)
    assert caught.value.fbtrace_id
    assert wa.send_message(to=RECIPIENT, text="attempt 2 is not scripted").id


def test_text_over_4096_chars_is_code_100(wa: WhatsApp, mock: MockAPI) -> None:
    assert wa.send_message(to=RECIPIENT, text="x" * 4096).id
    with pytest.raises(errors.WhatsAppError) as caught:
        wa.send_message(to=RECIPIENT, text="x" * 4097)
    # pywa has no subclass for code 100 (Invalid parameter): it raises the base class.
    assert type(caught.value) is errors.WhatsAppError
    assert caught.value.code == 100
    assert "4096" in caught.value.details


def test_connection_reset_surfaces_as_an_httpx_transport_error(wa: WhatsApp, mock: MockAPI) -> None:
    mock.behaviours({"failures": {"scripted": [{"first": 1, "answer": {"action": "reset"}}]}})
    with pytest.raises(httpx.TransportError):
        wa.send_message(to=RECIPIENT, text="hi")
    assert wa.send_message(to=RECIPIENT, text="again").id


def test_async_pywa_through_the_async_transport(mock: MockAPI) -> None:
    async def send() -> str:
        async with httpx.AsyncClient(transport=AsyncGraphRedirectTransport(mock.url)) as session:
            wa = pywa_async.WhatsApp(phone_id=PHONE_ID, token=TOKEN, session=session)
            return (await wa.send_message(to=RECIPIENT, text="async hello")).id

    wamid = asyncio.run(send())
    assert [entry["wamid"] for entry in mock.journal()] == [wamid]


def test_redirect_only_touches_graph_hosts(mock: MockAPI) -> None:
    nowhere = "http://127.0.0.1:9"  # discard port: nothing listens
    with httpx.Client(transport=GraphRedirectTransport(mock.url)) as redirected:
        assert redirected.get("https://graph.facebook.com/_mock/health").json()["status"] == "ok"
    with httpx.Client(transport=GraphRedirectTransport(nowhere)) as passthrough:
        assert passthrough.get(f"{mock.url}/_mock/health").json()["status"] == "ok"


def test_pywa_parses_and_verifies_the_mocks_status_webhooks(
    start_mock, receiver: WebhookReceiver, connect
) -> None:
    server, api = start_mock("--webhook-url", receiver.url, "--app-secret", APP_SECRET)
    wa = connect(server.url, app_secret=APP_SECRET, verify_token="verify-me")
    parsed: list[MessageStatus] = []
    wa.add_handlers(handlers.MessageStatusHandler(lambda _, status: parsed.append(status)))

    sent = wa.send_message(to=RECIPIENT, text="track me", tracker="lane-threads:9")
    received = receiver.wait_for(lambda items: len(items) >= 2, timeout_s=10)

    for item in received:
        signature = item.headers["x-hub-signature-256"]
        assert wa.webhook_update_validator(item.body, signature) is None
        assert wa.webhook_update_handler(item.body) == ("ok", 200)
        tampered = item.body.replace(b"lane-threads:9", b"lane-threads:0")
        assert wa.webhook_update_validator(tampered, signature) == ("Forbidden", 403)

    assert [status.status for status in parsed] == [
        MessageStatusType.SENT,
        MessageStatusType.DELIVERED,
    ]
    for status in parsed:
        assert status.id == sent.id
        assert status.tracker == "lane-threads:9"
        assert status.from_user.wa_id == RECIPIENT
        assert status.metadata.phone_number_id == PHONE_ID
    assert api.journal()[0]["wamid"] == sent.id
