"""One send never answered, with no client timeout: under solo every later part waits;
under the concurrent pools the others go out. A read timeout is the fix."""

from __future__ import annotations

import pytest

from harness.run import RunOutcome

from .conftest import CONCURRENT_POOLS, RunScenario, assert_as_expected, parts

pytestmark = [pytest.mark.integration, pytest.mark.pools, pytest.mark.timeout(300)]

HUNG = 1  # the API never answers each business number's 2nd send: part 1


@pytest.fixture(scope="module")
def outcome(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("hung-send", 0.25)


def test_under_solo_every_part_after_the_hung_one_waits(outcome: RunOutcome) -> None:
    first, hung, *rest = parts(outcome, "solo")
    assert first.accepted == 1
    assert hung.started is not None
    assert hung.accepted == 0
    assert [request.outcome for request in hung.api_requests] in (["hang"], ["disconnected"])
    assert rest
    assert all(m.received is not None and m.started is None for m in rest)
    assert outcome.lane("solo").missing == outcome.scenario.expected_messages - 1
    assert_as_expected(outcome, "solo")


@pytest.mark.parametrize("pool", CONCURRENT_POOLS)
def test_concurrent_pools_send_every_other_part_on_time(outcome: RunOutcome, pool: str) -> None:
    on_time_s = outcome.scenario.tolerances.on_time_s
    for message in parts(outcome, pool):
        if message.seq == HUNG:
            assert message.started is not None
            assert message.accepted == 0
            continue
        assert message.accepted == 1, f"part {message.seq}"
        assert message.lateness_s is not None
        assert message.lateness_s <= on_time_s
    assert outcome.lane(pool).missing == 1
    assert_as_expected(outcome, pool)


def test_a_read_timeout_retries_the_hung_send_and_loses_nothing(outcome: RunOutcome) -> None:
    scenario = outcome.scenario
    timeout_s = float(scenario.lane("solo-timeout").env["WHATSAPP_READ_TIMEOUT_S"])
    history = parts(outcome, "solo-timeout")
    assert [m.accepted for m in history] == [1] * scenario.expected_messages
    hung = history[HUNG]
    assert [request.outcome for request in hung.api_requests][-1] == "accepted"
    assert hung.lateness_s is not None
    assert hung.lateness_s >= timeout_s
    late = [m.seq for m in history if (m.lateness_s or 0) > scenario.tolerances.on_time_s]
    assert late == [HUNG]
    assert_as_expected(outcome, "solo-timeout")
