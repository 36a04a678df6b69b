"""The OpenAPI document: Graph and admin paths, and the request models the route validates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mock_meta_api import create_app

from .conftest import Mock

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

MESSAGES_PATH = "/{version}/{phone_number_id}/messages"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app().openapi()


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_messages_path_is_documented_with_its_answers(document: dict[str, Any]) -> None:
    operation = document["paths"][MESSAGES_PATH]["post"]

    assert set(document["paths"][MESSAGES_PATH]) == {"post"}
    assert {"200", "400", "401", "429", "500", "503"} <= set(operation["responses"])
    error_schema = operation["responses"]["400"]["content"]["application/json"]["schema"]
    assert error_schema == {"$ref": "#/components/schemas/GraphErrorResponse"}
    body = operation["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["oneOf"] == [
        {"$ref": "#/components/schemas/SendMessage"},
        {"$ref": "#/components/schemas/MarkRead"},
    ]


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/_mock/health", {"get"}),
        ("/_mock/journal", {"get"}),
        ("/_mock/reset", {"post"}),
        ("/_mock/behaviours", {"get", "put", "patch"}),
        ("/_mock/webhooks", {"get"}),
    ],
)
def test_admin_paths_are_documented(document: dict[str, Any], path: str, methods: set[str]) -> None:
    assert set(document["paths"][path]) == methods


def test_journal_filters_are_documented(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/_mock/journal"]["get"]["parameters"]

    assert {p["name"] for p in parameters} == {
        "recipient",
        "correlation",
        "since",
        "after_seq",
        "limit",
        "body",
    }


def test_send_message_schema(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["SendMessage"]

    assert set(schema["required"]) == {"messaging_product", "to"}
    for field in ("messaging_product", "to", "type", "text", "template", "interactive"):
        assert field in schema["properties"]
    assert schema["properties"]["biz_opaque_callback_data"]["anyOf"][0]["maxLength"] == 512
    text = document["components"]["schemas"]["Text"]
    assert text["properties"]["body"]["maxLength"] == 4096
    assert text["properties"]["body"]["minLength"] == 1


async def test_both_success_answers_are_documented(mock: Mock, document: dict[str, Any]) -> None:
    """A send answers Accepted, a mark-as-read {"success": true} (found by fuzzing: the
    document once named only the first)."""
    answer = document["paths"][MESSAGES_PATH]["post"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"]["oneOf"] == [
        {"$ref": "#/components/schemas/Accepted"},
        {"$ref": "#/components/schemas/MarkedRead"},
    ]
    schemas = document["components"]["schemas"]
    sent = await mock.send()
    read = await mock.send({"messaging_product": "whatsapp", "status": "read", "message_id": "w"})
    assert set(schemas["Accepted"]["required"]) <= set(sent.json())
    assert read.json() == {"success": True}
    assert schemas["MarkedRead"]["required"] == ["success"]
    assert schemas["MarkedRead"]["properties"]["success"]["const"] is True


def test_mark_read_schema(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["MarkRead"]

    assert set(schema["required"]) == {"messaging_product", "status", "message_id"}


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    found = set(refs(document))

    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_document_is_built_once() -> None:
    app = create_app()

    assert app.openapi() is app.openapi()


async def test_openapi_json_is_served(mock: Mock, document: dict[str, Any]) -> None:
    answer = await mock.client.get("/openapi.json")

    assert answer.status_code == 200
    assert answer.json()["paths"].keys() == document["paths"].keys()
    assert "SendMessage" in answer.json()["components"]["schemas"]
