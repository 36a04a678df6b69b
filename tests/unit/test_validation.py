"""Request validation: every violation is 400, code 100, with Graph's `details` sentence.

Plus properties over arbitrary bodies: never a 500, always either Meta's
success shape or a code 100 error with a non-empty explanation.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import event, given, settings
from hypothesis import strategies as st

from mock_meta_api import create_app
from mock_meta_api.payloads import MAX_CALLBACK_DATA, MAX_TEXT_BODY

from .conftest import (
    AUTH,
    BASE_URL,
    MESSAGES,
    RECIPIENT,
    Mock,
    assert_accepted,
    details_of,
    make_config,
    text_message,
    unlimited,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


def without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key not in keys}


def with_text(**text: Any) -> dict[str, Any]:
    return text_message() | {"text": text}


def template(**content: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "template"} | content


def interactive(**content: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": RECIPIENT, "type": "interactive"} | content


def mark_read(**content: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"} | content


LANGUAGE = {"code": "en_US"}

# (payload, the exact `error_data.details` Graph-style sentence)
VIOLATIONS: list[Any] = [
    pytest.param(
        without(text_message(), "messaging_product"),
        "The parameter messaging_product is required.",
        id="messaging_product-missing",
    ),
    pytest.param(
        text_message(messaging_product="sms"),
        "Param messaging_product must be one of {'whatsapp'} - got 'sms'.",
        id="messaging_product-wrong",
    ),
    pytest.param(without(text_message(), "to"), "The parameter to is required.", id="to-missing"),
    pytest.param(text_message(to=15550100200), "Param to must be a string.", id="to-number"),
    *[
        pytest.param(
            text_message(to=to),
            "Param to must be a phone number in international format (5-15 digits).",
            id=f"to-{label}",
        )
        for label, to in [
            ("empty", ""),
            ("letters", "call-me"),
            ("too-short", "1234"),
            ("too-long", "1234567890123456"),
            ("two-plus", "++15550100200"),
            ("plus-inside", "1555+0100200"),
            ("arabic-indic-digits", "\u0661\u0662\u0663\u0664\u0665\u0666"),
        ]
    ],
    pytest.param(
        text_message(type="carousel"),
        "Param type must be one of {'audio', 'contacts', 'document', 'image', 'interactive', "
        "'location', 'reaction', 'sticker', 'template', 'text' or 'video'} - got 'carousel'.",
        id="type-unknown",
    ),
    pytest.param(
        without(text_message(), "text"), "The parameter text is required.", id="text-missing"
    ),
    pytest.param(text_message(text=None), "The parameter text is required.", id="text-null"),
    pytest.param(text_message(text="hi"), "Param text must be a JSON object.", id="text-string"),
    pytest.param(with_text(), "The parameter text['body'] is required.", id="body-missing"),
    pytest.param(with_text(body=""), "The parameter text['body'] is required.", id="body-empty"),
    pytest.param(with_text(body=42), "Param text['body'] must be a string.", id="body-number"),
    pytest.param(
        with_text(body="x" * (MAX_TEXT_BODY + 1)),
        "Param text['body'] must be at most 4096 characters long.",
        id="body-4097",
    ),
    pytest.param(
        with_text(body="hi", preview_url="maybe"),
        "Param text['preview_url'] must be a boolean.",
        id="preview_url-not-bool",
    ),
    pytest.param(
        text_message(biz_opaque_callback_data="c" * (MAX_CALLBACK_DATA + 1)),
        "Param biz_opaque_callback_data must be at most 512 characters long.",
        id="callback-data-513",
    ),
    pytest.param(
        text_message(biz_opaque_callback_data=7),
        "Param biz_opaque_callback_data must be a string.",
        id="callback-data-number",
    ),
    pytest.param(
        text_message(recipient_type="broadcast"),
        "Param recipient_type must be one of {'individual' or 'group'} - got 'broadcast'.",
        id="recipient_type-unknown",
    ),
    pytest.param(
        text_message(context={}),
        "The parameter context['message_id'] is required.",
        id="context-without-message_id",
    ),
    pytest.param(template(), "The parameter template is required.", id="template-missing"),
    pytest.param(
        template(template={"language": LANGUAGE}),
        "The parameter template['name'] is required.",
        id="template-name-missing",
    ),
    pytest.param(
        template(template={"name": "", "language": LANGUAGE}),
        "The parameter template['name'] is required.",
        id="template-name-empty",
    ),
    pytest.param(
        template(template={"name": "fixtures"}),
        "The parameter template['language'] is required.",
        id="template-language-missing",
    ),
    pytest.param(
        template(template={"name": "fixtures", "language": {}}),
        "The parameter template['language']['code'] is required.",
        id="template-language-code-missing",
    ),
    pytest.param(
        template(template={"name": "fixtures", "language": LANGUAGE, "components": {}}),
        "Param template['components'] must be an array.",
        id="template-components-not-array",
    ),
    pytest.param(interactive(), "The parameter interactive is required.", id="interactive-missing"),
    pytest.param(
        interactive(interactive={"type": "button"}),
        "The parameter interactive['action'] is required.",
        id="interactive-action-missing",
    ),
    pytest.param(
        interactive(interactive={"action": {}}),
        "The parameter interactive['type'] is required.",
        id="interactive-type-missing",
    ),
    pytest.param(
        interactive(interactive={"type": "carousel", "action": {}}),
        "Param interactive['type'] must be one of {'button', 'list', 'product', 'product_list', "
        "'cta_url', 'flow' or 'location_request_message'} - got 'carousel'.",
        id="interactive-type-unknown",
    ),
    pytest.param(
        text_message(type="image"), "The parameter image is required.", id="image-missing"
    ),
    pytest.param(
        text_message(type="image", image="https://example.test/a.png"),
        "Param image must be a JSON object.",
        id="image-not-object",
    ),
    pytest.param(
        text_message(type="contacts", contacts={"name": {"formatted_name": "A"}}),
        "Param contacts must be an array.",
        id="contacts-not-array",
    ),
    pytest.param(
        without(mark_read(), "message_id"),
        "The parameter message_id is required.",
        id="mark-read-message_id-missing",
    ),
    pytest.param(
        mark_read(status="delivered"),
        "Param status must be one of {'read'} - got 'delivered'.",
        id="mark-read-status-not-read",
    ),
    pytest.param(
        without(mark_read(), "messaging_product"),
        "The parameter messaging_product is required.",
        id="mark-read-messaging_product-missing",
    ),
    pytest.param([text_message()], "The request body must be a JSON object.", id="json-array"),
    pytest.param("hello", "The request body must be a JSON object.", id="json-string"),
    pytest.param(42, "The request body must be a JSON object.", id="json-number"),
]


@pytest.mark.parametrize(("payload", "details"), VIOLATIONS)
async def test_violation_is_400_code_100_with_graph_details(
    mock: Mock, payload: Any, details: str
) -> None:
    answer = await mock.send(payload)

    assert details_of(answer) == details
    error = answer.json()["error"]
    assert error["message"] == "(#100) Invalid parameter"
    assert error["type"] == "OAuthException"
    assert "error_subcode" not in error


async def test_rejected_body_is_journaled_as_error_and_not_counted_as_attempt(mock: Mock) -> None:
    await mock.send(with_text(body=""))

    (entry,) = await mock.journal()
    assert entry["outcome"] == "error"
    assert entry["http_status"] == 400
    assert entry["error_code"] == 100
    assert entry["attempt"] is None
    assert entry["wamid"] is None


async def test_json_null_body_is_rejected(mock: Mock) -> None:
    answer = await mock.send(content=b"null")

    assert details_of(answer) == "The request body must be a JSON object."


@pytest.mark.parametrize(
    "raw", [b"not json", b"{", b'{"messaging_product": "whatsapp",}', b"\xff\xfe", b"NaN"]
)
async def test_non_json_body_is_rejected(mock: Mock, raw: bytes) -> None:
    answer = await mock.send(content=raw, headers=AUTH | {"Content-Type": "application/json"})

    assert details_of(answer).startswith("The request body is not valid JSON")


async def test_empty_body_is_rejected(mock: Mock) -> None:
    answer = await mock.send(content=b"")

    assert details_of(answer) == "The request body is empty; send a JSON object."


async def test_first_problem_is_the_one_reported(mock: Mock) -> None:
    answer = await mock.send({"text": {"body": ""}})

    assert details_of(answer) == "The parameter messaging_product is required."


@pytest.mark.parametrize("length", [1, MAX_TEXT_BODY - 1, MAX_TEXT_BODY])
async def test_text_body_up_to_4096_characters_is_accepted(mock: Mock, length: int) -> None:
    body = "\u26bd" * length  # characters, not bytes: 3 UTF-8 bytes each

    assert_accepted(await mock.send(with_text(body=body)))
    (entry,) = await mock.journal()
    assert entry["body"] == body


async def test_callback_data_of_512_characters_is_accepted(mock: Mock) -> None:
    data = "c" * MAX_CALLBACK_DATA

    assert_accepted(await mock.send(text_message(biz_opaque_callback_data=data)))


# -- properties ----------------------------------------------------------------

FIELDS = [
    "messaging_product",
    "to",
    "type",
    "text",
    "template",
    "interactive",
    "image",
    "contacts",
    "context",
    "recipient_type",
    "biz_opaque_callback_data",
    "status",
    "message_id",
]

VALID_BODIES: list[dict[str, Any]] = [
    text_message(),
    text_message(biz_opaque_callback_data="corr-1", to="+1 (555) 010-0200"),
    template(template={"name": "fixtures", "language": LANGUAGE}),
    interactive(interactive={"type": "list", "action": {"sections": []}}),
    text_message(type="image", image={"link": "https://example.test/a.png"}),
    text_message(type="contacts", contacts=[{"name": {"formatted_name": "A"}}]),
    mark_read(),
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["whatsapp", "text", "read", "template", RECIPIENT, "+1 555 010 0200", ""])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from([*FIELDS, "body", "name", "code"]) | st.text(max_size=6),
                          children, max_size=3)
    ),
    max_leaves=10,
)  # fmt: skip


@st.composite
def near_valid_bodies(draw: st.DrawFn) -> Any:
    """A valid body with a few fields dropped, replaced or added: the interesting region."""
    body = dict(draw(st.sampled_from(VALID_BODIES)))
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        if draw(st.booleans()):
            body.pop(key, None)
        else:
            body[key] = draw(json_values)
    return body


@pytest.fixture(scope="module")
def validation_app() -> FastAPI:
    """One app for all examples: limits off, so only validation can say no."""
    return create_app(make_config(behaviours=unlimited()))


async def post_raw(app: FastAPI, content: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        return await client.post(
            MESSAGES, content=content, headers=AUTH | {"Content-Type": "application/json"}
        )


def assert_accepted_or_code_100(answer: httpx.Response, sent: Any) -> None:
    assert answer.status_code in (200, 400), answer.text
    event(f"HTTP {answer.status_code}")
    if answer.status_code == 400:
        details = details_of(answer)  # asserts code 100 and Meta's shape
        assert details.strip()
    elif isinstance(sent, dict) and "status" in sent:
        assert answer.json() == {"success": True}
    else:
        assert isinstance(sent, dict)
        assert_accepted(answer, to=sent["to"])


@settings(max_examples=300, deadline=None)
@given(body=near_valid_bodies() | json_values)
async def test_any_json_body_gets_success_or_code_100(validation_app: FastAPI, body: Any) -> None:
    answer = await post_raw(validation_app, json.dumps(body).encode())

    assert_accepted_or_code_100(answer, body)


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=64))
async def test_arbitrary_short_bytes_get_code_100(validation_app: FastAPI, raw: bytes) -> None:
    answer = await post_raw(validation_app, raw)

    assert answer.status_code == 400  # no byte string of this size is a valid message
    assert details_of(answer).strip()


@st.composite
def text_bodies(draw: st.DrawFn, min_length: int, max_length: int) -> str:
    """Strings of an exact drawn length, from a short random seed (any code points)."""
    length = draw(st.integers(min_length, max_length))
    seed = draw(st.text(min_size=1, max_size=8))
    return (seed * (length // len(seed) + 1))[:length]


@settings(max_examples=60, deadline=None)
@given(body=text_bodies(1, MAX_TEXT_BODY))
async def test_text_bodies_of_1_to_4096_characters_are_accepted(
    validation_app: FastAPI, body: str
) -> None:
    answer = await post_raw(validation_app, json.dumps(with_text(body=body)).encode())

    assert_accepted(answer)


@settings(max_examples=40, deadline=None)
@given(body=text_bodies(MAX_TEXT_BODY + 1, 4 * MAX_TEXT_BODY))
async def test_text_bodies_over_4096_characters_are_rejected(
    validation_app: FastAPI, body: str
) -> None:
    answer = await post_raw(validation_app, json.dumps(with_text(body=body)).encode())

    assert details_of(answer) == "Param text['body'] must be at most 4096 characters long."
