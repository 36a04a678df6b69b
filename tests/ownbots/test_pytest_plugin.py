"""The pytest plugin as a team's suite meets it: a separate test file, run by pytester.

One scenario built in Python runs once for both tests of the inner session: a solo
worker behind an API that takes 1.5 s to answer, with parts due every 0.5 s, so every
part after the first reaches the API late. The test that expects that passes; the one
that asks for punctual parts fails, naming the parts, and keeps its run directory.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.ownbots, pytest.mark.timeout(240)]

INNER = """
import pytest

from harness.expect import assert_as_expected, assert_on_time
from harness.scenario import Scenario

SLOW_API = Scenario.model_validate(
    {
        "name": "slow-solo",
        "description": "A solo worker behind an API slower than the parts' spacing.",
        "flow": {"messages": 4, "spacing_s": 0.5},
        "api": {"latency": {"default": {"model": "fixed", "value_s": 1.5}}},
        "tolerances": {"on_time_s": 0.5, "missing_after_s": 10.0},
        "lanes": [{"name": "solo", "pool": "solo", "expect": "fail", "because": ["late"]}],
    }
)


@pytest.mark.stagger(scenario=SLOW_API)
def test_late_as_the_scenario_expects(stagger_outcome):
    assert_as_expected(stagger_outcome)


@pytest.mark.stagger(scenario=SLOW_API)
def test_every_part_on_time(stagger_outcome):
    assert_on_time(stagger_outcome, "solo")
"""


def _properties(junit: Path, test: str) -> dict[str, str]:
    case = next(c for c in ET.parse(junit).iter("testcase") if c.get("name") == test)
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def test_the_plugin_passes_fails_with_the_part_and_keeps_the_failed_run(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_my_bot=INNER)
    junit = tmp_path / "junit.xml"
    runs = tmp_path / "runs"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        f"--stagger-runs-dir={runs}",
        timeout=200,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: lane solo: part 1 reached the API * s after its due time"
            " (allowed 0.5 s)*part 3 reached the API*",
            "*run directory kept: *",
        ]
    )
    # One run for both tests (session-cached), kept because a test that used it failed.
    kept = sorted(runs.iterdir())
    assert [d.name for d in kept] == ["slow-solo-0"]
    properties = _properties(junit, "test_every_part_on_time")
    assert properties["stagger_run_dir"] == str(kept[0])
    assert Path(properties["stagger_results"]).is_file()
    assert Path(properties["stagger_report_html"]).is_file()
    assert _properties(junit, "test_late_as_the_scenario_expects") == {}
    result.stdout.fnmatch_lines(["*stagger runs*", f"{kept[0]} (failed: *test_every_part_on_time)"])
