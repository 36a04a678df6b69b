"""Scenario files fuzzed: whatever a file holds, loading it either gives a scenario or a
`ScenarioError` naming the file and, on each line, the field at fault; never another
exception (a traceback for the user). The CLI says so in one error and exits 2."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness import cli
from harness.resources import on_disk
from harness.scenario import Scenario, ScenarioError, validate_scenario

SCENARIOS = on_disk("scenarios")
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
SHIPPED = [tomllib.loads(path.read_text()) for path in sorted(SCENARIOS.glob("*.toml"))]


def assert_names_the_fields(message: str, data: dict[str, object]) -> None:
    """`<file>: N invalid setting(s)`, then one `  <where>: <what>` line per problem, where
    `where` is the field's path (a scenario field, or the unknown key given)."""
    header, *problems = message.splitlines()
    assert header.startswith(f"{SOURCE}: "), message
    assert header.endswith("invalid setting(s)"), message
    assert problems, message
    known = set(Scenario.model_fields) | {repr(str(key)) for key in data} | {str(k) for k in data}
    for line in problems:
        assert line.startswith("  "), message
        where, _, what = line.strip().partition(": ")
        assert what, message
        if where == "(top level)":  # a rule across fields: its message names them
            assert any(name in what for name in Scenario.model_fields), message
        else:
            assert where.split(".")[0] in known or where.startswith(tuple(known)), message


def load(data: dict[str, object]) -> None:
    """As `parse_scenario` does once the TOML is read (TOML's own errors are tomllib's)."""
    try:
        validate_scenario(data, SOURCE)
    except ScenarioError as exc:
        assert_names_the_fields(str(exc), data)


def test_a_key_with_control_characters_is_named_quoted() -> None:
    """Found by fuzzing: a key `\r` printed bare broke its line (the terminal showed
    `flow.: Extra inputs...`); quoted, the line names it."""
    with pytest.raises(ScenarioError) as raised:
        validate_scenario({"flow": {"\r": 1, "two words": 2}}, SOURCE)
    lines = str(raised.value).splitlines()
    assert "  flow.'\\r': Extra inputs are not permitted (got 1)" in lines
    assert "  flow.'two words': Extra inputs are not permitted (got 2)" in lines


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


@settings(max_examples=100, deadline=None)
@given(base=st.sampled_from(SHIPPED), scale=st.floats(allow_nan=False) | st.none())
def test_scaling_a_shipped_scenario_is_a_scenario_or_a_named_error(
    base: dict[str, object], scale: float | None
) -> None:
    """Any time scale (the CLI's --time-scale): a scaled scenario, or a ScenarioError
    saying which scale is allowed."""
    scenario = validate_scenario(base, SOURCE)
    try:
        scaled = scenario.scaled(scale)
    except ScenarioError as exc:
        refusal = str(exc)
    else:
        assert scaled.time_scale == (scenario.time_scale if scale is None else scale)
        return
    assert "time scale" in refusal, refusal


# -- through the command line ------------------------------------------------------------------


def toml_value(value: object) -> str:
    """A TOML literal for a scalar (JSON's spelling is TOML's for these)."""
    return json.dumps(value)


def assert_one_clear_error(done: object, path: Path) -> None:
    """Exit 2, the file named, no traceback: what a user sees for a bad scenario file."""
    assert done.exit_code == 2, done.output  # type: ignore[attr-defined]
    assert isinstance(done.exception, SystemExit), done.exception  # type: ignore[attr-defined]
    output = " ".join(done.output.split())  # type: ignore[attr-defined]
    assert str(path) in output, output
    assert "Traceback" not in output, output


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(sorted(path.name for path in SCENARIOS.glob("*.toml"))),
    line=st.integers(0, 10_000),
    value=st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
)
def test_scenarios_command_names_the_file_for_any_value_anywhere(
    tmp_path: Path, name: str, line: int, value: object
) -> None:
    """`harness scenarios FILE` with one `key = value` line of a shipped file given another
    value: listed (exit 0), or one clear error naming the file (exit 2), never a traceback."""
    lines = (SCENARIOS / name).read_text().splitlines()
    settable = [i for i, text in enumerate(lines) if " = " in text and not text.startswith("#")]
    index = settable[line % len(settable)]
    key = lines[index].split(" = ")[0]
    lines[index] = f"{key} = {toml_value(value)}"
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")

    done = CliRunner().invoke(cli.app, ["scenarios", str(path)], env={"COLUMNS": "200"})

    if done.exit_code == 0:
        assert done.exception is None, done.exception
        return
    assert_one_clear_error(done, path)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param(b"name = \n", ["not valid TOML"], id="not-toml"),
        pytest.param(b"\xff\xfe = 1\n", ["cannot read"], id="not-utf8"),
        pytest.param(b"name = 'x'\n", ["description", "Field required"], id="missing-fields"),
        pytest.param(
            (SCENARIOS / "incident.toml").read_bytes().replace(b'pool = "solo"', b"pool = 1"),
            ["lanes.0.pool"],
            id="wrong-type",
        ),
        pytest.param(  # valid as a table, refused only once scaled (found by the test above)
            (SCENARIOS / "incident.toml")
            .read_bytes()
            .replace(b"on_time_s = ", b"on_time_s = 0.25 #"),
            ["tolerances.on_time_s 0.25 s", "below the 0.5 s floor", "time scale of at least 2"],
            id="below-a-floor",
        ),
    ],
)
def test_run_of_a_bad_file_is_one_clear_error_and_starts_nothing(
    tmp_path: Path, text: bytes, words: list[str]
) -> None:
    """`harness run path.toml`: exit 2 with one error naming the file and the field; no run
    directory, so nothing was started."""
    path = tmp_path / "bad.toml"
    path.write_bytes(text)
    out = tmp_path / "run"

    done = CliRunner().invoke(
        cli.app, ["run", str(path), "--out", str(out)], env={"COLUMNS": "200"}
    )

    assert_one_clear_error(done, path)
    for word in words:
        assert word in done.output, done.output
    assert not out.exists()
