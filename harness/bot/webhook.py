"""The bot's webhook, as Meta calls it: GET to verify the subscription, POST with notifications.

A POST is checked (signature, JSON, Meta's shape) before anything is stored or
queued, then answered quickly: the fixtures parts are queued for the workers,
not sent inline. A redelivered inbound message (same id) is not handled twice.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .app import Bot
from .flow import is_fixtures_request, queue_fixtures
from .openapi import openapi_document
from .payload import MAX_BODY_BYTES, MessagesValue, ShapeError, messages_values

logger = logging.getLogger("bot.webhook")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request's body, or None once it is longer than `limit` (declared or sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def signature_ok(body: bytes, header: str | None, app_secret: str) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC of the raw body>`, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def _bad_request(reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=400)


def handle(bot: Bot, values: list[MessagesValue]) -> None:
    """Record statuses and inbound messages; queue a fixtures reply per new request."""
    received_at = time.time()
    for value in values:
        for status in value.statuses:
            bot.store.record_status(
                {**status.model_dump(by_alias=True), "received_at": received_at}
            )
        for message in value.messages:
            if not bot.store.claim_inbound(message.id):
                logger.info("duplicate inbound %s ignored", message.id)
                continue
            if message.text is not None and is_fixtures_request(message.text.body, bot.settings):
                try:
                    queue_fixtures(
                        bot.settings, bot.store, bot.send_task, message.sender, message.id
                    )
                except Exception:
                    bot.store.release_inbound(message.id)  # let Meta's redelivery try again
                    raise
            bot.store.record_inbound(
                {**message.model_dump(by_alias=True), "received_at": received_at}
            )


def create_webhook_app(bot: Bot, path: str = "/webhook") -> Starlette:
    """The ASGI app: `path` for Meta, `/healthz` for whoever waits for the bot to come up,
    `/openapi.json` for clients and fuzzers."""

    async def verify(request: Request) -> Response:
        params = request.query_params
        if (
            params.get("hub.mode") == "subscribe"
            and params.get("hub.verify_token") == bot.settings.whatsapp_verify_token
            and params.get("hub.challenge")
        ):
            return PlainTextResponse(params["hub.challenge"])
        return PlainTextResponse("Forbidden", status_code=403)

    async def notify(request: Request) -> Response:
        body = await read_body(request)
        if body is None:
            return PlainTextResponse("Payload too large", status_code=413)
        header = request.headers.get("x-hub-signature-256")
        if not signature_ok(body, header, bot.settings.whatsapp_app_secret):
            return PlainTextResponse("Invalid signature", status_code=403)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _bad_request("body is not JSON")
        try:
            values = messages_values(data)
        except ShapeError as exc:
            return _bad_request(str(exc))
        try:
            await run_in_threadpool(handle, bot, values)
        except Exception:
            logger.exception("could not handle a notification; Meta will redeliver it")
            return PlainTextResponse("Temporarily unavailable", status_code=500)
        return PlainTextResponse("EVENT_RECEIVED")

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    document = openapi_document(path)

    async def openapi(_: Request) -> Response:
        return JSONResponse(document)

    return Starlette(
        routes=[
            Route(path, verify, methods=["GET"]),
            Route(path, notify, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ]
    )
