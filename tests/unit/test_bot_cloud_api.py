"""The bot's Cloud API client: what every Meta answer means, the payload, the client's timeouts.

Error bodies are built with the mock's own `GraphError`, so they have Meta's
exact shape; codes the mock does not catalogue get Meta's real wording here.
No broker and no network: `classify` is pure, `send_text` runs against respx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from harness.bot.cloud_api import (
    RETRYABLE_CODES,
    Outcome,
    SendResult,
    classify,
    make_client,
    send_text,
    text_payload,
)
from harness.bot.settings import BotSettings, load_settings
from mock_meta_api.errors import (
    CATALOGUE,
    GraphError,
    invalid_parameter,
    invalid_token,
    unknown_object,
)

pytestmark = pytest.mark.unit

RECIPIENT = "15550100200"
WAMID = "wamid.HBgLMTU1NTAxMDAyMDAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
TRACE = "AbCdEfGhIjKlMnOpQrStUvW"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the environment: start every test from the defaults."""
    for name in BotSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def graph_error(error: GraphError) -> httpx.Response:
    """Meta's JSON error answer for `error`, at its HTTP status."""
    return httpx.Response(error.http_status, json=error.body(TRACE))


def meta_message(error: GraphError) -> str:
    return error.body(TRACE)["error"]["message"]


def accepted(wamid: str = WAMID) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": RECIPIENT, "wa_id": RECIPIENT}],
        "messages": [{"id": wamid}],
    }


# -- classify: 200 ---------------------------------------------------------------------------


def test_200_with_a_message_id_is_sent_with_its_wamid() -> None:
    assert classify(httpx.Response(200, json=accepted())) == SendResult(
        "sent", wamid=WAMID, http_status=200
    )


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"messaging_product": "whatsapp"}),
        httpx.Response(200, json={"messages": []}),
        httpx.Response(200, json={"messages": [{}]}),
        httpx.Response(200, json={"messages": "wamid.X"}),
        httpx.Response(200, json=[]),
        httpx.Response(200, json=None),
        httpx.Response(200, text="OK"),
        httpx.Response(200, text="<html><body>Bad Gateway</body></html>"),
        httpx.Response(200),
    ],
    ids=[
        "no-messages",
        "empty-messages",
        "message-without-id",
        "messages-not-a-list",
        "json-list",
        "json-null",
        "plain-text",
        "html",
        "empty-body",
    ],
)
def test_200_without_a_message_id_is_failed(response: httpx.Response) -> None:
    result = classify(response)

    assert result == SendResult("failed", http_status=200, error="200 without a message id")


def test_200_with_a_null_message_id_is_failed() -> None:
    result = classify(httpx.Response(200, json={"messages": [{"id": None}]}))

    assert result.outcome == "failed"
    assert result.wamid is None


# -- classify: errors --------------------------------------------------------------------------

RETRIED_ERRORS: list[Any] = [
    pytest.param(GraphError(130429, 429), id="429-130429-throughput"),
    pytest.param(GraphError(130429, 400), id="400-130429-throughput"),
    pytest.param(GraphError(131056, 400), id="400-131056-pair-rate"),
    pytest.param(
        GraphError(4, 400, message="(#4) Application request limit reached"), id="400-4-app-rate"
    ),
    pytest.param(GraphError(80007, 400, message="(#80007) Rate limit issues"), id="400-80007-waba"),
    pytest.param(GraphError(131000, 500), id="500-131000-unknown"),
    pytest.param(GraphError(131016, 503), id="503-131016-unavailable"),
    pytest.param(
        GraphError(1, 500, message="An unknown error occurred", with_error_data=False),
        id="500-1-unknown",
    ),
    pytest.param(
        GraphError(2, 400, message="Service temporarily unavailable", with_error_data=False),
        id="400-2-temporary",
    ),
]

FAILED_ERRORS: list[Any] = [
    pytest.param(invalid_parameter("Param text['body'] is required"), id="400-100-param"),
    pytest.param(unknown_object("106540352242922"), id="400-100-unknown-object"),
    pytest.param(invalid_token(), id="401-190-token"),
    pytest.param(GraphError(131026, 400), id="400-131026-undeliverable"),
    pytest.param(GraphError(131047, 400), id="400-131047-24h-window"),
    pytest.param(
        GraphError(131051, 400, message="(#131051) Unsupported message type"),
        id="400-131051-unsupported",
    ),
    pytest.param(
        GraphError(10, 403, message="(#10) Application does not have permission for this action"),
        id="403-10-permission",
    ),
    pytest.param(GraphError(200, 403, message="(#200) Permissions error"), id="403-200-permission"),
    pytest.param(GraphError(2500, 400), id="400-2500-unknown-path"),
]


@pytest.mark.parametrize("error", RETRIED_ERRORS)
def test_throttling_and_meta_trouble_are_retried(error: GraphError) -> None:
    result = classify(graph_error(error))

    assert result == SendResult(
        "retry",
        http_status=error.http_status,
        code=error.code,
        error=f"HTTP {error.http_status} code {error.code}: {meta_message(error)}",
    )


@pytest.mark.parametrize("error", FAILED_ERRORS)
def test_permanent_errors_fail_with_code_status_and_meta_message(error: GraphError) -> None:
    result = classify(graph_error(error))

    assert result.outcome == "failed"
    assert result.wamid is None
    assert result.http_status == error.http_status
    assert result.code == error.code
    assert result.error == f"HTTP {error.http_status} code {error.code}: {meta_message(error)}"


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        pytest.param(httpx.Response(503), "retry", id="503-empty"),
        pytest.param(httpx.Response(503, text="Service Unavailable"), "retry", id="503-text"),
        pytest.param(
            httpx.Response(
                502,
                text="<html><head><title>502 Bad Gateway</title></head></html>",
                headers={"content-type": "text/html"},
            ),
            "retry",
            id="502-html",
        ),
        pytest.param(httpx.Response(504, json={"detail": "timeout"}), "retry", id="504-json"),
        pytest.param(httpx.Response(429, text="slow down"), "retry", id="429-text"),
        pytest.param(httpx.Response(404, text="Not Found"), "failed", id="404-text"),
        pytest.param(httpx.Response(400, json={"error": "bad"}), "failed", id="400-error-string"),
    ],
)
def test_answers_without_a_meta_error_are_judged_on_the_status(
    response: httpx.Response, outcome: Outcome
) -> None:
    result = classify(response)

    assert result == SendResult(
        outcome, http_status=response.status_code, error=f"HTTP {response.status_code}"
    )


@pytest.mark.parametrize("code", sorted(RETRYABLE_CODES))
def test_every_retryable_code_is_retried_even_on_a_400(code: int) -> None:
    result = classify(graph_error(GraphError(code, 400)))

    assert (result.outcome, result.code) == ("retry", code)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        *[
            (code, "retry" if code in {130429, 131000, 131016, 131056} else "failed")
            for code in sorted(CATALOGUE)
        ],
    ],
)
def test_catalogued_codes_on_a_400(code: int, expected: str) -> None:
    """Every code the mock can answer: only throttling and Meta's own trouble are retried."""
    result = classify(graph_error(GraphError(code, 400)))

    assert (result.outcome, result.code) == (expected, code)
    assert result.error is not None
    assert result.error.startswith(f"HTTP 400 code {code}: (#{code}) ")


def test_error_without_a_message_names_status_and_code_only() -> None:
    response = httpx.Response(400, json={"error": {"code": 131026, "type": "OAuthException"}})

    assert classify(response).error == "HTTP 400 code 131026"


# -- the payload -------------------------------------------------------------------------------


def test_text_payload_has_metas_text_shape_and_our_message_id() -> None:
    payload = text_payload(RECIPIENT, "*Round 1: Cup*\nline", "abc123-007")

    assert payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": RECIPIENT,
        "type": "text",
        "text": {"preview_url": False, "body": "*Round 1: Cup*\nline"},
        "biz_opaque_callback_data": "abc123-007",
    }
    assert json.loads(json.dumps(payload)) == payload


# -- the client --------------------------------------------------------------------------------


@pytest.fixture
def client_for() -> Iterator[Any]:
    """`make_client` whose clients are all closed after the test."""
    clients: list[httpx.Client] = []

    def make(settings: BotSettings) -> httpx.Client:
        clients.append(make_client(settings))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def test_client_defaults_are_explicit_timeouts_and_the_bearer_token(client_for: Any) -> None:
    client = client_for(load_settings())

    assert client.timeout == httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=10.0)
    assert client.headers["Authorization"] == "Bearer mock-access-token"


def test_client_timeouts_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, client_for: Any
) -> None:
    monkeypatch.setenv("WHATSAPP_CONNECT_TIMEOUT_S", "1.5")
    monkeypatch.setenv("WHATSAPP_READ_TIMEOUT_S", "30")
    monkeypatch.setenv("WHATSAPP_WRITE_TIMEOUT_S", "2")
    monkeypatch.setenv("WHATSAPP_POOL_TIMEOUT_S", "0.25")
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "EAAG-secret")

    client = client_for(load_settings())

    assert client.timeout == httpx.Timeout(connect=1.5, read=30.0, write=2.0, pool=0.25)
    assert client.headers["Authorization"] == "Bearer EAAG-secret"


@pytest.mark.parametrize(
    "field",
    [
        "whatsapp_connect_timeout_s",
        "whatsapp_read_timeout_s",
        "whatsapp_write_timeout_s",
        "whatsapp_pool_timeout_s",
    ],
)
def test_client_passes_a_none_timeout_on_as_no_timeout(field: str, client_for: Any) -> None:
    """`make_client` alone (settings copied without validation)."""
    settings = load_settings().model_copy(update={field: None})

    timeout = client_for(settings).timeout

    assert getattr(timeout, field.removeprefix("whatsapp_").removesuffix("_timeout_s")) is None
    others = {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}
    others.pop(field.removeprefix("whatsapp_").removesuffix("_timeout_s"))
    assert all(getattr(timeout, name) == value for name, value in others.items())


@pytest.mark.parametrize("word", ["none", "off", "", "NONE", " Off ", "null"])
def test_settings_accept_words_for_no_read_timeout(word: str, client_for: Any) -> None:
    client = client_for(load_settings(whatsapp_read_timeout_s=word))

    assert client.timeout.read is None
    assert client.timeout.connect == 5.0


# -- send_text -----------------------------------------------------------------------------------


@pytest.fixture
def graph_settings() -> BotSettings:
    return load_settings(whatsapp_api_url="http://graph.test", whatsapp_access_token="tok-1")


def test_send_text_posts_the_payload_and_classifies_the_answer(
    graph_settings: BotSettings, client_for: Any
) -> None:
    client = client_for(graph_settings)
    with respx.mock(assert_all_called=True) as router:
        route = router.post("http://graph.test/v21.0/106540352242922/messages").respond(
            200, json=accepted()
        )

        result = send_text(client, graph_settings, RECIPIENT, "hello", "msg-1")

    assert result == SendResult("sent", wamid=WAMID, http_status=200)
    (call,) = route.calls
    assert call.request.headers["Authorization"] == "Bearer tok-1"
    assert json.loads(call.request.content) == text_payload(RECIPIENT, "hello", "msg-1")


@pytest.mark.parametrize(
    ("side_effect", "error"),
    [
        (httpx.ConnectTimeout("timed out"), "ConnectTimeout: timed out"),
        (httpx.ReadTimeout("timed out"), "ReadTimeout: timed out"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "ConnectError: [Errno 111] "),
        (httpx.RemoteProtocolError("Server disconnected"), "RemoteProtocolError: Server "),
        (httpx.ReadError(""), "ReadError"),
    ],
)
def test_send_text_retries_transport_errors(
    graph_settings: BotSettings, client_for: Any, side_effect: Exception, error: str
) -> None:
    client = client_for(graph_settings)
    with respx.mock(assert_all_called=True) as router:
        router.post(graph_settings.messages_url).mock(side_effect=side_effect)

        result = send_text(client, graph_settings, RECIPIENT, "hello", "msg-1")

    assert result.outcome == "retry"
    assert result.http_status is None
    assert result.code is None
    assert result.error is not None
    assert result.error.startswith(error)
    assert not result.error.endswith((":", " "))
