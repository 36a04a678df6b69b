"""Scenarios: the shipped files load and scale, scaling reaches every duration, bad files are named.

A scenario file is user input: every mistake must come back as a `ScenarioError` naming
the file, the field and the value, before anything starts. `scaled` must shrink every
duration a run depends on (or none of its verdicts would carry over), and refuse to go
below what the harness can time, saying which scale would do.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from celery.utils.time import rate as parse_rate
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.resources import on_disk
from harness.run import stack_spec
from harness.scenario import (
    MIN_ON_TIME_S,
    MIN_SPACING_S,
    Flow,
    LaneScenario,
    Scenario,
    ScenarioError,
    Tolerances,
    load_scenario,
    parse_scenario,
    shipped_names,
    validate_scenario,
)

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]

# Every kind of value the time scale applies to, and some it must leave alone.
SCALING = """
name = "scaling"
description = "Every kind of duration the time scale applies to."

[flow]
messages = 4
spacing_s = 2.0
recipients = 2

[settings]
SEND_RETRY_BACKOFF_S = 1.0
SEND_RETRY_BACKOFF_MAX_S = 8
CELERY_BROKER_VISIBILITY_TIMEOUT = 3600
SEND_RATE_LIMIT = "30/m"
WHATSAPP_READ_TIMEOUT_S = "off"
SEND_MAX_RETRIES = 5
CELERY_TASK_ACKS_LATE = true

[api.latency]
seed = 7
default = { model = "uniform", low_s = 0.4, high_s = 1.2 }
per_phone_number = { "106540352290001" = { model = "fixed", value_s = 3.0 } }

[api.throughput]
messages_per_second = 10

[api.failures]
outages = [{ start_s = 4.0, duration_s = 6.0 }]

[tolerances]
on_time_s = 2.0
early_s = 0.1
missing_after_s = 30.0

[[lanes]]
name = "solo"
pool = "solo"
settings = { SEND_RETRY_BACKOFF_S = 2.0, SEND_RATE_LIMIT = "12/m" }

[[lanes]]
name = "prefork"
pool = "prefork"
concurrency = 2

[[faults]]
at_s = 10.0
action = "kill-worker"
lane = "prefork"
"""


def scaling_scenario() -> Scenario:
    return parse_scenario(SCALING, "scaling.toml")


# -- shipped scenarios ---------------------------------------------------------------------------


def test_scenarios_are_shipped() -> None:
    assert shipped_names() == sorted(path.stem for path in on_disk("scenarios").glob("*.toml"))
    assert "incident" in shipped_names()


@pytest.mark.parametrize("name", shipped_names())
def test_shipped_scenario_loads_and_runs_at_a_quarter_of_the_time(name: str) -> None:
    """CI runs every shipped scenario at 0.25 (or the least scale it allows): it must
    validate as a stack at that scale."""
    scenario, text = load_scenario(name)
    x = max(0.25, scenario.min_time_scale or 0.25)
    quarter = scenario.scaled(x)

    assert scenario.name == name
    assert text == (on_disk("scenarios") / f"{name}.toml").read_text(encoding="utf-8")
    assert load_scenario(str(on_disk("scenarios") / f"{name}.toml"))[0] == scenario
    assert quarter.time_scale == x
    assert quarter.flow.spacing_s == scenario.flow.spacing_s * x
    assert Scenario.model_validate(quarter.model_dump()) == quarter
    stack_spec(quarter)
    # An expected failure without reasons would accept any failure, hiding a regression.
    assert all(lane.because for lane in scenario.lanes if lane.expect == "fail")


# -- scaling -------------------------------------------------------------------------------------


def test_scaling_reaches_every_duration() -> None:
    """At 0.5: durations halve, rates double, everything else (early_s too) stays as written."""
    scenario = scaling_scenario()

    half = scenario.scaled(0.5)

    assert half.time_scale == 0.5
    assert half.flow == Flow(messages=4, spacing_s=1.0, recipients=2)
    assert half.expected_messages == scenario.expected_messages == 8
    assert half.env["FIXTURES_SPACING_S"] == "1.0"  # the bot is told the scaled spacing
    assert half.tolerances == scenario.tolerances.model_copy(
        update={"on_time_s": 1.0, "missing_after_s": 15.0}  # early_s is clock noise: not scaled
    )
    assert half.settings == {
        "SEND_RETRY_BACKOFF_S": 0.5,
        "SEND_RETRY_BACKOFF_MAX_S": 4.0,
        "CELERY_BROKER_VISIBILITY_TIMEOUT": 1800.0,
        "SEND_RATE_LIMIT": "1/s",  # 30/m is 0.5/s; at half the time, 1/s
        "WHATSAPP_READ_TIMEOUT_S": "off",
        "SEND_MAX_RETRIES": 5,
        "CELERY_TASK_ACKS_LATE": True,
    }
    assert half.lane("solo").settings == {"SEND_RETRY_BACKOFF_S": 1.0, "SEND_RATE_LIMIT": "0.4/s"}
    assert half.lane("prefork").concurrency == 2
    latency = half.api["latency"]
    assert latency["default"] == {"model": "uniform", "low_s": 0.2, "high_s": 0.6}
    assert latency["per_phone_number"]["106540352290001"] == {"model": "fixed", "value_s": 1.5}
    assert latency["seed"] == 7
    assert half.api["throughput"]["messages_per_second"] == 20
    (outage,) = half.api["failures"]["outages"]
    assert (outage["start_s"], outage["duration_s"]) == (2.0, 3.0)
    assert (
        outage["answer"]["http_status"]
        == scenario.api["failures"]["outages"][0]["answer"]["http_status"]
    )
    assert half.api["pair_rate"]["period_s"] == scenario.api["pair_rate"]["period_s"] / 2
    assert half.api["pair_rate"]["burst"] == scenario.api["pair_rate"]["burst"]
    assert [fault.at_s for fault in half.faults] == [5.0]
    stack_spec(half)


def scaled_pairs(original: Any, scaled: Any, key: str = "") -> list[tuple[str, Any, Any]]:
    """(key, original, scaled) for every leaf of the behaviours, walked side by side."""
    if isinstance(original, dict):
        assert set(original) == set(scaled)
        return [pair for k in original for pair in scaled_pairs(original[k], scaled[k], k)]
    if isinstance(original, list):
        assert len(original) == len(scaled)
        return [
            pair for a, b in zip(original, scaled, strict=True) for pair in scaled_pairs(a, b, key)
        ]
    return [(key, original, scaled)]


def least_scaling_scale() -> float:
    """The least scale SCALING accepts: each floor over the bound it applies to."""
    scenario = scaling_scenario()
    return max(
        MIN_SPACING_S / scenario.flow.spacing_s, MIN_ON_TIME_S / scenario.tolerances.on_time_s
    )


@settings(max_examples=60, deadline=None)
@given(x=st.floats(min_value=least_scaling_scale(), max_value=100.0))
def test_scaling_by_any_factor_scales_every_second_and_rate(x: float) -> None:
    """Every `*_s` of the mock's behaviours times x, throughput over x, rates over x."""
    scenario = scaling_scenario()

    scaled = scenario.scaled(x)

    for key, original, value in scaled_pairs(scenario.api, scaled.api):
        if isinstance(original, bool) or not isinstance(original, int | float):
            assert value == original, key
        elif key.endswith("_s"):
            assert value == pytest.approx(original * x), key
        elif key == "messages_per_second":
            assert value == pytest.approx(original / x), key
        else:
            assert value == original, key
    for written, now in [
        (scenario.settings, scaled.settings),
        (scenario.lane("solo").settings, scaled.lane("solo").settings),
    ]:
        assert parse_rate(now["SEND_RATE_LIMIT"]) == pytest.approx(
            parse_rate(written["SEND_RATE_LIMIT"]) / x, rel=1e-5
        )
        assert now["SEND_RETRY_BACKOFF_S"] == pytest.approx(written["SEND_RETRY_BACKOFF_S"] * x)
    assert scaled.settings["CELERY_BROKER_VISIBILITY_TIMEOUT"] == pytest.approx(3600 * x)
    assert scaled.faults[0].at_s == pytest.approx(scenario.faults[0].at_s * x)
    stack_spec(scaled)


def test_scaled_without_a_factor_applies_the_files_time_scale_once() -> None:
    """`time_scale` in the file is the default; the result records the factor applied."""
    scenario = parse_scenario(SCALING.replace("[flow]", "time_scale = 0.5\n\n[flow]"), "x.toml")

    scaled = scenario.scaled()

    assert scaled.time_scale == 0.5
    assert scaled.flow.spacing_s == scenario.flow.spacing_s * 0.5
    assert scenario.scaled(1.0).flow.spacing_s == scenario.flow.spacing_s  # as written
    assert scenario.scaled(1.0).time_scale == 1.0


@pytest.mark.parametrize("x", [0.0, -1.0, 100.5])
def test_a_time_scale_out_of_range_is_refused(x: float) -> None:
    with pytest.raises(ScenarioError, match=re.escape(f"got {x}")):
        scaling_scenario().scaled(x)


def timed(spacing_s: float, on_time_s: float) -> Scenario:
    """A scenario with only the two bounds that have floors."""
    return Scenario(
        name="timed",
        description="Spacing and on-time bound as given.",
        flow=Flow(spacing_s=spacing_s),
        tolerances=Tolerances(on_time_s=on_time_s, missing_after_s=on_time_s),
        lanes=[LaneScenario(name="solo", pool="solo")],
    )


@pytest.mark.parametrize(
    ("scenario", "x", "field", "written", "floor"),
    [
        (timed(2.0, 20.0), 0.04, "flow.spacing_s", 2.0, MIN_SPACING_S),
        (timed(2.0, 2.0), 0.2, "tolerances.on_time_s", 2.0, MIN_ON_TIME_S),
    ],
)
def test_scaling_below_a_floor_names_the_field_and_the_least_scale(
    scenario: Scenario, x: float, field: str, written: float, floor: float
) -> None:
    with pytest.raises(ScenarioError) as raised:
        scenario.scaled(x)

    message = str(raised.value)
    assert f"time scale {x:g} makes {field} {written:g} s into {written * x:g} s" in message
    assert f"below the {floor:g} s" in message
    assert message.endswith(f"use a time scale of at least {floor / written:g}")
    scenario.scaled(floor / written)  # the scale it names is enough


def test_the_suggested_scale_lifts_every_bound_not_only_the_first() -> None:
    """At 0.01 the incident breaks both floors; lifting spacing alone would leave on_time_s."""
    incident, _ = load_scenario("incident")
    needed = MIN_ON_TIME_S / incident.tolerances.on_time_s

    with pytest.raises(ScenarioError) as raised:
        incident.scaled(0.01)

    message = str(raised.value)
    for field, written, floor in [
        ("flow.spacing_s", incident.flow.spacing_s, MIN_SPACING_S),
        ("tolerances.on_time_s", incident.tolerances.on_time_s, MIN_ON_TIME_S),
    ]:
        assert f"{field} {written:g} s into {written * 0.01:g} s, below the {floor:g} s" in message
    assert least_scale(message) == needed
    assert incident.scaled(least_scale(message)).time_scale == needed


# Flow.spacing_s and Tolerances.on_time_s are at most an hour, scaled or not.
MAX_SCALED_S = 3600


def test_scaling_past_an_upper_bound_is_refused_with_the_field() -> None:
    """Scaled up, a spacing can pass its bound: refused before anything runs, not by the bot."""
    with pytest.raises(ScenarioError) as raised:
        timed(40.0, 40.0).scaled(100)

    message = str(raised.value)
    assert "at time scale 100" in message
    assert "flow.spacing_s" in message
    assert "less than or equal to 3600" in message


def test_a_fault_after_the_run_ends_is_refused() -> None:
    """A fault the run would never reach is an error in the file, not a silent no-op."""
    text = (on_disk("scenarios") / "incident.toml").read_text() + (
        '\n[[faults]]\nat_s = 500\naction = "kill-worker"\nlane = "solo"\n'
    )

    with pytest.raises(
        ScenarioError, match=r"faults\.0\.at_s: 500 s comes after the run ends \(72 s"
    ):
        parse_scenario(text, "late-fault.toml")


def least_scale(message: str) -> float:
    match = re.search(r"use a time scale of at least (\S+)$", message)
    assert match, message
    return float(match.group(1))


@settings(max_examples=150, deadline=None)
@given(
    spacing=st.integers(min_value=1, max_value=10_000).map(lambda n: n / 100),
    on_time=st.integers(min_value=1, max_value=10_000).map(lambda n: n / 100),
    x=st.floats(min_value=0.001, max_value=100.0),
)
def test_floors_refuse_exactly_what_the_harness_cannot_time(
    spacing: float, on_time: float, x: float
) -> None:
    """Refused iff spacing or on_time_s would fall below its floor. The error names every
    bound below its floor, and the scale it suggests is accepted and is the least that is,
    to the digits shown."""
    assume(max(spacing, on_time) * x <= MAX_SCALED_S)  # above that: refused (tested below)
    scenario = timed(spacing, on_time)
    floors = {
        "flow.spacing_s": (spacing, MIN_SPACING_S),
        "tolerances.on_time_s": (on_time, MIN_ON_TIME_S),
    }
    below = {name for name, (written, floor) in floors.items() if written * x < floor}
    if not below:
        assert scenario.scaled(x).time_scale == x
        return

    with pytest.raises(ScenarioError) as raised:
        scenario.scaled(x)

    message = str(raised.value)
    assert {name for name in floors if f"{name} {floors[name][0]:g} s into" in message} == below
    least = least_scale(message)
    needed = max(floor / written for written, floor in floors.values())
    assert needed <= least <= needed * (1 + 1e-5)
    if least <= 100 and max(spacing, on_time) * least <= MAX_SCALED_S:
        assert scenario.scaled(least).time_scale == least


def test_the_suggested_scale_is_rounded_up() -> None:
    """A 1.5 s bound needs a third: 0.333333 would leave it a hair below its floor."""
    scenario = timed(2.0, 1.5)
    needed = MIN_ON_TIME_S / scenario.tolerances.on_time_s

    with pytest.raises(ScenarioError) as raised:
        scenario.scaled(0.3)

    least = least_scale(str(raised.value))
    assert least > needed
    assert math.isclose(least, needed, rel_tol=1e-5)
    assert scenario.scaled(least).tolerances.on_time_s >= MIN_ON_TIME_S


# -- invalid files -------------------------------------------------------------------------------

VALID = """\
name = "valid"
description = "A valid scenario to break one field at a time."

[flow]
messages = 3
spacing_s = 2.0

[api.latency]
default = { model = "fixed", value_s = 0.3 }

[tolerances]
on_time_s = 2.0

[[lanes]]
name = "solo"
pool = "solo"

[[lanes]]
name = "threads"
pool = "threads"
concurrency = 4
"""


def edited(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


FLOW = "[flow]\n"
SOLO = 'name = "solo"\npool = "solo"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            edited('pool = "solo"', 'pool = "greenlet"'),
            ["lanes.0.pool: ", "'threads', 'gevent' or 'eventlet'", "(got 'greenlet')"],
            id="unknown-pool",
        ),
        pytest.param(
            edited("messages = 3", "messages = 0"),
            ["flow.messages: ", "greater than or equal to 1", "(got 0)"],
            id="no-messages",
        ),
        pytest.param(
            edited("[flow]", "bogus = 1\n\n[flow]"),
            ["bogus: Extra inputs are not permitted (got 1)"],
            id="unknown-top-level-key",
        ),
        pytest.param(
            edited("[[lanes]]", "[[lanes]\n"),
            ["not valid TOML", "line 14"],
            id="bad-toml",
        ),
        pytest.param(
            edited(FLOW, 'settings = { CELERY_WORKER_POOOL = "solo" }\n\n' + FLOW),
            ["settings: unknown bot setting(s) ['CELERY_WORKER_POOOL']", "CELERY_WORKER_POOL"],
            id="unknown-setting",
        ),
        pytest.param(
            edited(SOLO, SOLO + 'settings = { CELERY_WORKER_POOOL = "solo" }\n'),
            ["lanes.0.settings: unknown bot setting(s) ['CELERY_WORKER_POOOL']"],
            id="unknown-lane-setting",
        ),
        pytest.param(
            edited(FLOW, 'settings = { celery_worker_pool = "solo" }\n\n' + FLOW),
            ["settings: ", "UPPER_CASE", "celery_worker_pool"],
            id="lower-case-setting",
        ),
        pytest.param(
            edited(SOLO, SOLO + 'settings = { CELERY_BROKER_URL = "redis://elsewhere:6379/0" }\n'),
            ["lanes.0.settings: ['CELERY_BROKER_URL'] are set by the harness"],
            id="harness-owned-setting",
        ),
        pytest.param(
            edited(FLOW, "settings = { FIXTURES_PARTS = 5 }\n\n" + FLOW),
            ["settings: ['FIXTURES_PARTS'] come from the [flow] table"],
            id="flow-setting",
        ),
        pytest.param(
            edited(FLOW, 'settings = { SEND_RATE_LIMIT = "fast" }\n\n' + FLOW),
            ["settings: ", "SEND_RATE_LIMIT", "'fast'"],
            id="bad-rate",
        ),
        pytest.param(
            edited(SOLO, SOLO + 'settings = { SEND_RETRY_BACKOFF_S = "soon" }\n'),
            ["lanes.0.settings: ", "SEND_RETRY_BACKOFF_S", "'soon'"],
            id="bad-duration",
        ),
        pytest.param(
            edited(SOLO, SOLO + 'because = ["late"]\n'),
            ["lanes.0: lane solo: `because` lists reasons for a failure, but `expect` is 'pass'"],
            id="because-without-failure",
        ),
        pytest.param(
            edited(SOLO, SOLO + 'expect = "fail"\nor_because = ["late"]\n'),
            ["lanes.0: lane solo: `or_because` names a second outcome's reasons; set `because`"],
            id="or-because-alone",
        ),
        pytest.param(
            edited(SOLO, SOLO + 'expect = "fail"\nbecause = ["late"]\nor_because = ["late"]\n'),
            ["lanes.0: lane solo: `or_because` repeats `because`"],
            id="or-because-repeats",
        ),
        pytest.param(
            edited(SOLO, SOLO + 'expect = "fail"\nbecause = ["slow"]\n'),
            [
                "lanes.0.because.0: ",
                "'missing', 'duplicated', 'unexpected', 'out-of-order', 'late' or 'early'",
                "(got 'slow')",
            ],
            id="unknown-reason",
        ),
        pytest.param(
            edited('name = "threads"', 'name = "solo"'),
            ["lane names must be unique, repeated: ['solo']"],
            id="duplicate-lanes",
        ),
        pytest.param(
            VALID + '\n[[faults]]\nat_s = 3.0\naction = "kill-worker"\nlane = "gevent"\n',
            ["faults.0.lane: 'gevent' is not a lane; lanes: ['solo', 'threads']"],
            id="fault-on-unknown-lane",
        ),
        pytest.param(
            VALID + '\n[[faults]]\nat_s = 3.0\naction = "kill-worker"\ngrace_s = 5\n',
            [
                "faults.0: ",
                "grace_s applies to stop-worker and restart-worker only, not to kill-worker",
            ],
            id="grace-on-a-kill",
        ),
        pytest.param(
            VALID + '\n[[faults]]\nat_s = 3.0\naction = "reboot-host"\n',
            [
                "faults.0.action: ",
                "'kill-worker', 'stop-worker', 'start-worker', 'restart-worker'",
                "'stop-broker'",
            ],
            id="unknown-fault",
        ),
        pytest.param(
            VALID + '\n[[faults]]\nat_s = 3.0\naction = "restart-broker"\nlane = "solo"\n',
            ["faults.0: ", "restart-broker strikes the whole stack (the broker", "remove lane"],
            id="broker-fault-on-a-lane",
        ),
        pytest.param(
            VALID + '\n[[faults]]\nat_s = 3.0\naction = "api-outage"\n',
            ["faults.0: ", "api-outage is a window: give duration_s"],
            id="window-without-duration",
        ),
        pytest.param(
            VALID + '\n[[faults]]\nat_s = 3.0\naction = "api-latency"\nduration_s = 2\n',
            ["faults.0: ", "api-latency needs latency"],
            id="latency-without-model",
        ),
        pytest.param(
            VALID + '\n[[faults]]\nat_s = 3.0\naction = "freeze-worker"\nduration_s = 2\n',
            ["faults.0: ", "duration_s applies to api-outage and api-latency", "not to freeze"],
            id="duration-on-a-freeze",
        ),
        pytest.param(
            VALID + '\n[[faults]]\nat_s = 3.0\naction = "net-half-open"\n',
            ["faults.0: ", 'net-half-open needs target = "broker" or "api"'],
            id="half-open-without-target",
        ),
        pytest.param(
            VALID
            + '\n[[faults]]\nat_s = 3.0\naction = "net-half-open"\ntarget = "broker"\n'
            + "duration_s = 5\n",
            ["faults.0: ", "duration_s applies to", "not to net-half-open"],
            id="half-open-is-no-window",
        ),
        pytest.param(
            edited("on_time_s = 2.0", "early_s = 0.1"),
            ["tolerances.on_time_s: Field required"],
            id="no-on-time",
        ),
        pytest.param(
            edited("on_time_s = 2.0", "on_time_s = 2.0\nmissing_after_s = 1.0"),
            ["tolerances: missing_after_s (1.0) must be at least on_time_s (2.0)"],
            id="missing-before-late",
        ),
        pytest.param(
            edited('model = "fixed", value_s = 0.3', 'model = "gaussian", value_s = 0.3'),
            ["api.latency.default: ", "'gaussian'"],
            id="unknown-latency-model",
        ),
        pytest.param(
            edited("value_s = 0.3", "value_s = -1"),
            ["api.latency.default.fixed.value_s: ", "greater than or equal to 0", "(got -1)"],
            id="negative-latency",
        ),
        pytest.param(
            edited('name = "valid"', 'name = "Valid Scenario"'),
            ["name: ", "(got 'Valid Scenario')"],
            id="bad-name",
        ),
    ],
)
def test_invalid_file_names_the_file_the_field_and_the_value(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ScenarioError) as raised:
        load_scenario(str(path))

    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    for fragment in expected:
        assert fragment in message
    assert message.count("(got ") <= 1, "one value per problem, not the whole table"


def test_the_valid_base_is_valid() -> None:
    """The cases above each break one thing in a file that otherwise loads."""
    scenario = parse_scenario(VALID, "valid.toml")

    assert [lane.name for lane in scenario.lanes] == ["solo", "threads"]
    stack_spec(scenario.scaled(0.25))


def test_unknown_name_lists_the_shipped_scenarios() -> None:
    with pytest.raises(ScenarioError) as raised:
        load_scenario("incidnet")

    message = str(raised.value)
    assert "no scenario named 'incidnet'" in message
    assert all(name in message for name in shipped_names())


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ScenarioError, match=re.escape(f"{path}: no such scenario file")):
        load_scenario(str(path))


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe name")

    with pytest.raises(ScenarioError, match=re.escape(f"{path}: cannot read the scenario")):
        load_scenario(str(path))


# -- choosing lanes ------------------------------------------------------------------------------


def test_only_keeps_lanes_by_name_or_pool_in_file_order() -> None:
    scenario, _ = load_scenario("settings-solo")

    assert [lane.name for lane in scenario.only(["gevent"]).lanes] == ["gevent", "gevent-argv"]
    assert [lane.name for lane in scenario.only(["gevent-argv", "solo"]).lanes] == [
        "solo",
        "gevent-argv",
    ]
    assert scenario.only(["solo"]).flow == scenario.flow


def test_only_drops_the_faults_of_dropped_lanes() -> None:
    scenario = scaling_scenario()

    assert scenario.only(["solo"]).faults == []
    assert scenario.only(["prefork"]).faults == scenario.faults


FAULTS = """
[[faults]]
at_s = 4.0
action = "start-worker"

[[faults]]
at_s = 1.0
action = "stop-worker"
lane = "solo"

[[faults]]
at_s = 4.0
action = "stop-worker"
"""


def test_a_fault_without_a_lane_strikes_every_lane_in_time_order() -> None:
    scenario = parse_scenario(VALID + FAULTS, "faults.toml")

    assert [(f.at_s, f.action) for f in scenario.faults_of("solo")] == [
        (1.0, "stop-worker"),
        (4.0, "start-worker"),  # at equal times, the file's order: start, then stop
        (4.0, "stop-worker"),
    ]
    assert [f.action for f in scenario.faults_of("threads")] == ["start-worker", "stop-worker"]
    assert scenario.only(["threads"]).faults_of("threads") == scenario.faults_of("threads")


def test_a_stop_gets_dockers_grace_at_any_time_scale() -> None:
    """Fault times scale; a stop's grace does not: a warm shutdown takes as long scaled."""
    scenario = parse_scenario(VALID + FAULTS + "grace_s = 30\n", "faults.toml")

    scaled = scenario.scaled(0.5)

    assert [(f.at_s, f.grace) for f in scaled.faults] == [(2.0, 10.0), (0.5, 10.0), (2.0, 30.0)]


def test_only_refuses_unknown_names() -> None:
    scenario, _ = load_scenario("incident")

    with pytest.raises(ScenarioError) as raised:
        scenario.only(["solo", "greenlet"])

    message = str(raised.value)
    assert "no lane or pool ['greenlet']" in message
    assert "lanes: solo, prefork, threads, gevent" in message


def test_the_docs_example_is_a_valid_scenario() -> None:
    """Users copy the annotated example: it must load, and scale as the docs run it."""
    page = (ROOT / "docs" / "how-to" / "write-a-scenario.md").read_text()
    example = re.search(r"```toml\n(name = .*?)```", page, re.DOTALL)
    assert example, "docs/how-to/write-a-scenario.md has no annotated scenario"

    scenario = parse_scenario(example.group(1), "write-a-scenario.md")

    assert scenario.lanes[0].because == ["late"]
    assert scenario.scaled(0.25).flow.spacing_s == scenario.flow.spacing_s * 0.25


def test_a_fault_window_scales_with_the_behaviours_it_switches_on() -> None:
    """Times, windows and the mock's seconds scale; a rate is divided; a stop's grace never."""
    faults = """
[[faults]]
at_s = 2.0
action = "api-latency"
duration_s = 4.0
latency = { model = "fixed", value_s = 3.0 }

[[faults]]
at_s = 2.0
action = "api-rate-limit"
duration_s = 4.0
throughput = { messages_per_second = 1.0 }
pair_rate = { period_s = 6.0, burst = 2 }

[[faults]]
at_s = 3.0
action = "stop-worker"
lane = "solo"
grace_s = 10.0
"""
    scenario = parse_scenario(VALID + faults, "faults.toml").scaled(0.5)

    latency, rate, stop = scenario.faults
    assert (latency.at_s, latency.duration_s) == (1.0, 2.0)
    assert latency.model_dump()["latency"]["value_s"] == 1.5
    assert rate.model_dump()["throughput"]["messages_per_second"] == 2.0
    assert rate.model_dump()["pair_rate"] | {"enabled": True} == {
        "enabled": True,
        "period_s": 3.0,
        "burst": 2,
        "http_status": 400,
    }
    assert (stop.at_s, stop.grace_s) == (1.5, 10.0)
    assert [f.action for f in scenario.stack_faults] == ["api-latency", "api-rate-limit"]
    assert [f.action for f in scenario.faults_of("solo")] == ["stop-worker"]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ('action = "kill-worker"', "exactly one of at_s, after_received, after_sent (got none)"),
        (
            'at_s = 1\nafter_received = 3\naction = "kill-worker"',
            "exactly one of at_s, after_received, after_sent (got at_s and after_received)",
        ),
        ('after_received = 0\naction = "kill-worker"', "after_received: Input should be greater"),
        ('after_sent = 3\naction = "restart-broker"', "restart-broker strikes the whole stack"),
    ],
)
def test_a_fault_is_timed_by_exactly_one_trigger(tmp_path: Path, fault: str, expected: str) -> None:
    path = tmp_path / "triggers.toml"
    path.write_text(VALID + f"\n[[faults]]\n{fault}\n", encoding="utf-8")

    with pytest.raises(ScenarioError) as raised:
        load_scenario(str(path))

    assert expected in str(raised.value)


def test_a_triggered_fault_is_not_scaled_and_sorts_first() -> None:
    faults = '\n[[faults]]\nat_s = 4\naction = "start-worker"\n'
    faults += '\n[[faults]]\nafter_received = 22\naction = "kill-worker"\n'
    scenario = parse_scenario(VALID + faults, "triggers.toml").scaled(0.5)

    kill, start = scenario.faults_of("solo")
    assert (kill.action, kill.after_received, kill.at_s) == ("kill-worker", 22, None)
    assert (start.action, start.at_s) == ("start-worker", 2.0)


def test_broker_faults_are_refused_where_they_would_not_strike() -> None:
    """They restart the brokers the harness starts (the embedded Valkey, its own RabbitMQ
    node): not an external broker, nor a RabbitMQ at a URL."""
    from harness.run import check_broker

    fault = '\n[[faults]]\nat_s = 1\naction = "restart-broker"\n'
    scenario = parse_scenario(VALID + fault, "broker.toml")
    check_broker(scenario, None)
    with pytest.raises(ScenarioError, match="run it without --broker-url"):
        check_broker(scenario, "redis://127.0.0.1:6379/0")
    rabbit = VALID.replace('pool = "solo"', 'pool = "solo"\nbroker = "rabbitmq"', 1)
    check_broker(parse_scenario(rabbit + fault, "broker.toml"), None)  # its own node
    at_url = rabbit.replace(
        'broker = "rabbitmq"', 'broker = "rabbitmq"\nbroker_url = "amqp://127.0.0.1:5672//"', 1
    )
    with pytest.raises(ScenarioError, match=r"lanes \['solo'\] run on a broker at a URL"):
        check_broker(parse_scenario(at_url + fault, "broker.toml"), None)


def test_kill_pool_process_is_refused_where_no_pool_process_runs() -> None:
    """Only prefork workers have pool processes: a fault on a solo or threads lane, or on
    every lane when one of them is not prefork, is refused with the lanes named."""
    prefork = VALID.replace(
        'name = "threads"\npool = "threads"', 'name = "prefork"\npool = "prefork"'
    )
    fault = '\n[[faults]]\nat_s = 1\naction = "kill-pool-process"\nlane = "prefork"\n'
    scenario = parse_scenario(prefork + fault, "pool.toml")
    assert [f.action for f in scenario.faults_of("prefork")] == ["kill-pool-process"]
    with pytest.raises(ScenarioError, match=r"lane 'solo'; solo \(solo\) has none"):
        parse_scenario(prefork + fault.replace('"prefork"', '"solo"'), "pool.toml")
    every = fault.replace('lane = "prefork"\n', "")
    with pytest.raises(ScenarioError, match=r"strikes every lane; solo \(solo\) has none"):
        parse_scenario(prefork + every, "pool.toml")


def test_kill_pool_process_is_refused_on_the_compose_backend() -> None:
    """It finds the pool processes among the host's processes: not inside a container."""
    from harness.nemesis import check_backend

    prefork = VALID.replace('pool = "solo"', 'pool = "prefork"').replace(
        'pool = "threads"', 'pool = "prefork"'
    )
    fault = '\n[[faults]]\nat_s = 1\naction = "kill-pool-process"\n'
    scenario = parse_scenario(prefork + fault, "pool.toml")
    check_backend(scenario, "local")
    with pytest.raises(ScenarioError, match="pool processes only, not on"):
        check_backend(scenario, "compose")
    check_backend(parse_scenario(prefork, "pool.toml"), "compose")  # no such fault: fine


def test_network_faults_are_accepted_on_the_compose_backend_and_kill_pool_process_is_not() -> None:
    """The compose project gets a proxy service for the network faults; a pool process is
    still found among the host's processes only."""
    from harness.nemesis import check_backend

    net = (
        '\n[[faults]]\nat_s = 1\naction = "net-reset"\ntarget = "broker"\nduration_s = 1\n'
        '\n[[faults]]\nat_s = 2\naction = "net-delay"\ntarget = "api"\nduration_s = 1'
        "\ndelay_s = 0.5\n"
        '\n[[faults]]\nat_s = 3\naction = "net-blackhole"\ntarget = "api"\nduration_s = 1\n'
        '\n[[faults]]\nat_s = 4\naction = "net-half-open"\ntarget = "broker"\n'
    )
    scenario = parse_scenario(VALID + net, "net.toml")
    assert {f.action for f in scenario.faults} == {
        "net-reset",
        "net-delay",
        "net-blackhole",
        "net-half-open",
    }
    check_backend(scenario, "local")
    check_backend(scenario, "compose")
    prefork = (VALID + net).replace('pool = "solo"', 'pool = "prefork"')
    prefork = prefork.replace('pool = "threads"', 'pool = "prefork"')
    pool_fault = '\n[[faults]]\nat_s = 5\naction = "kill-pool-process"\n'
    with pytest.raises(ScenarioError, match=r"kill-pool-process \(every lane\) acts on the local"):
        check_backend(parse_scenario(prefork + pool_fault, "net.toml"), "compose")


@pytest.mark.parametrize("action", ["stop-broker", "restart-broker"])
def test_broker_faults_run_on_either_backend(action: str) -> None:
    """The compose stack stops and starts its broker container as the local its process."""
    from harness.nemesis import check_backend

    window = "\nduration_s = 1" if action == "stop-broker" else ""
    fault = f'\n[[faults]]\nat_s = 1\naction = "{action}"{window}\n'
    scenario = parse_scenario(VALID + fault, "broker.toml")
    check_backend(scenario, "local")
    check_backend(scenario, "compose")


def test_kill_pool_process_is_refused_on_an_external_lane() -> None:
    """An external lane's command may wrap its worker: its children need not be the pool."""
    prefork = VALID.replace('pool = "solo"', 'pool = "prefork"').replace(
        'pool = "threads"', 'pool = "prefork"'
    )
    lanes = validate_scenario(tomllib.loads(prefork), "pool.toml").lanes
    external = {"worker": "uv run celery -A bot worker", "url": "http://127.0.0.1:8000/"}
    data = tomllib.loads(prefork)
    data["lanes"][0]["external"] = external
    data["faults"] = [{"at_s": 1, "action": "kill-pool-process", "lane": lanes[0].name}]
    with pytest.raises(ScenarioError, match="runs a bot of its own"):
        validate_scenario(data, "pool.toml")
