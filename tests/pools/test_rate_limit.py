"""A task `rate_limit` slower than the spacing delays the parts on every pool;
`worker_disable_rate_limits` removes the delay."""

from __future__ import annotations

import pytest
from celery.utils.time import rate

from harness.run import RunOutcome

from .conftest import (
    RunScenario,
    assert_as_expected,
    assert_exactly_once_in_order_on_time,
    each_pool,
    parts,
)

pytestmark = [pytest.mark.integration, pytest.mark.pools, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def outcome(run_shipped: RunScenario) -> RunOutcome:
    return run_shipped("rate-limit", 0.25)


@each_pool
def test_a_rate_limit_makes_each_part_later_than_the_last(outcome: RunOutcome, pool: str) -> None:
    scenario = outcome.scenario
    token_s = 1 / rate(scenario.env["SEND_RATE_LIMIT"])  # one send per token
    history = parts(outcome, pool)
    assert [m.accepted for m in history] == [1] * scenario.expected_messages
    first_due = history[0].due
    assert history[0].seq == 0
    assert first_due is not None
    for message in history:
        assert message.lateness_s is not None
        assert message.due is not None
        # The tokens run from part 0's send: part n takes the n-th, n tokens after it. Its
        # own due time counts from when the bot queued it, which on a busy machine is a
        # little after part 0's (the bot queues 22 parts one by one), so the chain is
        # anchored on part 0's due time, not on n x spacing.
        behind = first_due + message.seq * token_s - message.due
        assert message.lateness_s >= behind - scenario.tolerances.on_time_s, (
            f"part {message.seq}: {message.lateness_s:.3f} s late; a token every {token_s:g} s "
            f"from part 0's due time puts it at least {behind:.3f} s late"
        )
    assert_as_expected(outcome, pool)


@each_pool
def test_worker_disable_rate_limits_removes_the_delay(outcome: RunOutcome, pool: str) -> None:
    assert_exactly_once_in_order_on_time(outcome, f"{pool}-disabled")
