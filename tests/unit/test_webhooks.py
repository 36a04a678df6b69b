"""Status webhooks: order, Meta's shape, signature, failed statuses, bounded retries."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from mock_meta_api.config import DEFAULT_DISPLAY_PHONE_NUMBER, DEFAULT_WABA_ID
from mock_meta_api.errors import CATALOGUE

from .conftest import (
    PHONE_ID,
    RECEIVER_URL,
    RECIPIENT,
    Mock,
    Receiver,
    assert_accepted,
    hub_signature,
    make_config,
    running_mock,
    text_message,
    unlimited,
    wait_until,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

UNDELIVERABLE = "15550100666"


def webhook_config(*, settings: dict[str, Any] | None = None, **webhooks: Any):
    """Webhooks on, quick (no delays, short backoff), rate limits off."""
    section = {"url": RECEIVER_URL, "sent_delay_s": 0, "delivered_delay_s": 0}
    section |= {"retry_backoff_s": 0.01} | webhooks
    return make_config(behaviours=unlimited(webhooks=section), **(settings or {}))


async def settled(mock: Mock) -> None:
    """Wait until every scheduled status sequence has finished."""
    await wait_until(lambda: mock.state.webhooks.pending == 0, what="webhooks settled")


async def test_sent_then_delivered_in_meta_shape_with_a_valid_signature() -> None:
    receiver = Receiver()
    async with running_mock(webhook_config(), webhook_transport=receiver.transport) as mock:
        wamid = assert_accepted(await mock.send(text_message(biz_opaque_callback_data="run-1:0")))
        await wait_until(lambda: len(receiver.calls) >= 2, what="two webhooks")
        await settled(mock)

    assert receiver.statuses() == ["sent", "delivered"]
    for call in receiver.calls:
        assert call.headers["x-hub-signature-256"] == hub_signature(call.body)
        assert call.headers["content-type"] == "application/json"
        assert call.headers["user-agent"] == "facebookexternalua"
        payload = call.json()
        assert payload["object"] == "whatsapp_business_account"
        (entry,) = payload["entry"]
        assert entry["id"] == DEFAULT_WABA_ID
        (change,) = entry["changes"]
        assert change["field"] == "messages"
        value = change["value"]
        assert value["messaging_product"] == "whatsapp"
        assert value["metadata"] == {
            "display_phone_number": DEFAULT_DISPLAY_PHONE_NUMBER,
            "phone_number_id": PHONE_ID,
        }
        status = call.status
        assert status["id"] == wamid
        assert status["recipient_id"] == RECIPIENT
        assert status["biz_opaque_callback_data"] == "run-1:0"
        assert status["timestamp"].isdigit()
        assert abs(int(status["timestamp"]) - time.time()) < 60
        assert status["pricing"]["billable"] is True
        assert "errors" not in status


async def test_read_follows_delivered_when_configured() -> None:
    receiver = Receiver()
    config = webhook_config(read_delay_s=0)
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        wamid = assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 3, what="three webhooks")
        await settled(mock)

    assert receiver.statuses(wamid) == ["sent", "delivered", "read"]
    assert "pricing" not in receiver.calls[2].status


async def test_a_null_delay_skips_that_status() -> None:
    receiver = Receiver()
    config = webhook_config(delivered_delay_s=None, read_delay_s=0)
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 2, what="two webhooks")
        await settled(mock)

    assert receiver.statuses() == ["sent", "read"]


async def test_statuses_arrive_after_their_delays() -> None:
    receiver = Receiver()
    config = webhook_config(sent_delay_s=0.03, delivered_delay_s=0.04)
    delays = config.behaviours.webhooks
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        before = time.monotonic()
        assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 2, what="two webhooks")

    sent, delivered = receiver.calls
    assert sent.at - before >= delays.sent_delay_s
    assert delivered.at - sent.at >= delays.delivered_delay_s


async def test_each_message_gets_its_own_ordered_sequence() -> None:
    receiver = Receiver()
    async with running_mock(webhook_config(), webhook_transport=receiver.transport) as mock:
        wamids = [
            assert_accepted(await mock.send(text_message(to=f"1555010010{n}")), f"1555010010{n}")
            for n in range(4)
        ]
        await wait_until(lambda: len(receiver.calls) >= 8, what="eight webhooks")
        await settled(mock)

    for n, wamid in enumerate(wamids):
        assert receiver.statuses(wamid) == ["sent", "delivered"]
        recipients = {call.status["recipient_id"] for call in receiver.calls}
        assert f"1555010010{n}" in recipients
    assert len(receiver.calls) == 8


async def test_callback_data_is_absent_when_not_sent() -> None:
    receiver = Receiver()
    async with running_mock(webhook_config(), webhook_transport=receiver.transport) as mock:
        assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 2, what="two webhooks")

    assert all("biz_opaque_callback_data" not in call.status for call in receiver.calls)


async def test_status_metadata_names_the_sending_business_number() -> None:
    other = "109876543210987"
    receiver = Receiver()
    config = webhook_config(settings={"phone_number_ids": [PHONE_ID, other]})
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        assert_accepted(await mock.send(path=f"/v21.0/{other}/messages"))
        await wait_until(lambda: len(receiver.calls) >= 2, what="two webhooks")

    metadata = receiver.calls[0].json()["entry"][0]["changes"][0]["value"]["metadata"]
    assert metadata["phone_number_id"] == other


async def test_signature_uses_the_configured_app_secret() -> None:
    receiver = Receiver()
    config = webhook_config(settings={"app_secret": "another-secret"})
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 1, what="a webhook")

    call = receiver.calls[0]
    assert call.headers["x-hub-signature-256"] == hub_signature(call.body, "another-secret")
    assert call.headers["x-hub-signature-256"] != hub_signature(call.body)


# -- failed statuses -------------------------------------------------------------


async def test_failed_status_for_a_matching_recipient() -> None:
    receiver = Receiver()
    config = webhook_config(failures=[{"recipient": UNDELIVERABLE}])
    code = config.behaviours.webhooks.failures[0].code
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        failed = assert_accepted(await mock.send(text_message(to=UNDELIVERABLE)), UNDELIVERABLE)
        fine = assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 3, what="three webhooks")
        await settled(mock)

    assert code == 131026
    assert receiver.statuses(failed) == ["failed"]
    assert receiver.statuses(fine) == ["sent", "delivered"]
    (call,) = [call for call in receiver.calls if call.status["id"] == failed]
    status = call.status
    assert status["recipient_id"] == UNDELIVERABLE
    assert "pricing" not in status
    (error,) = status["errors"]
    assert error["code"] == 131026
    assert error["title"] == "Message undeliverable"
    assert error["message"] == "Message undeliverable"
    assert error["error_data"] == {"details": CATALOGUE[131026][2]}
    assert error["href"].startswith("https://developers.facebook.com/")
    assert call.headers["x-hub-signature-256"] == hub_signature(call.body)


async def test_failure_rule_without_recipient_and_with_another_code_matches_everyone() -> None:
    receiver = Receiver()
    config = webhook_config(failures=[{"code": 131047}])
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        wamid = assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 1, what="a webhook")
        await settled(mock)

    assert receiver.statuses(wamid) == ["failed"]
    assert receiver.calls[0].status["errors"][0]["code"] == 131047
    assert receiver.calls[0].status["errors"][0]["title"] == "Re-engagement message"


async def test_failure_rule_with_probability_0_never_fails() -> None:
    receiver = Receiver()
    config = webhook_config(failures=[{"probability": 0}])
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        wamid = assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 2, what="two webhooks")

    assert receiver.statuses(wamid) == ["sent", "delivered"]


async def test_seeded_failure_sampling_replays() -> None:
    config = webhook_config(seed=11, failures=[{"probability": 0.5}], delivered_delay_s=None)

    async def failed_pattern() -> list[str]:
        receiver = Receiver()
        async with running_mock(config, webhook_transport=receiver.transport) as mock:
            wamids = [assert_accepted(await mock.send()) for _ in range(12)]
            await wait_until(lambda: len(receiver.calls) >= 12, what="twelve webhooks")
        return [receiver.statuses(wamid)[0] for wamid in wamids]

    first, second = await failed_pattern(), await failed_pattern()
    assert first == second
    assert set(first) == {"sent", "failed"}


# -- retries -----------------------------------------------------------------------


async def test_retries_are_bounded_by_max_attempts_when_the_receiver_fails() -> None:
    receiver = Receiver(fail_first=1_000)
    config = webhook_config(max_attempts=3, delivered_delay_s=None)
    max_attempts = config.behaviours.webhooks.max_attempts
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        wamid = assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= max_attempts, what="all attempts")
        await settled(mock)
        log = await mock.deliveries()

    assert len(receiver.calls) == max_attempts
    assert log["count"] == max_attempts
    assert log["pending"] == 0
    assert [d["attempt"] for d in log["deliveries"]] == list(range(1, max_attempts + 1))
    assert {d["wamid"] for d in log["deliveries"]} == {wamid}
    assert {d["status"] for d in log["deliveries"]} == {"sent"}
    assert {d["http_status"] for d in log["deliveries"]} == {500}
    assert not any(d["delivered"] for d in log["deliveries"])
    assert len({call.body for call in receiver.calls}) == 1  # a retry resends the same body


async def test_a_failed_status_does_not_stop_the_next_one() -> None:
    receiver = Receiver(fail_first=2)
    config = webhook_config(max_attempts=2)
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        wamid = assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 3, what="three webhook posts")
        await settled(mock)
        log = await mock.deliveries()

    assert [(d["status"], d["attempt"], d["delivered"]) for d in log["deliveries"]] == [
        ("sent", 1, False),
        ("sent", 2, False),
        ("delivered", 1, True),
    ]
    assert receiver.statuses(wamid) == ["delivered"]


async def test_retry_succeeds_once_the_receiver_recovers() -> None:
    receiver = Receiver(fail_first=2)
    config = webhook_config(max_attempts=3, retry_backoff_s=0.02)
    backoff_s = config.behaviours.webhooks.retry_backoff_s
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        wamid = assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.accepted) >= 2, what="two accepted webhooks")
        await settled(mock)
        log = await mock.deliveries()

    assert receiver.statuses(wamid) == ["sent", "delivered"]
    sent = [d for d in log["deliveries"] if d["status"] == "sent"]
    assert [(d["attempt"], d["http_status"], d["delivered"]) for d in sent] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    # exponential backoff: backoff_s, then 2 * backoff_s
    first, second, third = (call.at for call in receiver.calls[:3])
    assert second - first >= backoff_s
    assert third - second >= 2 * backoff_s


async def test_transport_errors_are_logged_and_retried() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    config = webhook_config(max_attempts=2, delivered_delay_s=None)
    async with running_mock(config, webhook_transport=httpx.MockTransport(refuse)) as mock:
        assert_accepted(await mock.send())
        await wait_until(lambda: len(mock.state.webhooks.deliveries) >= 2, what="two attempts")
        await settled(mock)
        log = await mock.deliveries()

    assert [d["attempt"] for d in log["deliveries"]] == [1, 2]
    for delivery in log["deliveries"]:
        assert delivery["http_status"] is None
        assert delivery["delivered"] is False
        assert delivery["error"] == "ConnectError: connection refused"


# -- when there are none ---------------------------------------------------------------


async def test_no_webhooks_when_url_is_unset() -> None:
    receiver = Receiver()
    config = make_config(behaviours=unlimited(webhooks={"sent_delay_s": 0}))
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        assert_accepted(await mock.send())
        assert mock.state.webhooks.pending == 0  # nothing was scheduled
        log = await mock.deliveries()

    assert log == {"count": 0, "pending": 0, "deliveries": []}
    assert receiver.calls == []


async def test_no_webhooks_for_rejected_sends_or_mark_read() -> None:
    receiver = Receiver()
    config = webhook_config(failures=[], max_attempts=1)
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        await mock.patch_behaviours({"failures": {"scripted": [{"first": 1}]}})
        assert (await mock.send()).status_code == 500  # scripted failure
        assert (await mock.send(headers={})).status_code == 401
        assert (await mock.send(text_message(body=""))).status_code == 400
        read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"}
        assert (await mock.send(read)).status_code == 200
        assert mock.state.webhooks.pending == 0
        log = await mock.deliveries()

    assert log["count"] == 0
    assert receiver.calls == []


async def test_webhooks_can_be_switched_on_at_run_time() -> None:
    receiver = Receiver()
    config = make_config(behaviours=unlimited())
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        assert_accepted(await mock.send())
        assert mock.state.webhooks.pending == 0
        await mock.patch_behaviours(
            {"webhooks": {"url": RECEIVER_URL, "sent_delay_s": 0, "delivered_delay_s": 0}}
        )
        wamid = assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 2, what="two webhooks")

    assert receiver.statuses() == ["sent", "delivered"]
    assert {call.status["id"] for call in receiver.calls} == {wamid}


async def test_reset_clears_the_delivery_log() -> None:
    receiver = Receiver()
    async with running_mock(webhook_config(), webhook_transport=receiver.transport) as mock:
        assert_accepted(await mock.send())
        await wait_until(lambda: len(receiver.calls) >= 2, what="two webhooks")
        await settled(mock)
        assert (await mock.deliveries())["count"] == 2
        assert (await mock.client.post("/_mock/reset")).status_code == 200
        log = await mock.deliveries()

    assert log == {"count": 0, "pending": 0, "deliveries": []}


async def test_shutdown_cancels_pending_status_sequences() -> None:
    receiver = Receiver()
    config = webhook_config(sent_delay_s=60)
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        assert_accepted(await mock.send())
        assert mock.state.webhooks.pending == 1
        webhooks = mock.state.webhooks

    await wait_until(lambda: webhooks.pending == 0, what="tasks cancelled by the lifespan")
    assert receiver.calls == []


async def test_drain_waits_for_scheduled_webhooks() -> None:
    receiver = Receiver()
    config = webhook_config(sent_delay_s=0.05)
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        webhooks = mock.state.webhooks
        assert await webhooks.drain(within_s=0)  # nothing scheduled
        assert_accepted(await mock.send())

        assert not await webhooks.drain(within_s=0.001)  # the sent status is 50 ms away
        assert await webhooks.drain(within_s=5)

    assert receiver.statuses() == ["sent", "delivered"]


async def test_a_phone_numbers_webhook_override_gets_its_statuses() -> None:
    """Meta's per-number override: that number's statuses go to its URL, others' to the app's."""
    other_phone = "106540352299999"
    override = "http://override.test/webhook"
    receiver = Receiver()
    config = webhook_config(
        settings={"phone_number_ids": [PHONE_ID, other_phone]},
        url_per_phone_number={other_phone: override},
        delivered_delay_s=None,
    )
    async with running_mock(config, webhook_transport=receiver.transport) as mock:
        assert_accepted(await mock.send(text_message(biz_opaque_callback_data="app-url")))
        other_path = f"/v21.0/{other_phone}/messages"
        sent = await mock.send(text_message(biz_opaque_callback_data="override"), path=other_path)
        assert_accepted(sent)
        await wait_until(lambda: len(receiver.calls) >= 2, what="two webhooks")
        await settled(mock)

    hosts = {
        call.status["biz_opaque_callback_data"]: call.headers["host"] for call in receiver.calls
    }
    assert hosts == {"app-url": "receiver.test", "override": "override.test"}


async def test_a_bad_override_url_is_refused_with_the_number_named(mock: Mock) -> None:
    answer = await mock.client.patch(
        "/_mock/behaviours", json={"webhooks": {"url_per_phone_number": {PHONE_ID: "ftp://x"}}}
    )
    assert answer.status_code == 422
    assert f"webhooks.url_per_phone_number.{PHONE_ID}" in answer.text
    assert "must start with http:// or https://" in answer.text
