"""Faults on events, on real stacks: a worker killed once the API accepted part K hits
the same point of the flow on every pool, whatever the time scale."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run import RunOutcome, run_scenario
from harness.scenario import parse_scenario

from .conftest import POOLS, each_pool, fault_of, ledger, parts

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]

K = 3  # the part whose acceptance kills the worker
LANES = "\n".join(
    f'[[lanes]]\nname = "{pool}"\npool = "{pool}"\nexpect = "fail"\nbecause = ["missing"]\n'
    f'[[faults]]\nafter_sent = {K}\naction = "kill-worker"\nlane = "{pool}"\n'
    for pool in POOLS
)
SCENARIO = f"""
name = "killed-after-part"
description = "Each worker SIGKILLed as soon as the API accepted part {K}."

[flow]
messages = 12
spacing_s = 2.0

[api.latency]
default = {{ model = "fixed", value_s = 0.1 }}

[tolerances]
on_time_s = 2.0
missing_after_s = 6.0

{LANES}
"""


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    scenario = parse_scenario(SCENARIO, "killed-after-part.toml").scaled(0.25)
    return run_scenario(scenario, Path(tmp_path_factory.mktemp("triggers")))


@each_pool
def test_the_kill_comes_once_part_k_is_sent_and_before_the_next(
    killed: RunOutcome, pool: str
) -> None:
    kill = fault_of(killed, "kill-worker", pool)
    history = parts(killed, pool)
    sent = history[K]
    assert sent.accepted == 1
    assert sent.api_responded_at is not None
    assert kill.scheduled_at >= sent.api_responded_at  # fired on the event, not before
    assert kill.after_sent == K
    for m in history[K + 1 :]:
        assert m.accepted == 0, f"part {m.seq} sent: the kill came too late"
    book = ledger(killed, pool)
    assert book.on_time + book.late == K + 1
    assert book.lost == len(history) - K - 1
    assert killed.lane(pool).as_expected, killed.lane(pool).mismatch
