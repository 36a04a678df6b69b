"""Bearer auth on the send route: 401, code 190, OAuthException, no error_data."""

from __future__ import annotations

import pytest

from .conftest import (
    ERROR_REQUIRED_KEYS,
    MESSAGES,
    PHONE_ID,
    TOKEN,
    Mock,
    assert_accepted,
    assert_meta_error,
    make_config,
    running_mock,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


def assert_invalid_token(answer) -> None:
    error = assert_meta_error(answer, status=401, code=190)
    assert error["type"] == "OAuthException"
    assert set(error) == ERROR_REQUIRED_KEYS  # Meta sends no error_data with 190
    assert "access token" in error["message"]
    assert answer.headers["www-authenticate"].startswith('OAuth "Facebook Platform"')
    assert "invalid_token" in answer.headers["www-authenticate"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, id="token-plus-suffix"),
        pytest.param({"Authorization": f"Bearer {TOKEN[:-1]}"}, id="token-prefix"),
        pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
        pytest.param({"Authorization": TOKEN}, id="no-scheme"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="basic-scheme"),
    ],
)
async def test_unusable_token_is_401_code_190(mock: Mock, headers: dict[str, str]) -> None:
    assert_invalid_token(await mock.send(headers=headers))


async def test_rejected_token_is_journaled_and_not_a_send_attempt(mock: Mock) -> None:
    await mock.send(headers={"Authorization": "Bearer wrong"})

    (entry,) = await mock.journal()
    assert entry["outcome"] == "error"
    assert entry["http_status"] == 401
    assert entry["error_code"] == 190
    assert entry["attempt"] is None
    assert (await mock.client.get("/_mock/health")).json()["send_attempts"] == 0


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "OAuth"])
async def test_token_schemes_graph_accepts(mock: Mock, scheme: str) -> None:
    assert_accepted(await mock.send(headers={"Authorization": f"{scheme} {TOKEN}"}))


async def test_access_token_query_parameter_works(mock: Mock) -> None:
    answer = await mock.send(path=f"{MESSAGES}?access_token={TOKEN}", headers={})

    assert_accepted(answer)


async def test_wrong_access_token_query_parameter_is_401(mock: Mock) -> None:
    answer = await mock.send(path=f"{MESSAGES}?access_token=nope", headers={})

    assert_invalid_token(answer)


async def test_authorization_header_wins_over_query_parameter(mock: Mock) -> None:
    answer = await mock.send(
        path=f"{MESSAGES}?access_token={TOKEN}", headers={"Authorization": "Bearer nope"}
    )

    assert_invalid_token(answer)


async def test_configured_token_replaces_the_default() -> None:
    async with running_mock(make_config(access_token="s3cret")) as mock:
        assert_invalid_token(await mock.send())  # the default token
        assert_accepted(await mock.send(headers={"Authorization": "Bearer s3cret"}))


async def test_token_is_checked_before_the_phone_number_id(mock: Mock) -> None:
    answer = await mock.send(path="/v21.0/999/messages", headers={})

    assert_invalid_token(answer)


async def test_token_is_checked_before_the_body(mock: Mock) -> None:
    answer = await mock.send(path=f"/v21.0/{PHONE_ID}/messages", headers={}, content=b"not json")

    assert_invalid_token(answer)
