"""Signed status webhooks from the real mock to a real receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time

import pytest

from .mockapi import PHONE_ID, RECIPIENT, MockAPI, at_least, text_message
from .receiver import Received, WebhookReceiver

pytestmark = pytest.mark.integration

APP_SECRET = "integration-app-secret"


def statuses(received: list[Received], wamid: str) -> list[dict]:
    """The status objects about `wamid`, in arrival order."""
    found = []
    for item in received:
        for entry in item.json()["entry"]:
            for change in entry["changes"]:
                found += [s for s in change["value"].get("statuses", []) if s["id"] == wamid]
    return found


def has_statuses(wamid: str, *wanted: str):
    return lambda received: {s["status"] for s in statuses(received, wamid)} >= set(wanted)


@pytest.fixture
def mock(start_mock, receiver: WebhookReceiver) -> MockAPI:
    """A mock whose status webhooks go to `receiver`, signed with APP_SECRET."""
    _, api = start_mock("--webhook-url", receiver.url, "--app-secret", APP_SECRET)
    return api


def test_sent_and_delivered_are_signed_and_shaped_like_meta(
    mock: MockAPI, receiver: WebhookReceiver
) -> None:
    config = mock.http.get("/_mock/behaviours").json()["webhooks"]
    assert config["url"] == receiver.url
    before = int(time.time())
    answer = mock.send(text_message(biz_opaque_callback_data="lane-solo:3"))
    wamid = answer.json()["messages"][0]["id"]

    received = receiver.wait_for(has_statuses(wamid, "sent", "delivered"), timeout_s=10)

    assert len(received) == 2, "one POST per status, and no read status unless configured"
    for item in received:
        expected = hmac.new(APP_SECRET.encode(), item.body, hashlib.sha256).hexdigest()
        assert item.headers["x-hub-signature-256"] == f"sha256={expected}"
        assert item.headers["content-type"] == "application/json"
        assert item.path == "/webhook"
        body = item.json()
        assert body["object"] == "whatsapp_business_account"
        [entry] = body["entry"]
        [change] = entry["changes"]
        assert change["field"] == "messages"
        value = change["value"]
        assert value["messaging_product"] == "whatsapp"
        assert value["metadata"]["phone_number_id"] == PHONE_ID
        [status] = value["statuses"]
        assert status["id"] == wamid
        assert status["recipient_id"] == RECIPIENT
        assert status["biz_opaque_callback_data"] == "lane-solo:3"
        assert before <= int(status["timestamp"]) <= time.time()

    sent, delivered = received
    assert [s["status"] for s in statuses(received, wamid)] == ["sent", "delivered"]
    [journaled] = mock.journal()
    assert at_least(sent.at - journaled["responded_at"], config["sent_delay_s"])
    assert at_least(delivered.at - sent.at, config["delivered_delay_s"])

    log = mock.http.get("/_mock/webhooks").json()
    assert [(d["status"], d["attempt"], d["delivered"]) for d in log["deliveries"]] == [
        ("sent", 1, True),
        ("delivered", 1, True),
    ]


def test_a_bad_signature_secret_does_not_verify(mock: MockAPI, receiver: WebhookReceiver) -> None:
    wamid = mock.send().json()["messages"][0]["id"]
    [item, *_] = receiver.wait_for(has_statuses(wamid, "sent"), timeout_s=10)
    forged = hmac.new(b"another-secret", item.body, hashlib.sha256).hexdigest()
    assert item.headers["x-hub-signature-256"] != f"sha256={forged}"


def test_failed_status_carries_the_error(mock: MockAPI, receiver: WebhookReceiver) -> None:
    answer = mock.http.patch(
        "/_mock/behaviours",
        json={"webhooks": {"url": receiver.url, "failures": [{"code": 131026}]}},
    )
    assert answer.status_code == 200, answer.text
    wamid = mock.send().json()["messages"][0]["id"]

    received = receiver.wait_for(has_statuses(wamid, "failed"), timeout_s=10)

    [failed] = statuses(received, wamid)
    assert failed["status"] == "failed"
    [error] = failed["errors"]
    assert error["code"] == 131026
    assert error["error_data"]["details"]


def test_unreachable_receiver_is_retried_and_the_api_is_unaffected(mock: MockAPI) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{probe.getsockname()[1]}/webhook"
    max_attempts = 2
    answer = mock.http.patch(
        "/_mock/behaviours",
        json={
            "webhooks": {
                "url": closed_url,
                "max_attempts": max_attempts,
                "retry_backoff_s": 0.05,
                "timeout_s": 2,
            }
        },
    )
    assert answer.status_code == 200, answer.text

    assert mock.send().status_code == 200

    deadline = time.monotonic() + 10
    while (log := mock.http.get("/_mock/webhooks").json())["pending"] or not log["deliveries"]:
        assert time.monotonic() < deadline, log
        time.sleep(0.02)
    attempts = [(d["status"], d["attempt"]) for d in log["deliveries"]]
    assert attempts == [("sent", 1), ("sent", 2), ("delivered", 1), ("delivered", 2)]
    assert all(not d["delivered"] and "ConnectError" in d["error"] for d in log["deliveries"])
    assert mock.send().status_code == 200
