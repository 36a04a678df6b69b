"""The Graph API surface: POST /{version}/{phone_number_id}/messages.

A plain Starlette route rather than a FastAPI one: the route validates its own
body (to answer in Graph's words), so FastAPI's dependency machinery would only
add cost — about half of the per-request time in the benchmark. The OpenAPI
document still describes it (`openapi_operation`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import socket
import struct
import time
from typing import Any, Literal

import orjson
from pydantic import BaseModel
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .config import ErrorAnswer, HangAnswer, ResetAnswer
from .errors import GraphError, invalid_token, new_fbtrace_id, unknown_object, unknown_path
from .journal import Record
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


class MarkedRead(BaseModel):
    """Meta's answer to a mark-as-read request."""

    success: Literal[True]


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
    try:
        content = orjson.dumps(body)
    except TypeError:  # an integer beyond 64 bits (an invalid input echoed back): json takes any
        content = json.dumps(body).encode()
    return Response(content, status_code=status, media_type="application/json", headers=headers)


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


SEND_PATH = "/{version}/{phone_number_id}/messages"


def build_route(state: MockState) -> Route:
    token = state.config.access_token.encode()

    def check(request: Request, version: str, phone_number_id: str) -> None:
        if not VERSION.match(version):
            raise unknown_path(request.scope["path"])
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

    async def cut_off(request: Request, entry: Record, fault: HangAnswer | ResetAnswer) -> Response:
        """Answer nothing: hang first if asked, then reset the connection."""
        if isinstance(fault, HangAnswer):
            entry["outcome"] = "hang"
            hang_s = (
                fault.hang_s
                if fault.hang_s is not None
                else state.faults.outage_left(time.monotonic())
            )
            await wait_for_disconnect(request, hang_s)
        else:
            entry["outcome"] = "reset"
        entry["responded_at"] = time.time()
        return ConnectionReset()

    async def accept(request: Request, entry: Record, phone_number_id: str) -> Response:
        """Validate, apply faults and limits, and build the answer (errors raise GraphError)."""
        message = parse_message(decode_json(await request.body()))
        if isinstance(message, MarkRead):
            entry["type"] = "mark_read"
            return json_response({"success": True}, 200)
        wa_id = message.wa_id
        entry["recipient"] = wa_id
        entry["type"] = message.type
        entry["body"] = message.body_text
        entry["biz_opaque_callback_data"] = message.biz_opaque_callback_data
        entry["attempt"] = attempt = state.next_attempt(phone_number_id)
        fault = state.faults.decide(attempt, time.monotonic())
        if isinstance(fault, ErrorAnswer):
            raise GraphError(
                fault.code, fault.http_status, fault.details, error_subcode=fault.error_subcode
            )
        if fault is not None:
            return await cut_off(request, entry, fault)
        limit(phone_number_id, wa_id)
        entry["wamid"] = wamid = state.new_wamid(wa_id)
        return json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": message.to, "wa_id": wa_id}],
                "messages": [{"id": wamid}],
            },
            200,
        )

    async def send_message(request: Request) -> Response:
        version = request.path_params["version"]
        phone_number_id = request.path_params["phone_number_id"]
        entry = state.journal.open(
            time.time(),
            "POST",
            request.scope["path"],
            api_version=version,
            phone_number_id=phone_number_id,
        )
        delay = state.latency.sample(phone_number_id)
        try:
            check(request, version, phone_number_id)
            answer = await accept(request, entry, phone_number_id)
        except GraphError as error:
            answer = graph_error_response(error)
            entry["error_code"] = error.code
        except ClientDisconnect:
            entry["outcome"] = "disconnected"  # the client left before its body arrived
            raise
        if isinstance(answer, ConnectionReset):
            return answer
        if answer.status_code == 200:
            entry["outcome"] = "accepted"
        if delay > 0:
            entry["latency_s"] = delay
            await asyncio.sleep(delay)
            # The loop's timer runs on the monotonic clock and the journal on the wall clock,
            # which the kernel may slew: sleep out the rest so the journal shows the delay.
            while (rest := entry["received_at"] + delay - time.time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(rest)  # a clock to wait out, not an event to wait for
        entry["http_status"] = answer.status_code
        entry["responded_at"] = time.time()
        if entry["wamid"] is not None:
            sent = SentMessage(
                entry["wamid"],
                phone_number_id,
                entry["recipient"],
                entry["biz_opaque_callback_data"],
            )
            state.webhooks.schedule(state.behaviours.webhooks, sent)
        return answer

    return Route(SEND_PATH, send_message, methods=["POST"], name="send_message")


def openapi_operation() -> dict[str, Any]:
    """The OpenAPI description of the send route (models live in components)."""
    error = {"$ref": "#/components/schemas/GraphErrorResponse"}
    responses: dict[str, Any] = {
        "200": {
            "description": "Accepted (a send), or marked as read",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/Accepted"},
                            {"$ref": "#/components/schemas/MarkedRead"},
                        ]
                    }
                }
            },
        }
    }
    for status, meaning in (
        ("400", "Invalid parameter (100), unknown object, pair rate limit (131056)"),
        ("401", "Missing or invalid access token (190)"),
        ("429", "Throughput limit (130429)"),
        ("500", "Scripted or random failure (e.g. 131000)"),
        ("503", "Outage (131016)"),
    ):
        responses[status] = {
            "description": meaning,
            "content": {"application/json": {"schema": error}},
        }
    path_param = {"in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "post": {
            "tags": ["graph"],
            "summary": "Send a message (or mark one as read)",
            "operationId": "send_message",
            "parameters": [
                {"name": "version", **path_param, "description": "Graph API version, vNN.N"},
                {"name": "phone_number_id", **path_param, "description": "Business number ID"},
            ],
            "security": [{"bearer": []}],
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
            },
            "responses": responses,
        }
    }


OPENAPI_MODELS: tuple[type[BaseModel], ...] = (
    SendMessage,
    MarkRead,
    Accepted,
    MarkedRead,
    GraphErrorResponse,
)
