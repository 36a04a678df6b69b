"""The workload: signed inbound webhooks, shaped and signed as Meta sends them.

One "fixtures" text per simulated user starts the flow; the same payload builder
serves the harness, the tests and Locust.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import orjson

from mock_meta_api.config import DEFAULT_DISPLAY_PHONE_NUMBER, DEFAULT_WABA_ID
from mock_meta_api.webhooks import business_scoped_user_id, sign


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
