"""The bot's webhook in-process: subscription check, signed notifications and every bad input.

The Starlette app from `create_webhook_app(create_bot(settings))` is driven through
`httpx.ASGITransport`; nothing is mocked. The store and the Celery broker are the real
embedded Valkey (emptied before each test), so a queued task is a message on the Redis
list named after the queue (kombu LPUSHes it there at once, with an ETA header when it has
a countdown): `LLEN test-queue` counts what the bot queued.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import anyio
import httpx
import orjson
import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.types import ASGIApp

from harness.bot.app import Bot, create_bot
from harness.bot.fixtures import fixtures_text
from harness.bot.flow import correlation_for, message_id_for
from harness.bot.openapi import openapi_document
from harness.bot.settings import BotSettings
from harness.bot.store import OutboxRecord
from harness.bot.webhook import MAX_BODY_BYTES, create_webhook_app
from harness.stack.broker import Broker, free_port
from harness.workload import inbound_text, new_inbound_id, signed

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

BASE_URL = "http://bot.test"
QUEUE = "test-queue"
PREFIX = "test:"
SENDER = "15550100200"
# Small replies keep the tests fast: 5 parts of at most 300 characters, one second apart.
SMALL: dict[str, Any] = {
    "fixtures_parts": 5,
    "fixtures_spacing_s": 1.0,
    "fixtures_part_chars": 300,
}

SettingsFactory = Callable[..., BotSettings]


# -- helpers -------------------------------------------------------------------------------------


def hub_signature(body: bytes, secret: str) -> str:
    """`X-Hub-Signature-256` computed here, independently of the bot and the workload."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def text_payload(
    settings: BotSettings, text: str = "fixtures", *, message_id: str, sender: str = SENDER
) -> dict[str, Any]:
    """Meta's notification for one text to the bot's number."""
    return inbound_text(
        phone_number_id=settings.whatsapp_phone_number_id,
        sender=sender,
        text=text,
        message_id=message_id,
    )


def messages_value(settings: BotSettings, **fields: Any) -> dict[str, Any]:
    """A `messages` change value (product and metadata set) with the given lists."""
    return {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": "15550000000",
            "phone_number_id": settings.whatsapp_phone_number_id,
        },
        **fields,
    }


def text_message(message_id: str, sender: str, body: str) -> dict[str, Any]:
    return {
        "from": sender,
        "id": message_id,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": body},
    }


def notification(*entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A notification with one entry per argument, each a list of `changes`."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": f"10{index}", "changes": changes} for index, changes in enumerate(entries)
        ],
    }


def queued(broker_redis: redis.Redis) -> int:
    return int(broker_redis.llen(QUEUE))


def queued_headers(broker_redis: redis.Redis) -> list[dict[str, Any]]:
    """The Celery headers of every message on the queue."""
    return [json.loads(raw)["headers"] for raw in broker_redis.lrange(QUEUE, 0, -1)]


def dedupe_key(inbound_id: str) -> str:
    return f"{PREFIX}inbound:{inbound_id}"


def close_bot(bot: Bot) -> None:
    bot.celery.close()
    bot.store.redis.close()


@asynccontextmanager
async def running(settings: BotSettings) -> AsyncIterator[tuple[Bot, httpx.AsyncClient]]:
    """A bot on `settings` and a client on its webhook app; both closed afterwards."""
    bot = create_bot(settings)
    try:
        transport = httpx.ASGITransport(app=create_webhook_app(bot))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield bot, client
    finally:
        close_bot(bot)


@contextmanager
def created(settings: BotSettings) -> Iterator[Bot]:
    """A bot on `settings`, closed afterwards (for the synchronous hypothesis tests)."""
    bot = create_bot(settings)
    try:
        yield bot
    finally:
        close_bot(bot)


def post_sync(app: ASGIApp, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """One POST to `app` from synchronous code, in a fresh event loop."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return await client.post("/webhook", content=body, headers=headers)

    return anyio.run(go)


async def post(
    client: httpx.AsyncClient, payload: Any, secret: str, path: str = "/webhook"
) -> httpx.Response:
    """POST `payload` signed with `secret`, as Meta does."""
    body, headers = signed(payload, secret)
    return await client.post(path, content=body, headers=headers)


def assert_nothing_done(bot: Bot, broker_redis: redis.Redis, *inbound_ids: str) -> None:
    """Nothing queued, stored or claimed."""
    assert queued(broker_redis) == 0
    assert bot.store.outbox() == []
    assert bot.store.inbound() == []
    assert bot.store.statuses() == []
    for inbound_id in inbound_ids:
        assert not broker_redis.exists(dedupe_key(inbound_id))


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def settings(make_settings: SettingsFactory) -> BotSettings:
    return make_settings(**SMALL)


@pytest.fixture
async def webhook(settings: BotSettings) -> AsyncIterator[tuple[Bot, httpx.AsyncClient]]:
    async with running(settings) as pair:
        yield pair


# -- GET: the subscription check -----------------------------------------------------------------


async def test_verification_echoes_the_challenge(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings
) -> None:
    _, client = webhook
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": settings.whatsapp_verify_token,
        "hub.challenge": "1158201444",
    }
    answer = await client.get("/webhook", params=params)
    assert answer.status_code == 200
    assert answer.text == "1158201444"
    assert answer.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"hub.verify_token": "wrong-token"}, id="wrong-token"),
        pytest.param({"hub.verify_token": "MOCK-VERIFY-TOKEN"}, id="token-case"),
        pytest.param({"hub.verify_token": ""}, id="empty-token"),
        pytest.param({"hub.mode": "unsubscribe"}, id="wrong-mode"),
        pytest.param({"hub.mode": None}, id="no-mode"),
        pytest.param({"hub.verify_token": None}, id="no-token"),
        pytest.param({"hub.challenge": None}, id="no-challenge"),
        pytest.param({"hub.challenge": ""}, id="empty-challenge"),
        pytest.param(
            {"hub.mode": None, "hub.verify_token": None, "hub.challenge": None}, id="none"
        ),
    ],
)
async def test_verification_refused(
    webhook: tuple[Bot, httpx.AsyncClient],
    settings: BotSettings,
    broker_redis: redis.Redis,
    params: dict[str, str | None],
) -> None:
    bot, client = webhook
    assert settings.whatsapp_verify_token == "mock-verify-token"
    good = {
        "hub.mode": "subscribe",
        "hub.verify_token": settings.whatsapp_verify_token,
        "hub.challenge": "1158201444",
    }
    query = {name: value for name, value in (good | params).items() if value is not None}
    answer = await client.get("/webhook", params=query)
    assert answer.status_code == 403
    assert "1158201444" not in answer.text
    assert_nothing_done(bot, broker_redis)


async def test_openapi_document_is_served_and_names_the_real_routes(
    webhook: tuple[Bot, httpx.AsyncClient],
) -> None:
    _, client = webhook
    answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document == openapi_document()
    assert {path: set(ops) for path, ops in document["paths"].items()} == {
        "/webhook": {"get", "post"},
        "/healthz": {"get"},
    }
    post = document["paths"]["/webhook"]["post"]
    (signature,) = post["parameters"]
    assert (signature["name"], signature["in"], signature["required"]) == (
        "X-Hub-Signature-256",
        "header",
        True,
    )
    assert set(post["responses"]) == {"200", "400", "403", "413", "500"}
    notification = document["components"]["schemas"]["Notification"]
    assert notification["properties"]["object"]["const"] == "whatsapp_business_account"
    assert set(document["components"]["schemas"]["Message"]["required"]) == {"id", "from", "type"}


async def test_health(webhook: tuple[Bot, httpx.AsyncClient]) -> None:
    _, client = webhook
    answer = await client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"ok": True}


# -- POST: the fixtures flow ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["fixtures", "  FIXTURES ", "Fixtures\n", "\tfIxTuReS"])
async def test_fixtures_request_queues_every_part(
    webhook: tuple[Bot, httpx.AsyncClient],
    settings: BotSettings,
    broker_redis: redis.Redis,
    text: str,
) -> None:
    bot, client = webhook
    inbound_id = new_inbound_id()
    answer = await post(
        client, text_payload(settings, text, message_id=inbound_id), settings.whatsapp_app_secret
    )
    assert answer.status_code == 200, answer.text
    assert answer.text == "EVENT_RECEIVED"

    parts = settings.fixtures_parts
    records = bot.store.outbox()
    corr = correlation_for(inbound_id)
    assert [record.seq for record in records] == list(range(parts))
    assert "".join(record.body for record in records) == fixtures_text(
        parts, settings.fixtures_part_chars, settings.fixtures_seed
    )
    assert len({record.task_id for record in records}) == parts
    for record in records:
        assert record.state == "queued"
        assert record.attempts == 0
        assert record.last_error is None
        assert record.countdown_s == record.seq * settings.fixtures_spacing_s
        assert record.recipient == SENDER
        assert record.inbound_id == inbound_id
        assert record.correlation_id == corr
        assert record.message_id == message_id_for(corr, record.seq)
        assert record.parts_total == parts
        assert len(record.body) <= settings.fixtures_part_chars

    # One task per part on the queue, with the outbox's task ids and countdowns.
    assert queued(broker_redis) == parts
    headers = {header["id"]: header for header in queued_headers(broker_redis)}
    assert set(headers) == {record.task_id for record in records}
    for record in records:
        header = headers[record.task_id]
        assert header["task"] == "bot.send_whatsapp_message"
        assert header["argsrepr"] == repr([record.message_id])
        if record.countdown_s == 0:
            assert header["eta"] is None
        else:
            eta = datetime.fromisoformat(header["eta"]).timestamp()
            assert abs(eta - record.eta) < 0.5

    assert broker_redis.exists(dedupe_key(inbound_id))
    (inbound,) = bot.store.inbound()
    assert inbound["id"] == inbound_id
    assert inbound["from"] == SENDER
    assert inbound["text"] == {"body": text}
    assert isinstance(inbound["received_at"], float)


async def test_eta_is_queued_at_plus_countdown(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings
) -> None:
    bot, client = webhook
    before = time.time()
    answer = await post(
        client, text_payload(settings, message_id=new_inbound_id()), settings.whatsapp_app_secret
    )
    after = time.time()
    assert answer.status_code == 200
    records = bot.store.outbox()
    assert len(records) == settings.fixtures_parts
    for record in records:
        assert record.eta == record.queued_at + record.countdown_s
        assert before <= record.queued_at <= after
    queued_ats = [record.queued_at for record in records]
    assert queued_ats == sorted(queued_ats)
    etas = [record.eta for record in records]
    assert etas == sorted(etas)


async def test_other_text_is_recorded_not_answered(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings, broker_redis: redis.Redis
) -> None:
    bot, client = webhook
    inbound_id = new_inbound_id()
    answer = await post(
        client,
        text_payload(settings, "hello", message_id=inbound_id),
        settings.whatsapp_app_secret,
    )
    assert answer.status_code == 200
    assert [message["id"] for message in bot.store.inbound()] == [inbound_id]
    assert bot.store.outbox() == []
    assert queued(broker_redis) == 0


async def test_non_text_message_is_recorded_not_answered(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings, broker_redis: redis.Redis
) -> None:
    bot, client = webhook
    image = {"from": SENDER, "id": new_inbound_id(), "type": "image", "image": {"id": "1"}}
    payload = notification(
        [{"field": "messages", "value": messages_value(settings, messages=[image])}]
    )
    answer = await post(client, payload, settings.whatsapp_app_secret)
    assert answer.status_code == 200
    (inbound,) = bot.store.inbound()
    assert inbound["image"] == {"id": "1"}
    assert bot.store.outbox() == []
    assert queued(broker_redis) == 0


async def test_redelivery_is_handled_once(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings, broker_redis: redis.Redis
) -> None:
    bot, client = webhook
    inbound_id = new_inbound_id()
    body, headers = signed(
        text_payload(settings, message_id=inbound_id), settings.whatsapp_app_secret
    )
    first = await client.post("/webhook", content=body, headers=headers)
    assert first.status_code == 200
    outbox = bot.store.outbox()
    assert len(outbox) == settings.fixtures_parts
    assert queued(broker_redis) == settings.fixtures_parts

    second = await client.post("/webhook", content=body, headers=headers)
    assert second.status_code == 200
    assert bot.store.outbox() == outbox
    assert queued(broker_redis) == settings.fixtures_parts
    assert len(bot.store.inbound()) == 1


async def test_same_message_twice_in_one_notification_is_handled_once(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings, broker_redis: redis.Redis
) -> None:
    bot, client = webhook
    message = text_message(new_inbound_id(), SENDER, "fixtures")
    value = messages_value(settings, messages=[message, message])
    answer = await post(
        client, notification([{"field": "messages", "value": value}]), settings.whatsapp_app_secret
    )
    assert answer.status_code == 200
    assert len(bot.store.outbox()) == settings.fixtures_parts
    assert queued(broker_redis) == settings.fixtures_parts
    assert len(bot.store.inbound()) == 1


async def test_batched_notification_answers_each_fixtures_message(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings, broker_redis: redis.Redis
) -> None:
    bot, client = webhook
    texts = [["fixtures", "hello"], ["FIXTURES", "fixtures"], ["nope"], [" fixtures "]]
    messages = [
        [text_message(new_inbound_id(), f"1555010{c}{m:02d}", body) for m, body in enumerate(row)]
        for c, row in enumerate(texts)
    ]
    changes = [
        {"field": "messages", "value": messages_value(settings, messages=row)} for row in messages
    ]
    payload = notification(changes[:2], changes[2:])
    answer = await post(client, payload, settings.whatsapp_app_secret)
    assert answer.status_code == 200

    flat = [message for row in messages for message in row]
    wanted = {m["id"]: m["from"] for m in flat if m["text"]["body"].strip().lower() == "fixtures"}
    assert len(wanted) == 4
    parts = settings.fixtures_parts
    records = bot.store.outbox()
    assert len(records) == parts * len(wanted)
    assert queued(broker_redis) == parts * len(wanted)
    by_inbound: dict[str, list[Any]] = {}
    for record in records:
        by_inbound.setdefault(record.inbound_id, []).append(record)
    assert set(by_inbound) == set(wanted)
    for inbound_id, group in by_inbound.items():
        assert [record.seq for record in group] == list(range(parts))
        assert {record.recipient for record in group} == {wanted[inbound_id]}
        assert {record.correlation_id for record in group} == {correlation_for(inbound_id)}
    assert [message["id"] for message in bot.store.inbound()] == [m["id"] for m in flat]


async def test_statuses_are_recorded_and_nothing_queued(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings, broker_redis: redis.Redis
) -> None:
    bot, client = webhook
    statuses = [
        {
            "id": "wamid.HBgLMTU1NTAxMDAyMDA",
            "status": status,
            "timestamp": "1767225600",
            "recipient_id": SENDER,
            "biz_opaque_callback_data": f"abc-00{index}",
            "conversation": {"id": "conv-1", "origin": {"type": "service"}},
        }
        for index, status in enumerate(["sent", "delivered", "read"])
    ]
    payload = notification(
        [{"field": "messages", "value": messages_value(settings, statuses=statuses[:2])}],
        [{"field": "messages", "value": messages_value(settings, statuses=statuses[2:])}],
    )
    before = time.time()
    answer = await post(client, payload, settings.whatsapp_app_secret)
    assert answer.status_code == 200
    recorded = bot.store.statuses()
    assert [{k: v for k, v in s.items() if k != "received_at"} for s in recorded] == statuses
    for status in recorded:
        assert before <= status["received_at"] <= time.time()
    assert queued(broker_redis) == 0
    assert bot.store.outbox() == []
    assert bot.store.inbound() == []


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"phone_number": "15550000000", "event": "VERIFIED_ACCOUNT"}, id="object"),
        pytest.param({}, id="empty"),
        pytest.param({"messaging_product": "sms", "messages": 7}, id="messages-like"),
    ],
)
async def test_other_fields_are_ignored(
    webhook: tuple[Bot, httpx.AsyncClient],
    settings: BotSettings,
    broker_redis: redis.Redis,
    value: dict[str, Any],
) -> None:
    bot, client = webhook
    payload = notification([{"field": "account_update", "value": value}])
    answer = await post(client, payload, settings.whatsapp_app_secret)
    assert answer.status_code == 200
    assert answer.text == "EVENT_RECEIVED"
    assert_nothing_done(bot, broker_redis)


async def test_other_fields_do_not_hide_messages(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings, broker_redis: redis.Redis
) -> None:
    bot, client = webhook
    message = text_message(new_inbound_id(), SENDER, "fixtures")
    payload = notification(
        [
            {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}},
            {"field": "messages", "value": messages_value(settings, messages=[message])},
        ]
    )
    answer = await post(client, payload, settings.whatsapp_app_secret)
    assert answer.status_code == 200
    assert queued(broker_redis) == settings.fixtures_parts
    assert {record.inbound_id for record in bot.store.outbox()} == {message["id"]}


# -- POST: every bad input -----------------------------------------------------------------------


def _sig_missing(body: bytes, secret: str) -> dict[str, str]:
    return {}


def _sig_empty(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": ""}


def _sig_wrong_secret(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": hub_signature(body, secret + "-not")}


def _sig_no_prefix(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": hub_signature(body, secret).removeprefix("sha256=")}


def _sig_other_prefix(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha1=" + hub_signature(body, secret).removeprefix("sha256=")}


def _sig_other_body(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": hub_signature(body + b" ", secret)}


def _sig_truncated(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": hub_signature(body, secret)[:-1]}


def _sig_sha1_header(body: bytes, secret: str) -> dict[str, str]:
    """Right value, but in the legacy `X-Hub-Signature` header."""
    return {"X-Hub-Signature": hub_signature(body, secret)}


@pytest.mark.parametrize(
    "headers_for",
    [
        _sig_missing,
        _sig_empty,
        _sig_wrong_secret,
        _sig_no_prefix,
        _sig_other_prefix,
        _sig_other_body,
        _sig_truncated,
        _sig_sha1_header,
    ],
    ids=lambda f: f.__name__.removeprefix("_sig_"),
)
async def test_bad_signature_is_refused(
    webhook: tuple[Bot, httpx.AsyncClient],
    settings: BotSettings,
    broker_redis: redis.Redis,
    headers_for: Callable[[bytes, str], dict[str, str]],
) -> None:
    bot, client = webhook
    inbound_id = new_inbound_id()
    payload = text_payload(settings, message_id=inbound_id)
    body = orjson.dumps(payload)
    headers = {"Content-Type": "application/json"} | headers_for(body, settings.whatsapp_app_secret)
    answer = await client.post("/webhook", content=body, headers=headers)
    assert answer.status_code == 403
    assert_nothing_done(bot, broker_redis, inbound_id)

    # The refusal left no claim: the genuine delivery of the same message is handled.
    good = await post(client, payload, settings.whatsapp_app_secret)
    assert good.status_code == 200
    assert queued(broker_redis) == settings.fixtures_parts


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"{'object': 'whatsapp_business_account'}", id="single-quotes"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"NaN", id="nan"),
        pytest.param(b'{"object": "whatsapp_business_account"} trailing', id="trailing"),
    ],
)
async def test_malformed_json_is_a_bad_request(
    webhook: tuple[Bot, httpx.AsyncClient],
    settings: BotSettings,
    broker_redis: redis.Redis,
    body: bytes,
) -> None:
    bot, client = webhook
    headers = {"X-Hub-Signature-256": hub_signature(body, settings.whatsapp_app_secret)}
    answer = await client.post("/webhook", content=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json() == {"error": "body is not JSON"}
    assert_nothing_done(bot, broker_redis)


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "streamed"])
async def test_an_oversized_body_is_refused_unread(
    webhook: tuple[Bot, httpx.AsyncClient],
    settings: BotSettings,
    broker_redis: redis.Redis,
    declared: bool,
) -> None:
    """Signed or not, a body over Meta's 3 MB is refused with 413 and nothing is done."""
    bot, client = webhook
    inbound_id = new_inbound_id()
    payload = text_payload(settings, message_id=inbound_id)
    body = orjson.dumps(payload) + b" " * MAX_BODY_BYTES  # valid JSON, padded past the limit
    headers = {"X-Hub-Signature-256": hub_signature(body, settings.whatsapp_app_secret)}

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    content: bytes | AsyncIterator[bytes] = body if declared else chunks()
    answer = await client.post("/webhook", content=content, headers=headers)

    assert answer.status_code == 413
    assert_nothing_done(bot, broker_redis, inbound_id)
    good = await post(client, payload, settings.whatsapp_app_secret)  # no claim was left
    assert good.status_code == 200


def _change_value(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["entry"][0]["changes"][0]["value"]


def _message(payload: dict[str, Any]) -> dict[str, Any]:
    return _change_value(payload)["messages"][0]


def _edit(change: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any]], Any]:
    """A mutation of the valid payload in place, returning the payload."""

    def apply(payload: dict[str, Any]) -> Any:
        change(payload)
        return payload

    return apply


# (id, the bad body made from a copy of the valid fixtures payload, words the error must contain)
SHAPE_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], list[str]]] = [
    ("wrong-object", _edit(lambda p: p.update(object="page")), ["object", "whatsapp_business"]),
    ("no-object", _edit(lambda p: p.pop("object")), ["object", "Field required"]),
    ("no-entry", _edit(lambda p: p.pop("entry")), ["entry", "Field required"]),
    ("entry-object", _edit(lambda p: p.update(entry=p["entry"][0])), ["entry", "valid list"]),
    ("entry-null", _edit(lambda p: p.update(entry=None)), ["entry", "valid list"]),
    ("no-changes", _edit(lambda p: p["entry"][0].pop("changes")), ["entry.0.changes", "required"]),
    ("no-entry-id", _edit(lambda p: p["entry"][0].pop("id")), ["entry.0.id", "required"]),
    (
        "no-field",
        _edit(lambda p: p["entry"][0]["changes"][0].pop("field")),
        ["entry.0.changes.0.field", "required"],
    ),
    (
        "value-list",
        _edit(lambda p: p["entry"][0]["changes"][0].update(value=[])),
        ["entry.0.changes.0.value", "dictionary"],
    ),
    ("message-no-id", _edit(lambda p: _message(p).pop("id")), ["messages.0.id", "required"]),
    ("message-empty-id", _edit(lambda p: _message(p).update(id="")), ["messages.0.id", "at least"]),
    ("message-int-id", _edit(lambda p: _message(p).update(id=12)), ["messages.0.id", "string"]),
    ("message-no-from", _edit(lambda p: _message(p).pop("from")), ["messages.0.from", "required"]),
    ("message-no-type", _edit(lambda p: _message(p).pop("type")), ["messages.0.type", "required"]),
    (
        "text-no-body",
        _edit(lambda p: _message(p).update(text={"content": "fixtures"})),
        ["messages.0.text.body", "Field required"],
    ),
    (
        "messages-object",
        _edit(lambda p: _change_value(p).update(messages=_message(p))),
        ["messages", "valid list"],
    ),
    (
        "product-sms",
        _edit(lambda p: _change_value(p).update(messaging_product="sms")),
        ["messaging_product", "whatsapp"],
    ),
    (
        "no-product",
        _edit(lambda p: _change_value(p).pop("messaging_product")),
        ["messaging_product", "Field required"],
    ),
    ("no-metadata", _edit(lambda p: _change_value(p).pop("metadata")), ["metadata", "required"]),
    (
        "metadata-no-phone-id",
        _edit(lambda p: _change_value(p)["metadata"].pop("phone_number_id")),
        ["metadata.phone_number_id", "Field required"],
    ),
    (
        "status-no-status",
        _edit(lambda p: _change_value(p).update(statuses=[{"id": "wamid.1"}])),
        ["statuses.0.status", "Field required"],
    ),
    ("array", lambda p: [p], ["(body)", "dictionary"]),
    ("null", lambda p: None, ["(body)", "dictionary"]),
    ("string", lambda p: "fixtures", ["(body)", "dictionary"]),
    ("number", lambda p: 1, ["(body)", "dictionary"]),
]


@pytest.mark.parametrize(
    ("make_bad", "words"),
    [pytest.param(make_bad, words, id=case_id) for case_id, make_bad, words in SHAPE_CASES],
)
async def test_wrong_shape_is_a_bad_request(
    webhook: tuple[Bot, httpx.AsyncClient],
    settings: BotSettings,
    broker_redis: redis.Redis,
    make_bad: Callable[[dict[str, Any]], Any],
    words: list[str],
) -> None:
    bot, client = webhook
    inbound_id = new_inbound_id()
    payload = text_payload(settings, message_id=inbound_id)
    bad = make_bad(json.loads(json.dumps(payload)))
    answer = await post(client, bad, settings.whatsapp_app_secret)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()
    assert set(error) == {"error"}
    assert error["error"].startswith("not a whatsapp_business_account notification: ")
    for word in words:
        assert word in error["error"]
    assert_nothing_done(bot, broker_redis, inbound_id)

    # No claim was left behind: the genuine delivery of the same message is handled.
    good = await post(client, payload, settings.whatsapp_app_secret)
    assert good.status_code == 200
    assert queued(broker_redis) == settings.fixtures_parts


async def test_one_bad_message_rejects_the_whole_batch(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings, broker_redis: redis.Redis
) -> None:
    """Validation comes first: a good fixtures message next to a bad one is not half-handled."""
    bot, client = webhook
    good = text_message(new_inbound_id(), SENDER, "fixtures")
    bad = {"from": SENDER, "type": "text", "text": {"body": "fixtures"}}
    status = {"id": "wamid.1", "status": "sent"}
    payload = notification(
        [
            {
                "field": "messages",
                "value": messages_value(settings, messages=[good], statuses=[status]),
            }
        ],
        [{"field": "messages", "value": messages_value(settings, messages=[bad])}],
    )
    answer = await post(client, payload, settings.whatsapp_app_secret)
    assert answer.status_code == 400
    assert "messages.0.id" in answer.json()["error"]
    assert_nothing_done(bot, broker_redis, good["id"])


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_not_allowed(
    webhook: tuple[Bot, httpx.AsyncClient], broker_redis: redis.Redis, method: str
) -> None:
    bot, client = webhook
    answer = await client.request(method, "/webhook")
    assert answer.status_code == 405
    assert_nothing_done(bot, broker_redis)


async def test_other_paths_are_not_found(
    webhook: tuple[Bot, httpx.AsyncClient], settings: BotSettings, broker_redis: redis.Redis
) -> None:
    bot, client = webhook
    payload = text_payload(settings, message_id=new_inbound_id())
    answer = await post(client, payload, settings.whatsapp_app_secret, path="/webhooks")
    assert answer.status_code == 404
    assert_nothing_done(bot, broker_redis)


# -- broker down ---------------------------------------------------------------------------------


@pytest.fixture
def broker_down_settings(make_settings: SettingsFactory, embedded_broker: Broker) -> BotSettings:
    """The store on the embedded broker, Celery's broker on a port nobody listens on."""
    return make_settings(
        celery_broker_url=f"redis://127.0.0.1:{free_port()}/0",
        bot_redis_url=embedded_broker.url,
        **SMALL,
    )


async def test_broker_down_answers_500_and_releases_the_claim(
    broker_down_settings: BotSettings, broker_redis: redis.Redis
) -> None:
    settings = broker_down_settings
    inbound_id = new_inbound_id()
    async with running(settings) as (bot, client):
        answer = await post(
            client, text_payload(settings, message_id=inbound_id), settings.whatsapp_app_secret
        )
        assert answer.status_code == 500
        # Meta's redelivery must be handled: the dedupe claim was released.
        assert not broker_redis.exists(dedupe_key(inbound_id))
        records = bot.store.outbox()
        assert [record.seq for record in records] == list(range(settings.fixtures_parts))
        for record in records:
            assert record.state == "failed"
            assert record.last_error is not None
            assert record.last_error.startswith("not queued")
        assert queued(broker_redis) == 0


async def broker_down_then_back(
    down: BotSettings, up: BotSettings, payload: dict[str, Any]
) -> tuple[httpx.Response, list[OutboxRecord]]:
    """Deliver `payload` while the broker is down (500), then again once it is back.

    Returns the second answer and the outbox after it.
    """
    async with running(down) as (_, client):
        answer = await post(client, payload, down.whatsapp_app_secret)
        assert answer.status_code == 500
    async with running(up) as (bot, client):
        answer = await post(client, payload, up.whatsapp_app_secret)
        return answer, bot.store.outbox()


async def test_redelivery_after_broker_down_is_queued(
    broker_down_settings: BotSettings, settings: BotSettings, broker_redis: redis.Redis
) -> None:
    inbound_id = new_inbound_id()
    payload = text_payload(settings, message_id=inbound_id)
    answer, _ = await broker_down_then_back(broker_down_settings, settings, payload)
    assert answer.status_code == 200
    assert queued(broker_redis) == settings.fixtures_parts
    assert broker_redis.exists(dedupe_key(inbound_id))


async def test_redelivery_after_broker_down_leaves_one_clean_reply(
    broker_down_settings: BotSettings, settings: BotSettings
) -> None:
    payload = text_payload(settings, message_id=new_inbound_id())
    answer, records = await broker_down_then_back(broker_down_settings, settings, payload)
    assert answer.status_code == 200
    assert [record.seq for record in records] == list(range(settings.fixtures_parts))
    for record in records:
        assert record.state == "queued"
        assert record.last_error is None


async def test_redelivery_after_a_partial_failure_queues_only_the_rest(
    settings: BotSettings, broker_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker fails after two parts: Meta's redelivery queues the other parts, once each."""
    payload = text_payload(settings, message_id=new_inbound_id())
    async with running(settings) as (bot, client):
        publish = bot.send_task.apply_async
        calls = 0

        def fail_after_two(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls > 2:
                raise ConnectionError("broker went away")
            return publish(*args, **kwargs)

        monkeypatch.setattr(bot.send_task, "apply_async", fail_after_two)
        assert (await post(client, payload, settings.whatsapp_app_secret)).status_code == 500
        states = [(r.seq, r.state) for r in bot.store.outbox()]
        assert states == [(0, "queued"), (1, "queued")] + [
            (seq, "failed") for seq in range(2, settings.fixtures_parts)
        ]
        assert queued(broker_redis) == 2

        monkeypatch.setattr(bot.send_task, "apply_async", publish)
        assert (await post(client, payload, settings.whatsapp_app_secret)).status_code == 200
        records = bot.store.outbox()

    assert queued(broker_redis) == settings.fixtures_parts, "no part queued twice"
    task_ids = [headers["id"] for headers in queued_headers(broker_redis)]
    assert sorted(task_ids) == sorted(r.task_id for r in records)
    assert [(r.seq, r.state, r.last_error) for r in records] == [
        (seq, "queued", None) for seq in range(settings.fixtures_parts)
    ]
    assert len(bot.store.inbound()) == 1, "the inbound message is recorded once"


# -- properties ----------------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
TEXTS = (
    st.sampled_from(["fixtures", " FIXTURES ", "Fixtures\n", "\u00a0fixtures"])
    | st.sampled_from(["fixture", "fixtures!", "hello", "", "fix tures", "fixturés"])
    | st.text(max_size=12)
)
IDS = st.sampled_from(["wamid.A", "wamid.B", "wamid.C"]) | st.text(min_size=1, max_size=6)


@st.composite
def near_notifications(draw: st.DrawFn) -> dict[str, Any]:
    """Notifications in Meta's shape, with arbitrary texts and ids and random damage."""

    def maybe(value: Any) -> Any:
        """`value`, or now and then (1 in 32) arbitrary JSON in its place."""
        return draw(JSON) if draw(st.integers(0, 31)) == 31 else value

    def message() -> dict[str, Any]:
        fields = {
            "id": maybe(draw(IDS)),
            "from": maybe(draw(st.sampled_from([SENDER, "15550100999"]))),
            "type": maybe("text"),
            "text": maybe({"body": draw(TEXTS)}),
        }
        extra = draw(st.dictionaries(st.sampled_from(["context", "x", "from_user_id"]), JSON))
        return fields | extra

    def value() -> dict[str, Any]:
        return {
            "messaging_product": maybe("whatsapp"),
            "metadata": maybe({"phone_number_id": "1"}),
            "messages": [message() for _ in range(draw(st.integers(0, 3)))],
            "statuses": draw(
                st.lists(st.fixed_dictionaries({"id": st.text(), "status": st.text()}), max_size=2)
            ),
        }

    entries = [
        {
            "id": maybe("1"),
            "changes": [
                {
                    "field": draw(st.sampled_from(["messages", "messages", "other"])),
                    "value": value(),
                }
                for _ in range(draw(st.integers(1, 2)))
            ],
        }
        for _ in range(draw(st.integers(1, 2)))
    ]
    return {"object": maybe("whatsapp_business_account"), "entry": entries}


def expected_replies(payload: dict[str, Any]) -> int:
    """Replies a valid notification asks for: the first message with each id decides."""
    first: dict[str, bool] = {}
    for entry in payload["entry"]:
        for change in entry["changes"]:
            if change["field"] != "messages":
                continue
            for message in change["value"]["messages"]:
                text = message.get("text")
                wants = isinstance(text, dict) and text["body"].strip().casefold() == "fixtures"
                first.setdefault(message["id"], wants)
    return sum(first.values())


PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def reset(broker_redis: redis.Redis) -> None:
    """Forget the bot's keys and the queued tasks; kombu's bindings stay (kombu caches them)."""
    keys = list(broker_redis.scan_iter(f"{PREFIX}*"))
    broker_redis.delete(QUEUE, *keys)


def test_arbitrary_bodies_are_refused_cleanly(
    settings: BotSettings, broker_redis: redis.Redis
) -> None:
    """Any JSON (or bytes) that is not a notification, correctly signed: 400, nothing done."""
    with created(settings) as bot:
        app = create_webhook_app(bot)

        @PROPERTY_SETTINGS
        @given(body=JSON.map(lambda value: json.dumps(value).encode()) | st.binary(max_size=64))
        def check(body: bytes) -> None:
            reset(broker_redis)
            headers = {"X-Hub-Signature-256": hub_signature(body, settings.whatsapp_app_secret)}
            answer = post_sync(app, body, headers)
            assert answer.status_code == 400, answer.text
            assert set(answer.json()) == {"error"}
            assert_nothing_done(bot, broker_redis)

        check()


def test_near_notifications_never_fail_and_queue_only_fixtures(
    settings: BotSettings, broker_redis: redis.Redis
) -> None:
    """Meta-shaped notifications, damaged at random: never a 500; one reply per fixtures id."""
    with created(settings) as bot:
        app = create_webhook_app(bot)

        @PROPERTY_SETTINGS
        @given(payload=near_notifications())
        def check(payload: dict[str, Any]) -> None:
            reset(broker_redis)
            # json, not orjson: integers beyond 64 bits are valid JSON too.
            body = json.dumps(payload).encode()
            headers = {"X-Hub-Signature-256": hub_signature(body, settings.whatsapp_app_secret)}
            answer = post_sync(app, body, headers)
            assert answer.status_code in (200, 400), answer.text
            if answer.status_code == 400:
                assert set(answer.json()) == {"error"}
                assert_nothing_done(bot, broker_redis)
                return
            replies = expected_replies(payload)
            assert queued(broker_redis) == replies * settings.fixtures_parts
            assert len(bot.store.outbox()) == replies * settings.fixtures_parts

        check()
