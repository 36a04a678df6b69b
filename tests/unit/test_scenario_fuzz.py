"""Scenario files fuzzed: whatever a file holds, loading it either gives a scenario or a
`ScenarioError` naming the file, never another exception (a traceback for the user)."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.scenario import SCENARIO_DIR, ScenarioError, validate_scenario

pytestmark = pytest.mark.unit

SOURCE = "fuzzed.toml"
KEYS = st.sampled_from(
    [
        "name", "description", "time_scale", "flow", "settings", "api", "tolerances",
        "lanes", "faults", "messages", "spacing_s", "pool", "action", "at_s",
        "after_received", "duration_s", "lane", "target", "on_time_s", "expect", "because",
    ]
)  # fmt: skip
SCALARS = st.one_of(  # what TOML holds: no null
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), children, max_size=5),
    ),
    max_leaves=30,
)
SHIPPED = [tomllib.loads(path.read_text()) for path in sorted(SCENARIO_DIR.glob("*.toml"))]


def load(data: dict[str, object]) -> None:
    """As `parse_scenario` does once the TOML is read (TOML's own errors are tomllib's)."""
    try:
        validate_scenario(data, SOURCE)
    except ScenarioError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith(f"{SOURCE}: "), message


@settings(max_examples=100, deadline=None)
@given(data=st.dictionaries(KEYS, VALUES, max_size=8))
def test_any_table_is_a_scenario_or_a_named_error(data: dict[str, object]) -> None:
    load(data)


@settings(max_examples=100, deadline=None)
@given(base=st.sampled_from(SHIPPED), key=KEYS, value=VALUES, where=st.integers(0, 3))
def test_a_shipped_scenario_with_one_field_changed_is_a_scenario_or_a_named_error(
    base: dict[str, object], key: str, value: object, where: int
) -> None:
    """One field replaced at the top, in the flow, in a lane or in a fault."""
    data = {k: v for k, v in base.items()}
    tables: list[dict[str, object]] = [data]
    for name in ("flow", "lanes", "faults"):
        found = data.get(name)
        if isinstance(found, dict):
            tables.append(dict(found))
            data[name] = tables[-1]
        elif isinstance(found, list) and found and isinstance(found[0], dict):
            tables.append(dict(found[0]))
            data[name] = [tables[-1], *found[1:]]
    tables[where % len(tables)][key] = value
    load(data)
