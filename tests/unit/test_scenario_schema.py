"""The scenario's JSON Schema: valid, every field explained, and true of every shipped file.

Editors check scenario files with it and the reference pages are generated from it, so
each field must carry its meaning (a description), and each fault action the fields it
takes; a schema that refused a shipped scenario would be lying about what runs.
"""

from __future__ import annotations

import tomllib
from typing import Any

import jsonschema_rs
import pytest

from harness.scenario import (
    FAULT_ACTIONS,
    ScenarioError,
    load_scenario,
    scenario_json_schema,
    shipped_names,
    validate_scenario,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return scenario_json_schema()


def _fields(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(table, field, its schema) for every field of the scenario and of each table in it."""
    tables = {"Scenario": schema} | schema["$defs"]
    return [
        (table, name, field)
        for table, definition in tables.items()
        for name, field in definition.get("properties", {}).items()
    ]


def test_the_schema_is_valid_json_schema(schema: dict[str, Any]) -> None:
    jsonschema_rs.meta.validate(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_field_says_what_it_means(schema: dict[str, Any]) -> None:
    fields = _fields(schema)
    assert len(fields) > 100  # the scenario's own tables, the faults and the mock's behaviours
    unexplained = [
        f"{table}.{name}" for table, name, field in fields if not field.get("description")
    ]
    assert unexplained == []


def test_every_optional_field_says_its_default(schema: dict[str, Any]) -> None:
    tables = {"Scenario": schema} | schema["$defs"]
    silent = [
        f"{table}.{name}"
        for table, definition in tables.items()
        for name, field in definition.get("properties", {}).items()
        if name not in definition.get("required", []) and "default" not in field
    ]
    assert silent == []
    assert schema["properties"]["flow"]["default"] == {
        "messages": 22,
        "spacing_s": 2.0,
        "recipients": 1,
    }


def test_each_fault_action_names_the_fields_it_takes(schema: dict[str, Any]) -> None:
    faults = schema["properties"]["faults"]["items"]
    mapping = faults["discriminator"]["mapping"]
    assert faults["discriminator"]["propertyName"] == "action"
    assert sorted(mapping) == sorted(FAULT_ACTIONS)
    fields = {
        action: set(schema["$defs"][ref.rsplit("/", 1)[-1]]["properties"])
        for action, ref in mapping.items()
    }
    assert fields["kill-worker"] == {"at_s", "after_received", "after_sent", "action", "lane"}
    assert "grace_s" in fields["stop-worker"]
    assert "grace_s" not in fields["kill-worker"]
    assert fields["restart-broker"] == {"at_s", "action", "keep_data"}  # no lane, no trigger
    net_delay = schema["$defs"][mapping["net-delay"].rsplit("/", 1)[-1]]
    assert set(net_delay["required"]) == {"action", "duration_s", "target", "delay_s"}
    assert fields["net-half-open"] == {
        "at_s",
        "after_received",
        "after_sent",
        "action",
        "lane",
        "target",
    }  # no window


@pytest.mark.parametrize("name", shipped_names())
def test_a_shipped_scenario_meets_the_schema_and_round_trips(
    schema: dict[str, Any], name: str
) -> None:
    """The file as written meets the schema; read, dumped and read again, it is the same
    scenario, and its dump meets the schema too."""
    scenario, text = load_scenario(name)
    validator = jsonschema_rs.validator_for(schema)
    validator.validate(tomllib.loads(text))

    dumped = scenario.model_dump(mode="json")
    validator.validate(dumped)
    again = validate_scenario(dumped, f"{name} again")
    assert again == scenario
    assert again.model_dump(mode="json") == dumped


def test_a_fault_stored_with_every_field_null_where_unset_still_reads() -> None:
    """Runs stored their scenario (`scenario_definition`) with every fault field, null
    where unset; such a definition reads, and a field really given to the wrong action
    is still refused."""
    scenario, _ = load_scenario("api-outage")
    stored = scenario.model_dump(mode="json")
    stored["faults"] = [
        {"lane": None, "grace_s": None, "target": None, "delay_s": None} | fault
        for fault in stored["faults"]
    ]
    assert validate_scenario(stored, "stored") == scenario

    stored["faults"][0]["delay_s"] = 1.0
    with pytest.raises(ScenarioError, match="delay_s applies to net-delay only, not to api-outage"):
        validate_scenario(stored, "stored")
