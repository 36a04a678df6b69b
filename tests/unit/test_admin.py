"""Admin API under /_mock: health, journal filters, reset, behaviours, loopback-only access."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from mock_meta_api import create_app
from mock_meta_api.admin import is_loopback
from mock_meta_api.config import Behaviours

from .conftest import (
    BASE_URL,
    PHONE_ID,
    REMOTE_CLIENT,
    Mock,
    assert_accepted,
    make_config,
    running_mock,
    text_message,
    unlimited,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

ALICE = "15550100001"
BOB = "15550100002"


async def test_health(mock: Mock) -> None:
    before = await mock.client.get("/_mock/health")
    assert_accepted(await mock.send())
    after = await mock.client.get("/_mock/health")

    assert before.status_code == 200
    body = before.json()
    assert set(body) == {
        "status",
        "started_at",
        "uptime_s",
        "journal_entries",
        "send_attempts",
        "phone_number_ids",
    }
    assert body["status"] == "ok"
    assert body["started_at"] <= time.time()
    assert body["uptime_s"] >= 0
    assert body["phone_number_ids"] == [PHONE_ID]
    assert (body["journal_entries"], body["send_attempts"]) == (0, 0)
    assert (after.json()["journal_entries"], after.json()["send_attempts"]) == (1, 1)
    assert after.json()["uptime_s"] >= body["uptime_s"]


async def test_health_lists_phone_number_ids_sorted() -> None:
    async with running_mock(make_config(phone_number_ids=["300", "100", "200"])) as mock:
        body = (await mock.client.get("/_mock/health")).json()

    assert body["phone_number_ids"] == ["100", "200", "300"]


# -- journal -----------------------------------------------------------------------------


@pytest.fixture
async def populated() -> Any:
    """A mock whose journal holds: alice(a1), bob(b1), alice(a2), an invalid send."""
    async with running_mock(make_config(behaviours=unlimited())) as mock:
        await mock.send(text_message(to=ALICE, biz_opaque_callback_data="a1"))
        await mock.send(text_message(to="+1 (555) 010-0002", biz_opaque_callback_data="b1"))
        await mock.send(text_message(to=ALICE, biz_opaque_callback_data="a2"))
        await mock.send(text_message(to=""))
        yield mock


async def test_journal_lists_every_request_oldest_first(populated: Mock) -> None:
    answer = await populated.client.get("/_mock/journal")

    page = answer.json()
    assert page["count"] == 4
    assert page["dropped"] == 0
    assert [entry["seq"] for entry in page["entries"]] == [1, 2, 3, 4]
    assert [entry["biz_opaque_callback_data"] for entry in page["entries"]] == [
        "a1",
        "b1",
        "a2",
        None,
    ]
    received = [entry["received_at"] for entry in page["entries"]]
    assert received == sorted(received)


@pytest.mark.parametrize("recipient", [BOB, "+1 555 010 0002", "+1 (555) 010-0002"])
async def test_journal_filters_by_recipient_written_any_way(
    populated: Mock, recipient: str
) -> None:
    entries = await populated.journal(recipient=recipient)

    assert [entry["biz_opaque_callback_data"] for entry in entries] == ["b1"]
    assert entries[0]["recipient"] == BOB


async def test_journal_pages_can_leave_the_bodies_out(populated: Mock) -> None:
    """The harness re-reads the journal every poll; a reply's texts are kilobytes each."""
    full = await populated.journal()
    light = (await populated.client.get("/_mock/journal", params={"body": "false"})).json()

    assert all(entry["body"] for entry in full[:3])
    assert [entry["body"] for entry in light["entries"]] == [None] * 4
    assert [{**entry, "body": None} for entry in full] == light["entries"]
    assert (await populated.journal())[0]["body"] == full[0]["body"]  # the journal kept them


async def test_journal_filters_by_correlation(populated: Mock) -> None:
    entries = await populated.journal(correlation="a2")

    assert [entry["seq"] for entry in entries] == [3]


async def test_journal_filters_by_since(populated: Mock) -> None:
    third = (await populated.journal())[2]

    entries = await populated.journal(since=third["received_at"])

    assert [entry["seq"] for entry in entries] == [3, 4]


async def test_journal_filters_by_after_seq_and_limit(populated: Mock) -> None:
    assert [entry["seq"] for entry in await populated.journal(after_seq=2)] == [3, 4]
    assert [entry["seq"] for entry in await populated.journal(limit=2)] == [1, 2]
    assert [entry["seq"] for entry in await populated.journal(after_seq=1, limit=1)] == [2]
    assert await populated.journal(after_seq=4) == []


async def test_journal_filters_combine(populated: Mock) -> None:
    entries = await populated.journal(recipient=ALICE, after_seq=1)

    assert [entry["biz_opaque_callback_data"] for entry in entries] == ["a2"]


async def test_journal_filter_with_no_match_is_empty(populated: Mock) -> None:
    assert await populated.journal(correlation="nope") == []
    assert await populated.journal(recipient="15559999999") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after_seq": -1}, "query.after_seq"),
        ({"limit": 0}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
        ({"since": "yesterday"}, "query.since"),
    ],
)
async def test_journal_rejects_bad_filters_with_422(
    mock: Mock, params: dict[str, Any], field: str
) -> None:
    answer = await mock.client.get("/_mock/journal", params=params)

    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["status"] == 422
    assert field in error["message"]
    assert [problem["field"] for problem in error["problems"]] == [field]


async def test_journal_is_bounded_and_counts_what_it_dropped() -> None:
    async with running_mock(make_config(journal_max_entries=2)) as mock:
        for n in range(3):
            await mock.send(text_message(biz_opaque_callback_data=str(n)))
        page = (await mock.client.get("/_mock/journal")).json()
        health = (await mock.client.get("/_mock/health")).json()

    assert page["dropped"] == 1
    assert [entry["seq"] for entry in page["entries"]] == [2, 3]
    assert health["journal_entries"] == 2


# -- reset -------------------------------------------------------------------------------


async def test_reset_clears_journal_and_attempts_and_keeps_behaviours() -> None:
    config = make_config(behaviours=unlimited(latency={"seed": 3}))
    async with running_mock(config) as mock:
        assert_accepted(await mock.send())
        assert_accepted(await mock.send())
        behaviours_before = (await mock.client.get("/_mock/behaviours")).json()

        answer = await mock.client.post("/_mock/reset")

        assert answer.status_code == 200
        assert answer.json() == {"reset": True}
        health = (await mock.client.get("/_mock/health")).json()
        assert (health["journal_entries"], health["send_attempts"]) == (0, 0)
        assert await mock.journal() == []
        assert (await mock.client.get("/_mock/behaviours")).json() == behaviours_before

        assert_accepted(await mock.send())
        (entry,) = await mock.journal()
        assert (entry["seq"], entry["attempt"]) == (1, 1)


# -- behaviours ------------------------------------------------------------------------


FULL_BEHAVIOURS: dict[str, Any] = {
    "latency": {
        "default": {"model": "uniform", "low_s": 0.0, "high_s": 0.01},
        "per_phone_number": {PHONE_ID: {"model": "fixed", "value_s": 0.0}},
        "seed": 7,
    },
    "failures": {
        "random": [{"probability": 0.0, "answer": {"action": "error", "code": 131016}}],
        "scripted": [{"first": 5, "last": 7, "answer": {"action": "reset"}}],
        "outages": [{"start_s": 30, "duration_s": 10, "answer": {"action": "hang", "hang_s": 1}}],
        "seed": 7,
    },
    "throughput": {"enabled": True, "messages_per_second": 40, "http_status": 429},
    "pair_rate": {"enabled": False, "period_s": 3, "burst": 10, "http_status": 429},
    "webhooks": {
        "url": "http://127.0.0.1:9/webhook",
        "sent_delay_s": 0.1,
        "delivered_delay_s": None,
        "read_delay_s": 1.0,
        "failures": [{"code": 131026, "recipient": ALICE, "probability": 0.5}],
        "max_attempts": 4,
        "retry_backoff_s": 0.25,
        "timeout_s": 2.0,
        "seed": 1,
    },
}


async def test_get_behaviours_returns_the_configured_ones() -> None:
    config = make_config(behaviours=FULL_BEHAVIOURS)
    async with running_mock(config) as mock:
        answer = await mock.client.get("/_mock/behaviours")

    assert answer.status_code == 200
    assert Behaviours.model_validate(answer.json()) == config.behaviours


async def test_put_replaces_all_behaviours_and_round_trips(mock: Mock) -> None:
    put = await mock.client.put("/_mock/behaviours", json=FULL_BEHAVIOURS)
    got = await mock.client.get("/_mock/behaviours")

    assert put.status_code == 200
    assert put.json() == got.json()
    assert Behaviours.model_validate(got.json()) == Behaviours.model_validate(FULL_BEHAVIOURS)
    assert mock.state.behaviours == Behaviours.model_validate(FULL_BEHAVIOURS)


async def test_put_with_empty_object_restores_defaults() -> None:
    async with running_mock(make_config(behaviours=FULL_BEHAVIOURS)) as mock:
        answer = await mock.client.put("/_mock/behaviours", json={})

    assert answer.status_code == 200
    assert Behaviours.model_validate(answer.json()) == Behaviours()


async def test_patch_replaces_only_the_given_sections() -> None:
    async with running_mock(make_config(behaviours=FULL_BEHAVIOURS)) as mock:
        answer = await mock.client.patch(
            "/_mock/behaviours", json={"pair_rate": {"burst": 2}, "latency": {}}
        )
        got = (await mock.client.get("/_mock/behaviours")).json()

    assert answer.status_code == 200
    assert answer.json() == got
    assert got["pair_rate"] == {"enabled": True, "period_s": 6.0, "burst": 2, "http_status": 400}
    assert Behaviours.model_validate(got).latency == Behaviours().latency
    for untouched in ("failures", "throughput", "webhooks"):
        assert got[untouched] == Behaviours.model_validate(FULL_BEHAVIOURS).model_dump()[untouched]


async def test_patch_with_empty_object_changes_nothing() -> None:
    async with running_mock(make_config(behaviours=FULL_BEHAVIOURS)) as mock:
        answer = await mock.client.patch("/_mock/behaviours", json={})

    assert answer.status_code == 200
    assert Behaviours.model_validate(answer.json()) == Behaviours.model_validate(FULL_BEHAVIOURS)


INVALID_BEHAVIOURS = [
    pytest.param({"bogus": 1}, "bogus", id="unknown-section"),
    pytest.param({"latency": {"bogus": 1}}, "latency.bogus", id="unknown-key"),
    pytest.param(
        {"throughput": {"messages_per_second": "fast"}},
        "throughput.messages_per_second",
        id="wrong-type",
    ),
    pytest.param({"throughput": {"messages_per_second": 0}}, "messages_per_second", id="zero-rate"),
    pytest.param(
        {"latency": {"default": {"model": "uniform", "low_s": 0.5, "high_s": 0.1}}},
        "high_s",
        id="high-below-low",
    ),
    pytest.param(
        {"latency": {"default": {"model": "gamma"}}}, "latency.default", id="unknown-model"
    ),
    pytest.param(
        {"latency": {"default": {"model": "fixed", "value_s": -1}}}, "value_s", id="negative-delay"
    ),
    pytest.param(
        {"failures": {"scripted": [{"first": 3, "last": 2}]}}, "last", id="last-before-first"
    ),
    pytest.param(
        {"failures": {"random": [{"probability": 1.5}]}}, "probability", id="probability-over-1"
    ),
    pytest.param({"failures": {"outages": [{"duration_s": 0}]}}, "duration_s", id="empty-outage"),
    pytest.param({"webhooks": {"url": "ftp://x"}}, "url", id="webhook-url-scheme"),
    pytest.param({"webhooks": {"url": "http://[::1/hook"}}, "url", id="webhook-url-malformed"),
    pytest.param({"webhooks": {"url": "http:///hook"}}, "url", id="webhook-url-without-host"),
    pytest.param({"webhooks": {"max_attempts": 0}}, "max_attempts", id="zero-attempts"),
    pytest.param({"pair_rate": {"http_status": 200}}, "http_status", id="status-not-an-error"),
    # Found by fuzzing: echoing this input back once crashed the error answer (500).
    pytest.param(
        {"failures": {"scripted": [{"first": 2**64, "last": 1}]}},
        "failures.scripted.0",
        id="integer-beyond-64-bits",
    ),
]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(("payload", "field"), INVALID_BEHAVIOURS)
async def test_invalid_behaviours_get_422_naming_the_field_and_change_nothing(
    mock: Mock, method: str, payload: dict[str, Any], field: str
) -> None:
    before = (await mock.client.get("/_mock/behaviours")).json()

    answer = await mock.client.request(method, "/_mock/behaviours", json=payload)

    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == 422
    assert field in body["error"]["message"]
    # the server keeps serving, with the behaviours it had
    assert (await mock.client.get("/_mock/behaviours")).json() == before
    assert (await mock.client.get("/_mock/health")).status_code == 200
    assert_accepted(await mock.send())


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"latency=none", "text/plain"),
        (b"\xff\xfe", "application/octet-stream"),
        (b"{\xe9}", "application/json"),  # not UTF-8; found by fuzzing: was a bare 400
    ],
)
async def test_behaviours_body_that_is_not_a_json_object_gets_422(
    mock: Mock, method: str, content: bytes, content_type: str
) -> None:
    answer = await mock.client.request(
        method, "/_mock/behaviours", content=content, headers={"Content-Type": content_type}
    )

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["status"] == 422
    assert answer.json()["error"]["message"].startswith("invalid admin request: body")
    assert_accepted(await mock.send())


async def test_put_validation_lists_every_problem(mock: Mock) -> None:
    answer = await mock.client.put(
        "/_mock/behaviours", json={"bogus": 1, "throughput": {"enabled": "perhaps"}}
    )

    problems = answer.json()["error"]["problems"]
    assert {problem["field"] for problem in problems} == {"body.bogus", "body.throughput.enabled"}
    assert {problem["input"] for problem in problems} == {1, "perhaps"}


# -- who may use the admin routes ----------------------------------------------------------

ADMIN_CALLS = [
    ("GET", "/_mock/health", None),
    ("GET", "/_mock/journal", None),
    ("POST", "/_mock/reset", None),
    ("GET", "/_mock/behaviours", None),
    ("PUT", "/_mock/behaviours", {}),
    ("PATCH", "/_mock/behaviours", {"latency": {}}),
    ("GET", "/_mock/webhooks", None),
]


def test_the_remote_client_tests_cover_every_admin_route() -> None:
    document = create_app().openapi()
    admin = {
        (method.upper(), path)
        for path, methods in document["paths"].items()
        if path.startswith("/_mock/")
        for method in methods
    }
    assert {(method, path) for method, path, _ in ADMIN_CALLS} == admin


@pytest.mark.parametrize(("method", "path", "payload"), ADMIN_CALLS)
async def test_remote_client_gets_403_on_admin_routes(
    method: str, path: str, payload: dict[str, Any] | None
) -> None:
    async with running_mock(make_config(behaviours=FULL_BEHAVIOURS), client=REMOTE_CLIENT) as mock:
        answer = await mock.client.request(method, path, json=payload)
        behaviours = mock.state.behaviours

    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["status"] == 403
    assert REMOTE_CLIENT[0] in error["message"]
    assert "admin_allow_remote" in error["message"]
    assert behaviours == Behaviours.model_validate(FULL_BEHAVIOURS)  # nothing changed


async def test_remote_client_can_still_send_messages() -> None:
    async with running_mock(client=REMOTE_CLIENT) as mock:
        assert_accepted(await mock.send())
        assert len(mock.state.journal) == 1


@pytest.mark.parametrize(("method", "path", "payload"), ADMIN_CALLS)
async def test_remote_client_gets_through_when_allowed(
    method: str, path: str, payload: dict[str, Any] | None
) -> None:
    config = make_config(admin_allow_remote=True)
    async with running_mock(config, client=REMOTE_CLIENT) as mock:
        answer = await mock.client.request(method, path, json=payload)

    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("client", [("::1", 5000), ("127.0.0.2", 5000), ("localhost", 5000)])
async def test_every_loopback_form_is_allowed(client: tuple[str, int]) -> None:
    async with running_mock(client=client) as mock:
        assert (await mock.client.get("/_mock/health")).status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        (None, True),
        ("203.0.113.7", False),
        ("10.0.0.1", False),
        ("::ffff:203.0.113.7", False),
        ("example.test", False),
    ],
)
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_admin_method_not_allowed_is_admin_shaped(mock: Mock) -> None:
    answer = await mock.client.delete("/_mock/journal")

    assert answer.status_code == 405
    assert answer.json() == {"error": {"status": 405, "message": "Method Not Allowed"}}


async def test_a_bug_in_an_admin_route_answers_in_admin_shape(
    mock: Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(mock.state.journal, "select", broken)
    transport = httpx.ASGITransport(app=mock.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        answer = await client.get("/_mock/journal")

    assert answer.status_code == 500
    assert answer.json() == {"error": {"status": 500, "message": "RuntimeError: boom"}}
