"""Lanes on RabbitMQ and on other Celery releases: shipped scenarios on real stacks.

Each module runs one shipped scenario once, every lane side by side (`run_scenario`,
the CLI's code path), with a real RabbitMQ node the harness starts (Debian's
`rabbitmq-server`), the embedded Valkey, and lane environments made with uv. The
scenarios whose outcome a broker's own timer decides run at full length.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.fault_record import FaultRecord
from harness.run import RunOutcome, run_scenario
from harness.scenario import load_scenario

RunScenario = Callable[..., RunOutcome]


@pytest.fixture(scope="session")
def run_shipped(tmp_path_factory: pytest.TempPathFactory) -> RunScenario:
    """Run a shipped scenario at a time scale, once per session, and keep its outcome."""
    outcomes: dict[tuple[str, float], RunOutcome] = {}

    def run(name: str, time_scale: float) -> RunOutcome:
        if (name, time_scale) not in outcomes:
            scenario, text = load_scenario(name)
            run_dir = Path(tmp_path_factory.mktemp(name))
            outcomes[name, time_scale] = run_scenario(
                scenario.scaled(time_scale), run_dir, source_text=text
            )
        return outcomes[name, time_scale]

    return run


def events(outcome: RunOutcome, lane: str) -> list[dict[str, Any]]:
    """The lane's worker events as the run stored them."""
    lines = (outcome.run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["lane"] == lane]


def received_per_part(outcome: RunOutcome, lane: str) -> dict[str, list[dict[str, Any]]]:
    """Every `received` event of the lane, by message id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events(outcome, lane):
        if event["event"] == "received":
            found.setdefault(event["message_id"], []).append(event)
    return found


def faults(outcome: RunOutcome, lane: str) -> dict[str, FaultRecord]:
    done: dict[str, FaultRecord] = {f.action: f for f in outcome.results.faults if f.lane == lane}
    assert all(fault.error is None for fault in done.values()), done
    return done
