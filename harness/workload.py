"""The workload: signed inbound webhooks, shaped and signed as Meta sends them, and the
requests a run sends with them.

One "fixtures" text per simulated user starts the flow; the same payload builder
serves the harness, the tests and Locust (`send_fixtures` is the harness's own sender).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from mock_meta_api.config import DEFAULT_DISPLAY_PHONE_NUMBER, DEFAULT_WABA_ID
from mock_meta_api.webhooks import business_scoped_user_id, sign

from .bot.flow import correlation_for

if TYPE_CHECKING:  # Locust imports this module in each of its processes: no stack there
    from .stack.backend import Lane, Stack


def new_inbound_id() -> str:
    """A fresh id in the shape of Meta's inbound message ids."""
    return "wamid.HBgL" + secrets.token_urlsafe(24)


def inbound_text(
    *,
    phone_number_id: str,
    sender: str,
    text: str,
    message_id: str,
    waba_id: str = DEFAULT_WABA_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    profile_name: str = "Load Test",
) -> dict[str, Any]:
    """Meta's `messages` notification for one text from `sender` to our business number."""
    user_id = business_scoped_user_id(waba_id, sender)
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": display_phone_number,
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [
                                {
                                    "profile": {"name": profile_name},
                                    "wa_id": sender,
                                    "user_id": user_id,
                                }
                            ],
                            "messages": [
                                {
                                    "from": sender,
                                    "from_user_id": user_id,
                                    "id": message_id,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def signed(payload: dict[str, Any], app_secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw body and the headers Meta sends with it."""
    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign(body, app_secret),
        "User-Agent": "facebookexternalua",
    }
    return body, headers


def post_inbound(
    client: httpx.Client, webhook_url: str, payload: dict[str, Any], app_secret: str
) -> httpx.Response:
    """POST one notification to the bot, signed with the app secret."""
    body, headers = signed(payload, app_secret)
    return client.post(webhook_url, content=body, headers=headers)


def send_fixtures(
    stack: Stack,
    recipients: int = 1,
    on_answered: Callable[[str], None] | None = None,
) -> list[str]:
    """One signed "fixtures" request per recipient and lane; the errors, if any.

    Lanes are sent to one after another: each lane's schedule counts from its own
    requests, and queuing every lane at once on a small machine would make part 0 late.
    `on_answered(lane)` is called as soon as a lane's requests are answered.
    """
    errors: list[str] = []
    with httpx.Client(timeout=10) as client:
        for lane in stack.lanes.values():
            errors += _send_lane(client, lane, recipients)
            if on_answered is not None:
                on_answered(lane.name)
    return errors


def _send_lane(client: httpx.Client, lane: Lane, recipients: int) -> list[str]:
    errors: list[str] = []
    external = lane.spec.external
    keyword = external.keyword if external is not None else lane.settings.fixtures_keyword
    for n in range(recipients):
        inbound_id = new_inbound_id()
        payload = inbound_text(
            phone_number_id=lane.phone_number_id,
            sender=lane.recipient(n),
            text=keyword,
            message_id=inbound_id,
        )
        # An external lane's schedule counts from here: its parts are due seq * spacing later.
        lane.requests.append((correlation_for(inbound_id), lane.recipient(n), time.time()))
        try:
            answer = post_inbound(
                client, lane.webhook_url, payload, lane.settings.whatsapp_app_secret
            )
        except httpx.HTTPError as exc:
            errors.append(f"{lane.name}: request {correlation_for(inbound_id)}: {exc}")
            continue
        if answer.status_code != 200:
            errors.append(
                f"{lane.name}: the webhook answered {answer.status_code} "
                f"to request {correlation_for(inbound_id)}"
            )
    return errors
