"""The pytest plugin's light side: its assertions' sentences and the CI recipe's options."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from harness.expect import assert_as_expected, assert_delivered, assert_on_time, part_sentences
from harness.history import MessageHistory
from harness.scenario import Scenario

pytestmark = pytest.mark.unit

RECIPE = Path(__file__).resolve().parents[2] / "examples" / "github-actions.yml"
SCENARIO = Scenario.model_validate(
    {
        "name": "four",
        "description": "four parts",
        "flow": {"messages": 4, "spacing_s": 1.0},
        "tolerances": {"on_time_s": 0.5, "missing_after_s": 5.0},
        "lanes": [{"name": "solo", "pool": "solo"}],
    }
)


def _part(seq: int, late_s: float | None, accepted: int = 1) -> MessageHistory:
    return MessageHistory(
        lane="solo",
        message_id=f"c1-{seq}",
        correlation_id="c1",
        seq=seq,
        queued_at=100.0,
        countdown_s=float(seq),
        received=100.0,
        api_received_at=None if late_s is None else 100.0 + seq + late_s,
        accepted=accepted,
    )


def _outcome(history: list[MessageHistory], verdict: str = "fail") -> SimpleNamespace:
    lane = SimpleNamespace(
        lane="solo",
        verdict=verdict,
        as_expected=verdict == "pass",
        mismatch=None if verdict == "pass" else "expected pass, got fail (late)",
        reasons=["1 part reached the API more than 0.5 s after its due time"],
        reason_codes=["late"],
    )
    return SimpleNamespace(
        scenario=SCENARIO,
        history={"solo": history},
        results=SimpleNamespace(lanes=[lane], complete=True),
        lane=lambda name: lane,
    )


def test_each_part_off_its_schedule_is_named_in_a_sentence() -> None:
    outcome = _outcome([_part(0, 0.1), _part(1, 3.2), _part(2, -0.4), _part(3, None, 0)])
    assert part_sentences(outcome, "solo") == [  # type: ignore[arg-type]
        "part 1 reached the API 3.20 s after its due time (allowed 0.5 s)",
        "part 2 reached the API 0.40 s before its due time (allowed 0.05 s early)",
        "part 3 never reached the API (received by a worker, never started)",
    ]


def test_the_assertions_fail_with_those_sentences_and_pass_on_a_clean_lane() -> None:
    late = _outcome([_part(0, 0.0), _part(5, 3.2)])
    with pytest.raises(AssertionError, match=r"^lane solo: part 5 reached the API 3\.20 s after"):
        assert_on_time(late, "solo")  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="part 5 reached the API"):
        assert_delivered(late, "solo")  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="expected pass, got fail"):
        assert_as_expected(late)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="has no lane 'gevent'; lanes: solo"):
        assert_on_time(late, "gevent")  # type: ignore[arg-type]
    clean = _outcome([_part(n, 0.01) for n in range(4)], verdict="pass")
    assert_on_time(clean, "solo")  # type: ignore[arg-type]
    assert_delivered(clean, "solo")  # type: ignore[arg-type]
    assert_as_expected(clean)  # type: ignore[arg-type]


def test_the_plugin_imports_nothing_heavy() -> None:
    """It loads into every pytest run of the environment: Celery, gevent and matplotlib
    wait until a run is asked for."""
    import subprocess

    code = (
        "import sys, harness.pytest_plugin, harness.expect; "
        "print(sorted(m for m in ('celery', 'gevent', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_ci_recipe_runs_the_pool_suite_with_options_the_plugin_has(
    pytestconfig: pytest.Config,
) -> None:
    workflow = yaml.safe_load(RECIPE.read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    commands = " ".join(step.get("run", "") for step in steps)
    assert "uv run pytest -m pools" in commands
    options = re.findall(r"--stagger-[a-z-]+", commands)
    assert options
    for option in options:
        pytestconfig.getoption(option)  # ValueError for an option no plugin registered
    uploads = [step for step in steps if str(step.get("uses", "")).startswith("actions/upload")]
    assert uploads
    assert uploads[0]["with"]["path"] == "reports/"


POOL_TESTS = """
import pytest

@pytest.mark.parametrize("pool", ["solo", "gevent"])
def test_pool(pool):
    pass

def test_no_marker(stagger_outcome):
    pass
"""


def test_stagger_pools_skips_other_pools_and_a_missing_marker_is_named(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_mine=POOL_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", "--stagger-pools=solo")
    result.assert_outcomes(passed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_no_marker: stagger_outcome needs @pytest.mark.stagger(scenario=...)*",
            "*pool gevent not in --stagger-pools*",
        ]
    )
