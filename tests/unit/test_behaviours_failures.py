"""Failures: random, scripted attempts, outage windows; error, reset and hang answers."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pytest

from mock_meta_api.errors import CATALOGUE

from .conftest import (
    ERROR_REQUIRED_KEYS,
    PHONE_ID,
    VERSION,
    Mock,
    assert_accepted,
    assert_meta_error,
    make_config,
    running_mock,
    text_message,
    unlimited,
    wait_until,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


def failing(**failures: Any):
    return make_config(behaviours=unlimited(failures=failures))


async def statuses(mock: Mock, n: int) -> list[int]:
    return [(await mock.send()).status_code for _ in range(n)]


# -- random ---------------------------------------------------------------------


async def test_random_probability_1_fails_every_send_with_the_default_answer() -> None:
    async with running_mock(failing(random=[{"probability": 1}])) as mock:
        answers = [await mock.send() for _ in range(5)]
        journal = await mock.journal()

    for answer in answers:
        error = assert_meta_error(answer, status=500, code=131000)
        assert error["message"] == "(#131000) Something went wrong"
        assert error["error_data"]["details"] == CATALOGUE[131000][2]
        assert "error_subcode" not in error
    assert [entry["outcome"] for entry in journal] == ["error"] * 5
    assert [entry["error_code"] for entry in journal] == [131000] * 5
    assert [entry["attempt"] for entry in journal] == [1, 2, 3, 4, 5]
    assert all(entry["wamid"] is None for entry in journal)


async def test_random_probability_0_never_fails() -> None:
    async with running_mock(failing(random=[{"probability": 0}])) as mock:
        assert await statuses(mock, 20) == [200] * 20


async def test_random_failure_uses_its_configured_answer() -> None:
    answer = {"code": 131016, "http_status": 503}
    async with running_mock(failing(random=[{"probability": 1, "answer": answer}])) as mock:
        assert_meta_error(await mock.send(), status=503, code=131016)


async def test_seeded_random_failures_replay_the_same_pattern() -> None:
    config = failing(seed=5, random=[{"probability": 0.5}])

    async def pattern() -> list[int]:
        async with running_mock(config) as mock:
            return await statuses(mock, 30)

    first, second = await pattern(), await pattern()
    assert first == second
    assert set(first) == {200, 500}


# -- scripted ---------------------------------------------------------------------


async def test_scripted_attempts_first_to_last_fail_and_others_succeed() -> None:
    rule = {"first": 2, "last": 4, "answer": {"code": 131047, "http_status": 400}}
    async with running_mock(failing(scripted=[rule])) as mock:
        answers = [await mock.send() for _ in range(6)]
        journal = await mock.journal()

    assert [answer.status_code for answer in answers] == [200, 400, 400, 400, 200, 200]
    for answer in answers[1:4]:
        error = assert_meta_error(answer, status=400, code=131047)
        assert error["message"] == "(#131047) Re-engagement message"
    assert [entry["attempt"] for entry in journal] == [1, 2, 3, 4, 5, 6]
    assert [entry["error_code"] for entry in journal] == [None, 131047, 131047, 131047, None, None]


async def test_scripted_without_last_fails_only_the_first_attempt() -> None:
    async with running_mock(failing(scripted=[{"first": 3}])) as mock:
        assert await statuses(mock, 5) == [200, 200, 500, 200, 200]


async def test_attempts_are_numbered_per_business_number() -> None:
    """Lanes sharing one mock each meet "attempt 2 fails" on their own number."""
    other = "106540352242999"
    config = make_config(
        phone_number_ids=[PHONE_ID, other],
        behaviours=unlimited(failures={"scripted": [{"first": 2}]}),
    )
    async with running_mock(config) as mock:
        first = [(await mock.send()).status_code for _ in range(3)]
        second = [
            (await mock.send(path=f"/{VERSION}/{other}/messages")).status_code for _ in range(3)
        ]
        health = (await mock.client.get("/_mock/health")).json()

    assert first == second == [200, 500, 200]
    assert health["send_attempts"] == 6


async def test_rejected_requests_do_not_consume_attempt_numbers() -> None:
    async with running_mock(failing(scripted=[{"first": 1}])) as mock:
        assert (await mock.send(headers={})).status_code == 401
        assert (await mock.send(text_message(to="x"))).status_code == 400
        assert (
            await mock.send({"messaging_product": "whatsapp", "status": "read", "message_id": "m"})
        ).status_code == 200

        assert_meta_error(await mock.send(), status=500, code=131000)  # attempt 1
        assert_accepted(await mock.send())  # attempt 2


async def test_reset_restarts_attempt_numbering() -> None:
    async with running_mock(failing(scripted=[{"first": 1}])) as mock:
        assert await statuses(mock, 2) == [500, 200]
        assert (await mock.client.post("/_mock/reset")).status_code == 200
        assert await statuses(mock, 2) == [500, 200]


async def test_error_subcode_and_details_appear_only_when_configured() -> None:
    configured = {"code": 131000, "http_status": 500, "error_subcode": 2494055, "details": "why"}
    rules = [{"first": 1, "answer": configured}, {"first": 2}]
    async with running_mock(failing(scripted=rules)) as mock:
        with_subcode = assert_meta_error(await mock.send(), status=500, code=131000)
        plain = assert_meta_error(await mock.send(), status=500, code=131000)

    assert with_subcode["error_subcode"] == 2494055
    assert with_subcode["error_data"]["details"] == "why"
    assert set(plain) == ERROR_REQUIRED_KEYS | {"error_data"}
    assert plain["error_data"]["details"] == CATALOGUE[131000][2]


async def test_uncatalogued_code_gets_a_generic_title() -> None:
    rule = {"first": 1, "answer": {"code": 999999, "http_status": 502}}
    async with running_mock(failing(scripted=[rule])) as mock:
        error = assert_meta_error(await mock.send(), status=502, code=999999)

    assert error["message"] == "(#999999) Error 999999"


# -- reset and hang answers ------------------------------------------------------------


async def test_reset_answer_breaks_the_connection_and_is_journaled() -> None:
    rule = {"first": 1, "answer": {"action": "reset"}}
    async with running_mock(failing(scripted=[rule])) as mock:
        with pytest.raises(ConnectionResetError):
            await mock.send()
        assert_accepted(await mock.send())
        reset, accepted = await mock.journal()

    assert reset["outcome"] == "reset"
    assert reset["http_status"] is None
    assert reset["attempt"] == 1
    assert reset["responded_at"] is not None
    assert reset["wamid"] is None
    assert accepted["outcome"] == "accepted"


async def test_hang_answer_holds_the_request_for_hang_s_then_cuts_it() -> None:
    config = failing(scripted=[{"first": 1, "answer": {"action": "hang", "hang_s": 0.05}}])
    hang_s = config.behaviours.failures.scripted[0].answer.hang_s
    async with running_mock(config) as mock:
        started = time.monotonic()
        with pytest.raises(ConnectionResetError):
            await mock.send()
        held = time.monotonic() - started
        (entry,) = await mock.journal()

    assert held >= hang_s
    assert entry["outcome"] == "hang"
    assert entry["http_status"] is None
    assert entry["responded_at"] - entry["received_at"] >= hang_s


async def test_hang_without_hang_s_lasts_until_the_client_gives_up() -> None:
    async with running_mock(failing(scripted=[{"first": 1, "answer": {"action": "hang"}}])) as mock:
        give_up_s = 0.1
        started = time.monotonic()
        with anyio.move_on_after(give_up_s) as scope:
            await mock.send()
        held = time.monotonic() - started
        (entry,) = await mock.journal()

    assert scope.cancelled_caught
    assert held >= give_up_s
    assert entry["outcome"] == "hang"
    assert entry["http_status"] is None


# -- outages ---------------------------------------------------------------------------


async def test_outage_answers_503_131016_by_default_then_recovers() -> None:
    async with running_mock(make_config(behaviours=unlimited())) as mock:
        seen: list[tuple[httpx.Response, float]] = []  # (answer, s since the PATCH was sent)

        async def sent_ok() -> bool:
            answer = await mock.send()
            seen.append((answer, time.monotonic() - before))
            return answer.status_code == 200

        before = time.monotonic()
        sections = await mock.patch_behaviours({"failures": {"outages": [{"duration_s": 0.2}]}})
        duration_s = sections["failures"]["outages"][0]["duration_s"]
        await wait_until(sent_ok, timeout_s=5, what="a send after the outage")
        journal = await mock.journal()

    *during, (after, recovered_at) = seen
    # A send answered within the window was decided within it: it must have failed.
    assert during or recovered_at >= duration_s
    for answer, _ in during:
        error = assert_meta_error(answer, status=503, code=131016)
        assert error["message"] == "(#131016) Service unavailable"
        assert error["error_data"]["details"] == CATALOGUE[131016][2]
    assert_accepted(after)
    assert recovered_at >= duration_s
    assert [entry["error_code"] for entry in journal] == [131016] * len(during) + [None]
    assert [entry["http_status"] for entry in journal] == [503] * len(during) + [200]


async def test_outage_window_starts_later_and_ends() -> None:
    async with running_mock(make_config(behaviours=unlimited())) as mock:
        seen: list[tuple[int, float]] = []  # (status, s since the PATCH was sent)

        async def window_passed() -> bool:
            status = (await mock.send()).status_code
            seen.append((status, time.monotonic() - before))
            return status == 200 and any(code == 503 for code, _ in seen)

        before = time.monotonic()
        # A window of 1 s: with 0.15 s, a send stalled longer than the window in a full test
        # run (twice here) stepped over it and never saw a 503.
        sections = await mock.patch_behaviours(
            {"failures": {"outages": [{"start_s": 0.15, "duration_s": 1.0}]}}
        )
        start_s = sections["failures"]["outages"][0]["start_s"]
        end_s = start_s + sections["failures"]["outages"][0]["duration_s"]
        await wait_until(window_passed, timeout_s=5, what="an outage and a recovery")

    codes = "".join("F" if status == 503 else "." for status, _ in seen)
    assert set(codes) == {".", "F"}
    assert codes.strip(".") == "F" * codes.count("F")  # one contiguous run of failures
    for status, at in seen:
        if at < start_s:
            assert status == 200  # answered before the window opened
        if status == 503:
            assert at >= start_s
    assert seen[-1][1] >= end_s


async def test_outage_with_hang_answer_holds_until_the_window_ends() -> None:
    async with running_mock(make_config(behaviours=unlimited())) as mock:
        before = time.monotonic()
        sections = await mock.patch_behaviours(
            {"failures": {"outages": [{"duration_s": 0.2, "answer": {"action": "hang"}}]}}
        )
        with pytest.raises(ConnectionResetError):
            await mock.send()
        held_until = time.monotonic() - before
        assert_accepted(await mock.send())
        hung, _ = await mock.journal()

    assert held_until >= sections["failures"]["outages"][0]["duration_s"]
    assert hung["outcome"] == "hang"


async def test_outage_takes_precedence_over_scripted_failures() -> None:
    config = failing(
        outages=[{"duration_s": 60}],
        scripted=[{"first": 1, "answer": {"code": 131000, "http_status": 500}}],
    )
    async with running_mock(config) as mock:
        assert_meta_error(await mock.send(), status=503, code=131016)


async def test_validation_happens_before_faults() -> None:
    async with running_mock(failing(outages=[{"duration_s": 60}])) as mock:
        invalid = await mock.send(text_message(body=""))

    assert_meta_error(invalid, status=400, code=100)
