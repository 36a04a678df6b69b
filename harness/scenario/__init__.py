"""Scenarios: what a run does and what it must find, as validated data from TOML.

The package owns the whole input a run is given:

- `base`: the scenario (`Scenario`), its flow and tolerances;
- `lanes`: the lanes (`LaneScenario`); `settings`: bot and Celery settings by name;
- `brokers`: a lane's broker, and the RabbitMQ node's table; `external`: a bot of one's own;
- `faults`: the faults, one model per `action`;
- `load`: the `[load]` table and its shapes; `capacity`: the `[capacity]` table;
- `scaling`: what `Scenario.scaled` does to each duration, and the floors;
- `files`: finding and reading scenario files; `errors`: `ScenarioError`;
- `zoo`: the `[zoo]` table of a scenario that reproduces a publicly reported bug;
- `schema`: the JSON Schema made from the models.
"""

from __future__ import annotations

from .base import Flow, Scenario, Tolerances
from .brokers import BROKERS, BrokerKind, RabbitSettings
from .capacity import CapacitySettings
from .errors import ScenarioError
from .external import External
from .faults import (
    BROKER_ACTIONS,
    DEFAULT_GRACE_S,
    FAULT_ACTIONS,
    NET_ACTIONS,
    STACK_ACTIONS,
    TRIGGERS,
    WINDOW_ACTIONS,
    Fault,
    FaultAction,
    NetTarget,
)
from .files import (
    UNFILLED_MARK,
    load_scenario,
    parse_scenario,
    scenario_path,
    shipped_names,
    validate_scenario,
    with_workdirs,
)
from .lanes import LaneScenario, Reason
from .load import SHAPES, Load, Shape, Thresholds, users_at
from .scaling import MIN_ON_TIME_S, MIN_SPACING_S
from .schema import scenario_json_schema
from .settings import (
    DURATION_SETTINGS,
    FLOW_SETTINGS,
    RATE_SETTINGS,
    STACK_SETTINGS,
    SettingValue,
)
from .zoo import Zoo, ZooAffects, ZooStatus

__all__ = [
    "BROKERS",
    "BROKER_ACTIONS",
    "DEFAULT_GRACE_S",
    "DURATION_SETTINGS",
    "FAULT_ACTIONS",
    "FLOW_SETTINGS",
    "MIN_ON_TIME_S",
    "MIN_SPACING_S",
    "NET_ACTIONS",
    "RATE_SETTINGS",
    "SHAPES",
    "STACK_ACTIONS",
    "STACK_SETTINGS",
    "TRIGGERS",
    "UNFILLED_MARK",
    "WINDOW_ACTIONS",
    "BrokerKind",
    "CapacitySettings",
    "External",
    "Fault",
    "FaultAction",
    "Flow",
    "LaneScenario",
    "Load",
    "NetTarget",
    "RabbitSettings",
    "Reason",
    "Scenario",
    "ScenarioError",
    "SettingValue",
    "Shape",
    "Thresholds",
    "Tolerances",
    "Zoo",
    "ZooAffects",
    "ZooStatus",
    "load_scenario",
    "parse_scenario",
    "scenario_json_schema",
    "scenario_path",
    "shipped_names",
    "users_at",
    "validate_scenario",
    "with_workdirs",
]
