"""The Graph API surface: POST /{version}/{phone_number_id}/messages."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import socket
import struct
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from .config import ErrorAnswer, HangAnswer, ResetAnswer
from .errors import GraphError, invalid_token, new_fbtrace_id, unknown_object, unknown_path
from .journal import JournalEntry
from .payloads import MarkRead, SendMessage, decode_json, parse_message
from .state import MockState
from .webhooks import SentMessage

VERSION = re.compile(r"^v\d+\.\d+$")
TRANSPORT_KEY = "mock_meta_api.transport"


class Contact(BaseModel):
    input: str
    wa_id: str


class MessageId(BaseModel):
    id: str
    message_status: str | None = None


class Accepted(BaseModel):
    """Meta's answer to an accepted send."""

    messaging_product: str = "whatsapp"
    contacts: list[Contact]
    messages: list[MessageId]


class GraphErrorObject(BaseModel):
    message: str
    type: str
    code: int
    error_subcode: int | None = None
    error_data: dict[str, str] | None = None
    fbtrace_id: str


class GraphErrorResponse(BaseModel):
    """Meta's error envelope."""

    error: GraphErrorObject


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def graph_error_response(error: GraphError) -> Response:
    trace = new_fbtrace_id()
    headers = {"x-fb-trace-id": trace}
    if error.code == 190:
        headers["www-authenticate"] = (
            'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token"'
        )
    return json_response(error.body(trace), error.http_status, headers)


class ConnectionReset(Response):
    """No HTTP answer: the TCP connection is reset (RST) under the client."""

    def __init__(self) -> None:
        super().__init__(status_code=0)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        transport = scope.get("extensions", {}).get(TRANSPORT_KEY)
        if transport is None:
            raise ConnectionResetError("mock_meta_api: connection reset by fault injection")
        if transport.is_closing():  # the client hung up first (e.g. during a hang)
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        await asyncio.sleep(0)


async def wait_for_disconnect(request: Request, seconds: float | None) -> None:
    """Hold the request open until the client hangs up or `seconds` pass."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), timeout=seconds)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() in ("bearer", "oauth") else None
    return request.query_params.get("access_token")


def build_router(state: MockState) -> APIRouter:
    router = APIRouter(tags=["graph"])
    token = state.config.access_token.encode()

    def check(request: Request, version: str, phone_number_id: str) -> None:
        if not VERSION.match(version):
            raise unknown_path(request.url.path)
        given = bearer_token(request)
        if given is None or not hmac.compare_digest(given.encode(), token):
            raise invalid_token()
        if phone_number_id not in state.phone_number_ids:
            raise unknown_object(phone_number_id)

    def limit(phone_number_id: str, wa_id: str) -> None:
        now = time.monotonic()
        behaviours = state.behaviours
        if behaviours.throughput.enabled and not state.throughput.allow((phone_number_id,), now):
            raise GraphError(130429, behaviours.throughput.http_status)
        if behaviours.pair_rate.enabled and not state.pair_rate.allow(
            (phone_number_id, wa_id), now
        ):
            raise GraphError(131056, behaviours.pair_rate.http_status)

    def record(entry: JournalEntry, message: SendMessage) -> None:
        entry.recipient = message.wa_id
        entry.type = message.type
        entry.body = message.body_text
        entry.biz_opaque_callback_data = message.biz_opaque_callback_data

    async def cut_off(
        request: Request, entry: JournalEntry, fault: HangAnswer | ResetAnswer
    ) -> Response:
        """Answer nothing: hang first if asked, then reset the connection."""
        if isinstance(fault, HangAnswer):
            entry.outcome = "hang"
            hang_s = (
                fault.hang_s
                if fault.hang_s is not None
                else state.faults.outage_left(time.monotonic())
            )
            await wait_for_disconnect(request, hang_s)
        else:
            entry.outcome = "reset"
        entry.responded_at = time.time()
        return ConnectionReset()

    @router.post(
        "/{version}/{phone_number_id}/messages",
        summary="Send a message (or mark one as read)",
        responses={
            200: {"model": Accepted},
            400: {"model": GraphErrorResponse},
            401: {"model": GraphErrorResponse},
            429: {"model": GraphErrorResponse},
            500: {"model": GraphErrorResponse},
            503: {"model": GraphErrorResponse},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/SendMessage"},
                                {"$ref": "#/components/schemas/MarkRead"},
                            ]
                        }
                    }
                },
            }
        },
    )
    async def send_message(request: Request, version: str, phone_number_id: str) -> Response:
        entry = state.journal.open(
            received_at=time.time(),
            method="POST",
            path=request.url.path,
            api_version=version,
            phone_number_id=phone_number_id,
        )
        delay = state.latency.sample(phone_number_id)
        try:
            check(request, version, phone_number_id)
            message = parse_message(decode_json(await request.body()))
            if isinstance(message, MarkRead):
                entry.type = "mark_read"
                answer: Response = json_response({"success": True}, 200)
            else:
                record(entry, message)
                entry.attempt = state.next_attempt()
                fault = state.faults.decide(entry.attempt, time.monotonic())
                if isinstance(fault, ErrorAnswer):
                    raise GraphError(
                        fault.code,
                        fault.http_status,
                        fault.details,
                        error_subcode=fault.error_subcode,
                    )
                if fault is not None:
                    return await cut_off(request, entry, fault)
                limit(phone_number_id, message.wa_id)
                entry.wamid = state.new_wamid(message.wa_id)
                answer = json_response(
                    {
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": message.to, "wa_id": message.wa_id}],
                        "messages": [{"id": entry.wamid}],
                    },
                    200,
                )
            entry.outcome = "accepted"
        except GraphError as error:
            answer = graph_error_response(error)
            entry.error_code = error.code
            entry.outcome = "error"
        if delay > 0:
            entry.latency_s = delay
            await asyncio.sleep(delay)
        entry.http_status = answer.status_code
        entry.responded_at = time.time()
        if entry.wamid is not None:
            state.webhooks.schedule(
                state.behaviours.webhooks,
                SentMessage(
                    entry.wamid,
                    phone_number_id,
                    entry.recipient or "",
                    entry.biz_opaque_callback_data,
                ),
            )
        return answer

    return router
