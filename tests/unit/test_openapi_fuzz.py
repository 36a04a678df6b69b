"""The mock and the bot's webhook fuzzed from their own OpenAPI documents (schemathesis).

Every operation of each document gets generated requests, valid and not, sent in-process
(ASGI) to the real app: the mock with its real state, the bot with its real store and Celery
app on the embedded Valkey. Checks: never a 5xx (a crash), and every answer's status,
content type and body as the document states them. The runs are derandomized and bounded
(examples per operation and phase), so every run, here and in CI, tries the same cases;
`test_cases_tried` counts them (the security page of the docs quotes the count).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.bot.app import Bot, create_bot
from harness.bot.openapi import SIGNATURE_HEADER, openapi_document
from harness.bot.webhook import create_webhook_app
from mock_meta_api import create_app
from mock_meta_api.config import Behaviours

from .conftest import LOOPBACK_CLIENT, PHONE_ID, TOKEN, VERSION
from .test_bot_webhook import PREFIX, QUEUE, SMALL, SettingsFactory

pytestmark = pytest.mark.unit

# Per operation and phase. Notifications (nested, open objects) are slow to generate:
# 0.3-0.5 s each on 2 cores, so the webhook gets fewer.
MOCK_EXAMPLES = 50
WEBHOOK_EXAMPLES = 25
# The coverage phase is left out: it is not bounded by a count (it walks the schema's
# boundaries: ~1,700 cases, ~1,300 of them for the mock's PUT /_mock/behaviours; ~2 min).
PHASES = ("examples", "fuzzing")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def bounded(max_examples: int) -> settings:
    """The same cases on every run (derandomized, no example database), never timed out."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


# Cases sent, by document and operation: filled by the fuzz tests, read by test_cases_tried.
TRIED: Counter[tuple[str, str]] = Counter()


def fuzz_config(**extra: Any) -> SchemathesisConfig:
    phases = {name: {"enabled": name in PHASES} for name in ("examples", "coverage", "fuzzing")}
    return SchemathesisConfig.from_dict(
        {"phases": phases | {"stateful": {"enabled": False}}, **extra}
    )


# -- the mock ------------------------------------------------------------------------------------


class LoopbackMock:
    """The mock app, reached from a loopback client (its admin routes answer only those),
    with its default behaviours and an empty journal again before every case."""

    def __init__(self) -> None:
        self.app = create_app()

    def restore(self) -> None:
        state = self.app.state.mock
        state.apply(Behaviours())
        state.reset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": LOOPBACK_CLIENT}
        await self.app(scope, receive, send)


MOCK = LoopbackMock()
# The right token and a served number on every case: the send route's validation, faults and
# limits are what is fuzzed (tokens and unknown numbers have tests of their own).
mock_schema = schemathesis.openapi.from_dict(
    MOCK.app.openapi(),
    config=fuzz_config(
        headers={"Authorization": f"Bearer {TOKEN}"},
        parameters={"version": VERSION, "phone_number_id": PHONE_ID},
    ),
)
mock_schema.app = MOCK


@mock_schema.parametrize()
@bounded(MOCK_EXAMPLES)
def test_mock_answers_every_generated_request_as_documented(case: schemathesis.Case) -> None:
    MOCK.restore()
    TRIED["mock", case.operation.label] += 1
    case.call_and_validate(checks=CHECKS)


# -- the bot's webhook ---------------------------------------------------------------------------


class Signing:
    """Sign 3 POSTs in 4 with the bot's app secret (as Meta would), so generated bodies get
    past the signature check to the JSON and shape checks; the 4th keeps its generated
    (wrong) signature. Signing needs the exact bytes, so the body is read here first."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self.secret = secret.encode()
        self.posts = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        self.posts += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.posts % 4:
            signature = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            name = SIGNATURE_HEADER.lower().encode()
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != name]
            scope = {**scope, "headers": [*headers, (name, signature.encode())]}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def done_by(bot: Bot, broker_redis: redis.Redis) -> tuple[int, int, int, int, int]:
    """What the bot has done so far: tasks queued, outbox parts, inbound and statuses
    recorded, inbound ids claimed."""
    claims = sum(1 for _ in broker_redis.scan_iter(f"{PREFIX}inbound:*"))
    return (
        int(broker_redis.llen(QUEUE)),
        len(bot.store.outbox()),
        len(bot.store.inbound()),
        len(bot.store.statuses()),
        claims,
    )


@pytest.fixture
def bot(make_settings: SettingsFactory) -> Iterator[Bot]:
    bot = create_bot(make_settings(**SMALL))
    try:
        yield bot
    finally:
        bot.celery.close()
        bot.store.redis.close()


class Late:
    """An ASGI app set once the test's fixtures have built it (the bot needs the broker)."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the webhook fixture sets the app"
        await self.app(scope, receive, send)


WEBHOOK = Late()
bot_schema = schemathesis.openapi.from_dict(openapi_document(), config=fuzz_config())
bot_schema.app = WEBHOOK


@pytest.fixture
def webhook(bot: Bot) -> Iterator[None]:
    """The bot's webhook app behind WEBHOOK, signing as `Signing` says, for one test."""
    WEBHOOK.app = Signing(create_webhook_app(bot), bot.settings.whatsapp_app_secret)
    try:
        yield
    finally:
        WEBHOOK.app = None


@bot_schema.parametrize()
@bounded(WEBHOOK_EXAMPLES)
def test_bot_answers_every_generated_request_as_documented(
    case: schemathesis.Case, bot: Bot, broker_redis: redis.Redis, webhook: None
) -> None:
    """And whatever it refuses leaves nothing queued, stored or claimed."""
    TRIED["bot", case.operation.label] += 1
    before = done_by(bot, broker_redis)
    answer = case.call_and_validate(checks=CHECKS)
    if answer.status_code != 200:
        assert done_by(bot, broker_redis) == before, answer.text


# -- what was tried ------------------------------------------------------------------------------


def test_cases_tried() -> None:
    """Every operation of both documents was fuzzed; prints how many cases (with `-s`).

    It runs after the fuzz tests (file order); a selection without them skips it.
    """
    expected = {
        "mock": {
            f"{method.upper()} {path}"
            for path, methods in MOCK.app.openapi()["paths"].items()
            for method in methods
        },
        "bot": {
            f"{method.upper()} {path}"
            for path, methods in openapi_document()["paths"].items()
            for method in methods
        },
    }
    tried = {doc: {op for name, op in TRIED if name == doc} for doc in expected}
    if tried != expected:
        pytest.skip(f"not every fuzz test ran: {sorted(TRIED)}")
    by_doc = {doc: sum(n for (name, _), n in TRIED.items() if name == doc) for doc in expected}
    print(f"\nfuzz cases tried: {by_doc}, total {sum(by_doc.values())}")
