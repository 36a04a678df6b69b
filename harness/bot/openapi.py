"""The webhook's OpenAPI document: its real routes, what Meta sends and what the bot answers.

Built from the same models the webhook validates with, so the document cannot drift
from the code; served at `/openapi.json` and read by the fuzz tests (schemathesis).
"""

from __future__ import annotations

from typing import Any

from .payload import MAX_BODY_BYTES, MessagesValue, Notification

SIGNATURE_HEADER = "X-Hub-Signature-256"
_REF = "#/components/schemas/{model}"


def _text(description: str, example: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if example is not None:
        schema["example"] = example
    return {"description": description, "content": {"text/plain": {"schema": schema}}}


def _schemas() -> dict[str, Any]:
    """Notification and MessagesValue as JSON Schema, `$defs` lifted into components."""
    schemas: dict[str, Any] = {}
    for model in (Notification, MessagesValue):
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    # `value` is typed loosely in code (other fields carry other shapes); a `messages`
    # change's value is a MessagesValue, any other field's an object of its own.
    schemas["Change"]["properties"]["value"] = {
        "anyOf": [{"$ref": _REF.format(model="MessagesValue")}, {"type": "object"}]
    }
    schemas["BadRequest"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
        "additionalProperties": False,
    }
    return schemas


def openapi_document(path: str = "/webhook") -> dict[str, Any]:
    """The OpenAPI 3.1 document of `create_webhook_app(bot, path)`."""
    query = {"in": "query", "required": False, "schema": {"type": "string"}}
    verify = {
        "summary": "Meta's subscription check: echo hub.challenge if the token matches",
        "operationId": "verify_subscription",
        "parameters": [
            {"name": "hub.mode", **query, "description": "`subscribe`"},
            {"name": "hub.verify_token", **query, "description": "The bot's verify token"},
            {"name": "hub.challenge", **query, "description": "Echoed back when accepted"},
        ],
        "responses": {
            "200": _text("The challenge, verbatim"),
            "403": _text("Wrong mode or token, or no challenge", "Forbidden"),
        },
    }
    notify = {
        "summary": "A notification (inbound messages, statuses); fixtures requests are queued",
        "operationId": "notify",
        "parameters": [
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "description": "sha256=<hex HMAC-SHA256 of the raw body with the app secret>",
                "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
            }
        ],
        "requestBody": {
            "required": True,
            "description": f"Meta's notification JSON, at most {MAX_BODY_BYTES} bytes",
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model="Notification")}}
            },
        },
        "responses": {
            "200": _text("Handled (a redelivered message id is acknowledged, not redone)"),
            "400": {
                "description": "Not JSON, or not a whatsapp_business_account notification",
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(model="BadRequest")}}
                },
            },
            "403": _text("Missing or wrong signature", "Invalid signature"),
            "413": _text(f"Body over {MAX_BODY_BYTES} bytes, refused unread"),
            "500": _text("Could not queue the reply (broker down); Meta redelivers"),
        },
    }
    health = {
        "summary": "Liveness, for whoever waits for the bot to come up",
        "operationId": "health",
        "responses": {
            "200": {
                "description": "Up",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"ok": {"const": True}},
                            "required": ["ok"],
                        }
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bot webhook (WhatsApp Cloud API notifications)",
            "version": "1.0",
            "description": "The webhook Meta calls: GET to verify the subscription, "
            "POST with signed notifications.",
        },
        "paths": {path: {"get": verify, "post": notify}, "/healthz": {"get": health}},
        "components": {"schemas": _schemas()},
    }
