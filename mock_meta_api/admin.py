"""Admin API under /_mock: journal, reset, behaviours, webhooks, health.

Loopback clients only, unless the config sets `admin_allow_remote`: the
admin routes can rewrite the mock's behaviour, so they are not for the network.
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ValidationError

from .config import Behaviours, describe_validation_error
from .journal import JournalEntry
from .state import MockState
from .webhooks import Delivery

PREFIX = "/_mock"


class Health(BaseModel):
    status: str
    started_at: float
    uptime_s: float
    journal_entries: int
    send_attempts: int
    phone_number_ids: list[str]


class JournalPage(BaseModel):
    count: int
    dropped: int
    entries: list[JournalEntry]


class Deliveries(BaseModel):
    count: int
    pending: int
    deliveries: list[Delivery]


class Problem(BaseModel):
    field: str
    message: str
    input: Any = None


class AdminErrorObject(BaseModel):
    status: int
    message: str
    problems: list[Problem] | None = None


class AdminError(BaseModel):
    """Every admin error: a status, one readable message, and the fields at fault."""

    error: AdminErrorObject


def is_loopback(host: str | None) -> bool:
    if host is None:  # a Unix socket: local by construction
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def build_router(state: MockState) -> APIRouter:
    def loopback_only(request: Request) -> None:
        host = request.client.host if request.client else None
        if not state.config.admin_allow_remote and not is_loopback(host):
            raise HTTPException(
                403,
                f"admin routes answer loopback clients only (got {host}); "
                "set admin_allow_remote = true in the config to allow others",
            )

    router = APIRouter(
        prefix=PREFIX,
        tags=["admin"],
        dependencies=[Depends(loopback_only)],
        responses={403: {"model": AdminError}, 422: {"model": AdminError}},
    )

    @router.get("/health", response_model=Health)
    async def health() -> Health:
        return Health(
            status="ok",
            started_at=state.started_at,
            uptime_s=time.time() - state.started_at,
            journal_entries=len(state.journal),
            send_attempts=state.attempts,
            phone_number_ids=sorted(state.phone_number_ids),
        )

    @router.get("/journal", response_model=JournalPage)
    async def journal(
        recipient: Annotated[str | None, Query(description="wa_id or phone number")] = None,
        correlation: Annotated[str | None, Query(description="biz_opaque_callback_data")] = None,
        since: Annotated[float | None, Query(description="received_at >= since (epoch s)")] = None,
        after_seq: Annotated[int | None, Query(ge=0, description="entries after this seq")] = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
        body: Annotated[
            bool, Query(description="Include each request's body (false: lighter pages)")
        ] = True,
    ) -> JournalPage:
        wa_id = re.sub(r"\D", "", recipient) if recipient is not None else None
        entries = state.journal.select(wa_id, correlation, since, after_seq, limit, body)
        return JournalPage(count=len(entries), dropped=state.journal.dropped, entries=entries)

    @router.post("/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    @router.get("/behaviours", response_model=Behaviours)
    async def get_behaviours() -> Behaviours:
        return state.behaviours

    @router.put("/behaviours", response_model=Behaviours)
    async def put_behaviours(behaviours: Behaviours) -> Behaviours:
        state.apply(behaviours)
        return state.behaviours

    @router.patch("/behaviours", response_model=Behaviours)
    async def patch_behaviours(
        sections: Annotated[
            dict[str, Any],
            Body(description='top-level sections to replace, e.g. {"latency": {...}}'),
        ],
    ) -> Behaviours:
        merged = state.behaviours.model_dump() | sections
        try:
            behaviours = Behaviours.model_validate(merged)
        except ValidationError as exc:
            raise HTTPException(422, describe_validation_error(exc, "behaviours")) from None
        state.apply(behaviours)
        return state.behaviours

    @router.get("/webhooks", response_model=Deliveries)
    async def webhooks() -> Deliveries:
        deliveries = list(state.webhooks.deliveries)
        return Deliveries(
            count=len(deliveries), pending=state.webhooks.pending, deliveries=deliveries
        )

    return router
