"""Rate limits: token buckets, the throughput limit (130429) and the pair rate limit (131056)."""

from __future__ import annotations

import pytest

from mock_meta_api.errors import CATALOGUE
from mock_meta_api.ratelimit import KeyedLimiter, TokenBucket

from .conftest import (
    PHONE_ID,
    assert_accepted,
    assert_meta_error,
    make_config,
    running_mock,
    text_message,
    wait_until,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

OTHER_PHONE_ID = "109876543210987"


# -- token buckets, on an explicit clock -----------------------------------------------


def test_bucket_starts_full_and_empties() -> None:
    bucket = TokenBucket(rate=1.0, capacity=3)

    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]


def test_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=1)
    assert bucket.take(0.0)
    assert not bucket.take(0.4)  # 0.8 tokens

    assert bucket.take(0.5)  # 1.0 token
    assert not bucket.take(0.5)


def test_bucket_refill_is_capped_at_capacity() -> None:
    bucket = TokenBucket(rate=10.0, capacity=2)
    assert bucket.take(0.0)
    assert bucket.take(0.0)

    taken = [bucket.take(100.0) for _ in range(3)]

    assert taken == [True, True, False]


def test_keyed_limiter_keeps_one_bucket_per_key() -> None:
    limiter = KeyedLimiter(rate=0.001, capacity=1)

    assert limiter.allow(("a",), 0.0)
    assert not limiter.allow(("a",), 0.0)
    assert limiter.allow(("b",), 0.0)
    assert limiter.allow(("a", "b"), 0.0)


# -- throughput (per business number) --------------------------------------------------


def throughput(**settings) -> dict:
    return {"throughput": settings, "pair_rate": {"enabled": False}}


async def test_send_beyond_throughput_gets_429_code_130429() -> None:
    # 1 message/s: the bucket holds 1; the second send comes well within that second
    async with running_mock(make_config(behaviours=throughput(messages_per_second=1))) as mock:
        first = await mock.send(text_message(to="15550100001"))
        second = await mock.send(text_message(to="15550100002"))
        journal = await mock.journal()

    assert_accepted(first, to="15550100001")
    error = assert_meta_error(second, status=429, code=130429)
    assert error["message"] == "(#130429) Rate limit hit"
    assert error["error_data"]["details"] == CATALOGUE[130429][2]
    assert journal[1]["outcome"] == "error"
    assert journal[1]["error_code"] == 130429


async def test_throughput_bucket_holds_one_second_of_messages() -> None:
    async with running_mock(make_config(behaviours=throughput(messages_per_second=2))) as mock:
        statuses = [(await mock.send()).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


async def test_throughput_below_one_per_second_still_lets_a_message_through() -> None:
    async with running_mock(make_config(behaviours=throughput(messages_per_second=0.5))) as mock:
        assert_accepted(await mock.send())
        assert_meta_error(await mock.send(), status=429, code=130429)


async def test_throughput_http_status_is_configurable() -> None:
    behaviours = throughput(messages_per_second=1, http_status=400)
    async with running_mock(make_config(behaviours=behaviours)) as mock:
        await mock.send()
        assert_meta_error(await mock.send(), status=400, code=130429)


async def test_throughput_is_per_business_number() -> None:
    config = make_config(
        phone_number_ids=[PHONE_ID, OTHER_PHONE_ID], behaviours=throughput(messages_per_second=1)
    )
    async with running_mock(config) as mock:
        assert_accepted(await mock.send())
        assert_accepted(await mock.send(path=f"/v21.0/{OTHER_PHONE_ID}/messages"))
        assert_meta_error(await mock.send(), status=429, code=130429)


async def test_throughput_disabled_never_limits() -> None:
    behaviours = throughput(enabled=False, messages_per_second=1)
    async with running_mock(make_config(behaviours=behaviours)) as mock:
        assert [(await mock.send()).status_code for _ in range(5)] == [200] * 5


async def test_throughput_refills_over_time() -> None:
    async with running_mock(make_config(behaviours=throughput(messages_per_second=2))) as mock:
        for _ in range(2):
            assert_accepted(await mock.send())
        assert_meta_error(await mock.send(), status=429, code=130429)

        async def accepted_again() -> bool:
            return (await mock.send()).status_code == 200

        await wait_until(accepted_again, timeout_s=5, interval_s=0.02, what="a refilled token")


# -- pair rate (per business number and recipient) -------------------------------------


def pair_rate(**settings) -> dict:
    return {"pair_rate": settings, "throughput": {"enabled": False}}


@pytest.mark.parametrize("http_status", [None, 429])
async def test_burst_then_131056_with_the_configured_status(http_status: int | None) -> None:
    settings = {"burst": 3} | ({"http_status": http_status} if http_status else {})
    config = make_config(behaviours=pair_rate(**settings))
    expected_status = config.behaviours.pair_rate.http_status
    async with running_mock(config) as mock:
        statuses = [(await mock.send()).status_code for _ in range(3)]
        limited = await mock.send()

    assert expected_status == (http_status or 400)
    assert statuses == [200, 200, 200]
    error = assert_meta_error(limited, status=expected_status, code=131056)
    assert error["message"] == "(#131056) (Business Account, Consumer Account) pair rate limit hit"


async def test_pair_rate_recipients_are_independent() -> None:
    async with running_mock(make_config(behaviours=pair_rate(burst=1))) as mock:
        assert_accepted(await mock.send(text_message(to="15550100001")), to="15550100001")
        assert_meta_error(await mock.send(text_message(to="15550100001")), status=400, code=131056)
        assert_accepted(await mock.send(text_message(to="15550100002")), to="15550100002")


async def test_pair_rate_keys_on_wa_id_not_on_how_the_number_is_written() -> None:
    async with running_mock(make_config(behaviours=pair_rate(burst=1))) as mock:
        assert_accepted(await mock.send(text_message(to="+1 555 010 0001")), to="+1 555 010 0001")
        limited = await mock.send(text_message(to="15550100001"))

    assert_meta_error(limited, status=400, code=131056)


async def test_pair_rate_is_per_business_number() -> None:
    config = make_config(phone_number_ids=[PHONE_ID, OTHER_PHONE_ID], behaviours=pair_rate(burst=1))
    async with running_mock(config) as mock:
        assert_accepted(await mock.send())
        assert_accepted(await mock.send(path=f"/v21.0/{OTHER_PHONE_ID}/messages"))


async def test_pair_rate_refills_one_message_per_period() -> None:
    async with running_mock(make_config(behaviours=pair_rate(burst=1, period_s=0.1))) as mock:
        assert_accepted(await mock.send())
        assert_meta_error(await mock.send(), status=400, code=131056)

        async def accepted_again() -> bool:
            return (await mock.send()).status_code == 200

        await wait_until(accepted_again, timeout_s=5, interval_s=0.02, what="a refilled pair token")


async def test_pair_rate_disabled_never_limits() -> None:
    behaviours = pair_rate(enabled=False, burst=1)
    async with running_mock(make_config(behaviours=behaviours)) as mock:
        assert [(await mock.send()).status_code for _ in range(5)] == [200] * 5


async def test_default_pair_rate_allows_a_burst_of_45() -> None:
    config = make_config(behaviours={"throughput": {"enabled": False}})
    async with running_mock(config) as mock:
        statuses = [(await mock.send()).status_code for _ in range(46)]

    assert statuses == [200] * 45 + [400]


async def test_reset_refills_the_buckets() -> None:
    async with running_mock(make_config(behaviours=pair_rate(burst=1))) as mock:
        assert_accepted(await mock.send())
        assert_meta_error(await mock.send(), status=400, code=131056)
        assert (await mock.client.post("/_mock/reset")).status_code == 200
        assert_accepted(await mock.send())


async def test_limited_send_is_journaled_without_a_wamid() -> None:
    async with running_mock(make_config(behaviours=pair_rate(burst=1))) as mock:
        await mock.send()
        await mock.send()
        _, limited = await mock.journal()

    assert limited["wamid"] is None
    assert limited["outcome"] == "error"
    assert limited["error_code"] == 131056
    assert limited["http_status"] == 400
