"""The real `mock-meta-api` server over real HTTP: sends, auth, robustness, config, CLI errors."""

from __future__ import annotations

import socket
import subprocess
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from mock_meta_api.server import command

from .mockapi import MESSAGES, PHONE_ID, RECIPIENT, MockAPI, at_least, text_message

pytestmark = pytest.mark.integration


def graph_error(answer: httpx.Response) -> dict:
    body = answer.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "code", "fbtrace_id"} <= set(body["error"]), body
    return body["error"]


def test_send_is_accepted_and_journaled(mock: MockAPI) -> None:
    before = time.time()
    answer = mock.send(text_message("hi there", biz_opaque_callback_data="lane-a:7"))
    after = time.time()

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": RECIPIENT, "wa_id": RECIPIENT}]
    [message] = body["messages"]
    assert message["id"].startswith("wamid.")

    [entry] = mock.journal()
    assert entry["wamid"] == message["id"]
    assert entry["outcome"] == "accepted"
    assert entry["http_status"] == 200
    assert entry["path"] == MESSAGES
    assert entry["phone_number_id"] == PHONE_ID
    assert entry["recipient"] == RECIPIENT
    assert entry["body"] == "hi there"
    assert entry["biz_opaque_callback_data"] == "lane-a:7"
    assert entry["clock"] == "time.time"
    assert before <= entry["received_at"] <= entry["responded_at"] <= after


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer wrong-token"}, {}, {"Authorization": "Basic abc"}],
    ids=["wrong-token", "no-token", "not-bearer"],
)
def test_bad_token_is_401_code_190(mock: MockAPI, headers: dict[str, str]) -> None:
    answer = mock.http.post(MESSAGES, json=text_message(), headers=headers)

    assert answer.status_code == 401
    error = graph_error(answer)
    assert error["code"] == 190
    assert error["type"] == "OAuthException"
    assert "invalid_token" in answer.headers["www-authenticate"]
    [entry] = mock.journal()
    assert (entry["outcome"], entry["error_code"], entry["http_status"]) == ("error", 190, 401)
    assert entry["wamid"] is None


def test_cli_identity_flags_are_served(start_mock) -> None:
    _, api = start_mock(
        "--access-token", "tok-1", "--phone-number-id", "111", "--phone-number-id", "222"
    )
    for phone_id in ("111", "222"):
        answer = api.http.post(
            f"/v21.0/{phone_id}/messages", json=text_message(), headers=api.auth("tok-1")
        )
        assert answer.status_code == 200, answer.text

    default_token = api.http.post("/v21.0/111/messages", json=text_message(), headers=api.auth())
    assert default_token.status_code == 401
    unknown_number = api.http.post(
        f"/v21.0/{PHONE_ID}/messages", json=text_message(), headers=api.auth("tok-1")
    )
    assert unknown_number.status_code == 400
    assert graph_error(unknown_number)["code"] == 100
    assert api.health()["phone_number_ids"] == ["111", "222"]


# -- the server keeps serving after bad input ---------------------------------

HUGE = 8 * 1024 * 1024


def malformed_json(api: MockAPI) -> httpx.Response:
    return api.http.post(
        MESSAGES, content=b'{"messaging_product": "whatsapp", "to": ', headers=api.auth()
    )


def huge_json(api: MockAPI) -> httpx.Response:
    return api.send(text_message("x" * HUGE))


def huge_garbage(api: MockAPI) -> httpx.Response:
    return api.http.post(MESSAGES, content=b"\xff" * HUGE, headers=api.auth())


def json_array(api: MockAPI) -> httpx.Response:
    return api.send([text_message()])


def admin_unknown_model(api: MockAPI) -> httpx.Response:
    return api.http.put("/_mock/behaviours", json={"latency": {"default": {"model": "warp"}}})


def admin_not_json(api: MockAPI) -> httpx.Response:
    return api.http.put(
        "/_mock/behaviours", content=b"latency=fast", headers={"content-type": "text/plain"}
    )


def admin_patch_not_object(api: MockAPI) -> httpx.Response:
    return api.http.patch("/_mock/behaviours", json=["latency"])


def admin_patch_unknown_section(api: MockAPI) -> httpx.Response:
    return api.http.patch("/_mock/behaviours", json={"lattency": {}})


def admin_bad_query(api: MockAPI) -> httpx.Response:
    return api.http.get("/_mock/journal", params={"after_seq": "minus-one"})


@pytest.mark.parametrize(
    ("bad_request", "status", "code"),
    [
        (malformed_json, 400, 100),
        (huge_json, 400, 100),
        (huge_garbage, 400, 100),
        (json_array, 400, 100),
        (admin_unknown_model, 422, None),
        (admin_not_json, 422, None),
        (admin_patch_not_object, 422, None),
        (admin_patch_unknown_section, 422, None),
        (admin_bad_query, 422, None),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_server_keeps_serving_after_bad_input(
    mock: MockAPI, bad_request, status: int, code: int | None
) -> None:
    started_at = mock.health()["started_at"]
    behaviours = mock.http.get("/_mock/behaviours").json()

    answer = bad_request(mock)

    assert answer.status_code == status, answer.text
    if code is not None:
        assert graph_error(answer)["code"] == code
    else:
        assert answer.json()["error"]["status"] == status
    assert mock.http.get("/_mock/behaviours").json() == behaviours, "a bad payload changed state"
    good = mock.send()
    assert good.status_code == 200, good.text
    assert mock.health()["started_at"] == started_at, "the server restarted"


def test_server_keeps_serving_after_a_client_drops_mid_request(mock: MockAPI) -> None:
    host, port = httpx.URL(mock.url).host, httpx.URL(mock.url).port
    with socket.create_connection((host, port), timeout=5) as raw:
        raw.sendall(
            f"POST {MESSAGES} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {mock.token}\r\nContent-Length: 1000\r\n\r\n"
            '{"messaging_product": '.encode()
        )
    assert mock.send().status_code == 200


# -- config file and CLI errors -----------------------------------------------

LATENCY_TOML = """
[behaviours.latency.default]
model = "fixed"
value_s = 0.4

[behaviours.throughput]
messages_per_second = 50
"""


def test_config_file_fixed_latency_is_observed(start_mock, tmp_path: Path) -> None:
    config = tmp_path / "mock.toml"
    config.write_text(LATENCY_TOML)
    latency_s = tomllib.loads(LATENCY_TOML)["behaviours"]["latency"]["default"]["value_s"]
    _, api = start_mock("--config", str(config))

    assert api.http.get("/_mock/behaviours").json()["throughput"]["messages_per_second"] == 50
    for _ in range(2):
        started = time.monotonic()
        answer = api.send()
        observed = time.monotonic() - started
        assert answer.status_code == 200
        assert observed >= latency_s

    entries = api.journal()
    assert len(entries) == 2
    for entry in entries:
        assert entry["latency_s"] == latency_s
        assert at_least(entry["responded_at"] - entry["received_at"], latency_s)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (
            '[behaviours.latency.default]\nmodel = "fixed"\nvalue_s = -1\n',
            "behaviours.latency.default.fixed.value_s",
        ),
        (
            "[behaviours.throughput]\nmessages_per_secnd = 5\n",
            "behaviours.throughput.messages_per_secnd",
        ),
        (
            '[[behaviours.failures.scripted]]\nfirst = 1\nanswer = {action = "explode"}\n',
            "behaviours.failures.scripted.0.answer",
        ),
        ("[behaviours\nlatency = 1\n", "not valid TOML"),
    ],
    ids=["negative", "typo", "bad-action", "syntax"],
)
def test_bad_config_exits_2_naming_file_and_field(tmp_path: Path, content: str, named: str) -> None:
    config = tmp_path / "broken.toml"
    config.write_text(content)

    result = subprocess.run(
        command("--config", str(config)), capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 2, result.stderr
    assert str(config) in result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = subprocess.run(
        command("--config", str(missing)), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_exits_2_with_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        argv = [arg if arg != "0" else str(port) for arg in command()]

        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)

    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "in use" in result.stderr.lower()
    assert "Traceback" not in result.stderr
