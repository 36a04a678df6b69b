"""The send route: success shape, ids, journal record, paths, methods and versions."""

from __future__ import annotations

import httpx
import pytest

from mock_meta_api.config import DEFAULT_PHONE_NUMBER_ID

from .conftest import (
    AUTH,
    BASE_URL,
    ERROR_REQUIRED_KEYS,
    MESSAGES,
    PHONE_ID,
    RECIPIENT,
    Mock,
    assert_accepted,
    assert_meta_error,
    make_config,
    running_mock,
    text_message,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

OTHER_PHONE_ID = "109876543210987"


async def test_text_send_answers_meta_success_shape(mock: Mock) -> None:
    answer = await mock.send(text_message(body="kick-off at 20:00"))

    wamid = assert_accepted(answer)
    assert answer.headers["content-type"] == "application/json"
    assert len(wamid) > len("wamid.")


async def test_wamids_are_unique_across_sends_and_recipients(mock: Mock) -> None:
    wamids = []
    for n in range(30):
        to = f"1555010{n % 3:04d}"
        wamids.append(assert_accepted(await mock.send(text_message(to=to)), to=to))

    assert len(set(wamids)) == len(wamids)


async def test_wamids_differ_between_two_app_instances() -> None:
    async with running_mock() as first, running_mock() as second:
        one = assert_accepted(await first.send())
        two = assert_accepted(await second.send())

    assert one != two


@pytest.mark.parametrize(
    ("to", "wa_id"),
    [
        ("15550100200", "15550100200"),
        ("+15550100200", "15550100200"),
        ("+1 (555) 010-0200", "15550100200"),
        ("44 7700.900123", "447700900123"),
    ],
)
async def test_contacts_echo_the_input_and_give_the_digits_as_wa_id(
    mock: Mock, to: str, wa_id: str
) -> None:
    answer = await mock.send(text_message(to=to))

    assert_accepted(answer, to=to)
    assert answer.json()["contacts"] == [{"input": to, "wa_id": wa_id}]


async def test_type_defaults_to_text(mock: Mock) -> None:
    payload = text_message()
    del payload["type"]

    assert_accepted(await mock.send(payload))
    (entry,) = await mock.journal()
    assert entry["type"] == "text"


async def test_unknown_fields_are_ignored_like_graph_does(mock: Mock) -> None:
    payload = text_message(recipient_type="individual", unknown_field={"nested": [1, 2]})
    payload["text"]["preview_url"] = True
    payload["text"]["also_unknown"] = "x"

    assert_accepted(await mock.send(payload))


async def test_reply_context_is_accepted(mock: Mock) -> None:
    assert_accepted(await mock.send(text_message(context={"message_id": "wamid.INBOUND"})))


async def test_accepted_send_is_journaled_with_everything_the_harness_needs(mock: Mock) -> None:
    answer = await mock.send(text_message(to="+1 555 010 0200", biz_opaque_callback_data="run-7:3"))
    wamid = assert_accepted(answer, to="+1 555 010 0200")

    (entry,) = await mock.journal()
    assert entry["seq"] == 1
    assert entry["method"] == "POST"
    assert entry["path"] == MESSAGES
    assert entry["api_version"] == "v21.0"
    assert entry["phone_number_id"] == PHONE_ID
    assert entry["recipient"] == RECIPIENT
    assert entry["type"] == "text"
    assert entry["body"] == "hello"
    assert entry["biz_opaque_callback_data"] == "run-7:3"
    assert entry["attempt"] == 1
    assert entry["outcome"] == "accepted"
    assert entry["http_status"] == 200
    assert entry["error_code"] is None
    assert entry["wamid"] == wamid
    assert entry["clock"] == "time.time"
    assert entry["received_at"] <= entry["responded_at"]


async def test_mark_as_read_answers_success_true_and_is_not_a_send_attempt(mock: Mock) -> None:
    answer = await mock.send(
        {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.INBOUND"}
    )

    assert answer.status_code == 200
    assert answer.json() == {"success": True}
    (entry,) = await mock.journal()
    assert entry["type"] == "mark_read"
    assert entry["outcome"] == "accepted"
    assert entry["attempt"] is None
    assert entry["wamid"] is None
    assert (await mock.client.get("/_mock/health")).json()["send_attempts"] == 0


async def test_template_message_is_accepted_structurally(mock: Mock) -> None:
    payload = {
        "messaging_product": "whatsapp",
        "to": RECIPIENT,
        "type": "template",
        "template": {
            "name": "fixtures_update",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Arsenal"}]}],
        },
    }

    assert_accepted(await mock.send(payload))
    (entry,) = await mock.journal()
    assert entry["type"] == "template"
    assert entry["body"] is None


async def test_interactive_message_is_accepted_structurally(mock: Mock) -> None:
    payload = {
        "messaging_product": "whatsapp",
        "to": RECIPIENT,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "More fixtures?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "more", "title": "Yes"}}]},
        },
    }

    assert_accepted(await mock.send(payload))


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("image", {"link": "https://example.test/a.png"}),
        ("document", {"id": "1234", "filename": "fixtures.pdf"}),
        ("location", {"latitude": 51.55, "longitude": -0.108}),
        ("reaction", {"message_id": "wamid.INBOUND", "emoji": "\u26bd"}),
        ("contacts", [{"name": {"formatted_name": "Club Office"}}]),
    ],
)
async def test_other_message_types_are_accepted_with_their_object(
    mock: Mock, kind: str, content: object
) -> None:
    payload = {"messaging_product": "whatsapp", "to": RECIPIENT, "type": kind, kind: content}

    assert_accepted(await mock.send(payload))


@pytest.mark.parametrize("version", ["v17.0", "v21.0", "v99.9", "v100.10"])
async def test_any_vNN_N_version_is_served(mock: Mock, version: str) -> None:
    answer = await mock.send(path=f"/{version}/{PHONE_ID}/messages")

    assert_accepted(answer)
    (entry,) = await mock.journal()
    assert entry["api_version"] == version


@pytest.mark.parametrize("version", ["v21", "latest", "21.0", "v21.0.1", "V21.0", "v.0"])
async def test_bad_version_is_unknown_path_2500(mock: Mock, version: str) -> None:
    path = f"/{version}/{PHONE_ID}/messages"

    error = assert_meta_error(await mock.send(path=path), status=400, code=2500)

    assert set(error) == ERROR_REQUIRED_KEYS
    assert path in error["message"]


async def test_bad_version_is_reported_before_a_bad_token(mock: Mock) -> None:
    answer = await mock.send(path=f"/latest/{PHONE_ID}/messages", headers={})

    assert_meta_error(answer, status=400, code=2500)


async def test_unknown_phone_number_id_is_code_100(mock: Mock) -> None:
    answer = await mock.send(path="/v21.0/999999999/messages")

    error = assert_meta_error(answer, status=400, code=100)
    assert "999999999" in error["message"]
    assert error["message"].startswith("Unsupported post request.")
    assert "999999999" in error["error_data"]["details"]
    (entry,) = await mock.journal()
    assert entry["outcome"] == "error"
    assert entry["error_code"] == 100
    assert entry["attempt"] is None


async def test_every_configured_phone_number_id_is_served() -> None:
    config = make_config(phone_number_ids=[DEFAULT_PHONE_NUMBER_ID, OTHER_PHONE_ID])
    async with running_mock(config) as mock:
        assert_accepted(await mock.send(path=f"/v21.0/{OTHER_PHONE_ID}/messages"))
        assert_accepted(await mock.send(path=f"/v21.0/{DEFAULT_PHONE_NUMBER_ID}/messages"))
        journal = await mock.journal()

    assert [entry["phone_number_id"] for entry in journal] == [OTHER_PHONE_ID, PHONE_ID]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_on_messages_route_get_meta_shaped_400(mock: Mock, method: str) -> None:
    answer = await mock.client.request(method, MESSAGES, headers=AUTH)

    error = assert_meta_error(answer, status=400, code=100)
    assert error["message"] == f"Unsupported {method.lower()} request."
    assert method in error["error_data"]["details"]
    assert MESSAGES in error["error_data"]["details"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/nope",
        f"/v21.0/{PHONE_ID}",
        f"/v21.0/{PHONE_ID}/contacts",
        f"/v21.0/{PHONE_ID}/messages/extra",
        "/v21.0/messages",
        "/_mockery",
    ],
)
async def test_unknown_path_gets_meta_shaped_2500_never_a_framework_body(
    mock: Mock, method: str, path: str
) -> None:
    answer = await mock.client.request(method, path, headers=AUTH)

    error = assert_meta_error(answer, status=400, code=2500)
    assert set(error) == ERROR_REQUIRED_KEYS
    assert error["type"] == "OAuthException"
    assert error["message"] == f"Unknown path components: {path}"
    assert "detail" not in answer.json()


async def test_error_answers_carry_the_trace_id_header(mock: Mock) -> None:
    first = await mock.send(path="/v21.0/1/messages")
    second = await mock.send(path="/v21.0/1/messages")

    assert first.headers["x-fb-trace-id"] == first.json()["error"]["fbtrace_id"]
    assert first.json()["error"]["fbtrace_id"] != second.json()["error"]["fbtrace_id"]


async def test_unknown_admin_path_gets_admin_shaped_404(mock: Mock) -> None:
    answer = await mock.client.get("/_mock/nope")

    assert answer.status_code == 404
    assert answer.json() == {"error": {"status": 404, "message": "Not Found"}}


class Broken:
    """Stands in for the latency sampler and fails when used: a bug inside the mock."""

    def sample(self, *_: object) -> float:
        raise RuntimeError("boom")


async def test_a_bug_in_the_route_still_answers_in_meta_shape(
    mock: Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mock.state, "latency", Broken())
    transport = httpx.ASGITransport(app=mock.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        answer = await client.post(MESSAGES, headers=AUTH, json=text_message())

    error = assert_meta_error(answer, status=500, code=1)
    assert set(error) == ERROR_REQUIRED_KEYS
    assert error["message"] == "An unknown error has occurred."


async def test_client_hanging_up_before_sending_the_body_is_not_a_crash(mock: Mock) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": MESSAGES,
        "raw_path": MESSAGES.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"graph.test"),
            (b"authorization", AUTH["Authorization"].encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"64"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("graph.test", 80),
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await mock.app(scope, receive, send)

    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 499
    (entry,) = await mock.journal()
    assert entry["http_status"] is None
    assert entry["wamid"] is None
