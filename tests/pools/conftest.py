"""The pool regression suite: shipped scenarios run on real stacks, judged per message.

Each module runs one scenario once, every lane side by side (the pytest plugin's
`stagger_run`, on the CLI's code path), and its tests, parametrised by pool, assert on
that run. Scenarios run time scaled; every tolerance comes from the scaled scenario.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.fault_record import FaultRecord
from harness.history import MessageHistory
from harness.run import RunOutcome
from harness.scenario import Scenario

POOLS = ("solo", "prefork", "threads", "gevent")
CONCURRENT_POOLS = ("prefork", "threads", "gevent")
each_pool = pytest.mark.parametrize("pool", POOLS)

RunScenario = Callable[..., RunOutcome]


@pytest.fixture(scope="session")
def run_shipped(stagger_run: RunScenario) -> RunScenario:
    """Run a shipped scenario at a time scale, once per session (the plugin's `stagger_run`)."""

    def run(name: str, time_scale: float, broker_url: str | None = None) -> RunOutcome:
        return stagger_run(name, time_scale=time_scale, broker_url=broker_url)

    return run


def parts(outcome: RunOutcome, lane: str) -> list[MessageHistory]:
    """The lane's parts in seq order (one request per lane in these scenarios)."""
    return sorted(outcome.history[lane], key=lambda message: message.seq)


def assert_exactly_once_in_order_on_time(outcome: RunOutcome, lane: str) -> None:
    """Every part reached the API exactly once, in seq order, within the scenario's bounds."""
    scenario: Scenario = outcome.scenario
    tolerances = scenario.tolerances
    history = parts(outcome, lane)
    assert [m.seq for m in history] == list(range(scenario.expected_messages))
    for message in history:
        assert message.accepted == 1, f"{lane} part {message.seq}: {message.accepted} accepted"
        assert message.lateness_s is not None
        assert -tolerances.early_s <= message.lateness_s <= tolerances.on_time_s, (
            f"{lane} part {message.seq}: {message.lateness_s:.3f} s late, "
            f"allowed {-tolerances.early_s:g}..{tolerances.on_time_s:g} s"
        )
    receipts = [m.api_received_at for m in history]
    assert receipts == sorted(receipts), f"{lane}: parts reached the API out of seq order"
    result = outcome.lane(lane)
    assert (result.verdict, result.as_expected) == ("pass", True), result.reasons


def assert_as_expected(outcome: RunOutcome, lane: str) -> None:
    """The lane's verdict is the one its scenario expects, with the reasons it names."""
    result = outcome.lane(lane)
    assert outcome.results.complete
    assert result.as_expected, result.mismatch


def assert_twice_only_where_the_ack_was_lost(
    outcome: RunOutcome, lane: str, stopped_by: FaultRecord, restart: FaultRecord
) -> None:
    """A broker delivers at least once: a part sent as the fault `stopped_by` struck (the
    broker went down, the worker was killed), its ack lost, is taken back and sent again
    by the restarted worker. Nothing else goes out twice (two live workers would send
    the parts they both hold after the fault)."""
    for m in parts(outcome, lane):
        assert m.accepted <= 2, f"part {m.seq}"
        if m.accepted == 2:
            first, second = (r.received_at for r in m.api_requests if r.outcome == "accepted")
            assert first <= stopped_by.done_at, f"part {m.seq}: first sent after the fault"
            assert second >= restart.begun_at, f"part {m.seq}: again before the restart"


def assert_held_parts_never_run(
    outcome: RunOutcome, lane: str, kill: FaultRecord, restart: FaultRecord
) -> list[MessageHistory]:
    """Every part due after the SIGKILL that the killed worker had fetched is never
    started, by it or by the restarted worker (Redis keeps it unacked). On a loaded
    machine the worker may not have fetched the last few parts by a kill 0.25 s after
    the requests (time scale 0.25): the restarted worker receives those and sends each
    once. Returns the parts the killed worker held."""
    after = [m for m in parts(outcome, lane) if m.due is not None and m.due > kill.begun_at]
    # Fetched by the killed worker: received before the kill, or fetched and not yet logged.
    held = [m for m in after if m.received is None or m.received < kill.begun_at]
    for message in held:
        assert message.started is None, f"part {message.seq}"
        assert message.accepted == 0, f"part {message.seq}"
    for message in (m for m in after if m not in held):
        assert message.received is not None
        assert message.received >= restart.begun_at, f"part {message.seq}"
        assert message.worker_pids == [restart.pid], f"part {message.seq}"
        assert message.accepted == 1, f"part {message.seq}"
    assert held, "the worker was killed before it fetched any part due after the kill"
    assert outcome.lane(lane).missing >= len(held)
    return held
