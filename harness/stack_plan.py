"""The stack a scenario asks for: its lanes, broker, bot settings and mock behaviours, as
the `StackSpec` every backend brings up (kept outside `harness.stack`, which the scenario
itself imports for the spec's types)."""

from __future__ import annotations

from .scenario import BROKER_ACTIONS, Scenario
from .stack.spec import LaneSpec, StackSpec


def stack_spec(scenario: Scenario, broker_url: str | None = None) -> StackSpec:
    """The stack a (scaled) scenario runs on: one lane per scenario lane."""
    return StackSpec(
        lanes=[
            LaneSpec(
                name=lane.name,
                pool=lane.pool,
                concurrency=lane.concurrency,
                pool_from_settings=lane.pool_set_by == "settings",
                env=lane.env,
                broker=lane.broker,
                broker_url=lane.broker_url,
                broker_db=lane.broker_db,
                pins=lane.pins,
                external=lane.external,
            )
            for lane in scenario.lanes
        ],
        broker_url=broker_url,
        bot_env=scenario.env,
        mock_behaviours=scenario.api,
        rabbitmq=scenario.rabbitmq,
        proxied=scenario.proxied,
        restarts_broker=any(fault.action in BROKER_ACTIONS for fault in scenario.faults),
    )
