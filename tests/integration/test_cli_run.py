"""`harness run`, `check` and `scenarios`, run as users run them: subprocesses from the shell.

Every run brings up a real stack (embedded Valkey, mock Cloud API, bot and worker
processes), so the scenarios here are small or time-scaled; each run directory is
cleaned up by PID after the test, however it ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from harness.resources import on_disk
from harness.results import HISTORY, RESULTS, LaneResult, Results, judge, lane_result, recheck
from harness.scenario import load_scenario, parse_scenario, shipped_names
from harness.waiting import wait_for

from .test_stack_lifecycle import STOP_DEADLINE_S, survivors

pytestmark = [pytest.mark.integration, pytest.mark.lifecycle]

HARNESS = [sys.executable, "-m", "harness"]
ENV = {**os.environ, "COLUMNS": "200"}  # wide enough that no table row wraps
SHIPPED = ("incident", "jittery-api", "settings-solo", "slow-api")
# The figures every lane of results.json carries (the contract machines read).
LANE_FIELDS = {
    "pool",
    "concurrency",
    "expected_messages",
    "delivered",
    "missing",
    "duplicated",
    "order_inversions",
    "lateness_p50_s",
    "lateness_p95_s",
    "lateness_max_s",
    "verdict",
    "expected_verdict",
    "reasons",
}
RUN_TIMEOUT_S = 120  # stack start (~8 s, longer on a loaded machine) + schedule + stop

# gevent chosen only by CELERY_WORKER_POOL: Celery never monkey-patches, so the worker
# receives every part and starts none. Timing plays no part in this verdict.
SETTINGS_GEVENT = """
name = "settings-gevent"
description = "gevent chosen only by CELERY_WORKER_POOL: parts are received, never started."

[flow]
messages = 5
spacing_s = 0.5

[tolerances]
on_time_s = 0.5
missing_after_s = 1.0

[[lanes]]
name = "gevent-settings"
pool = "gevent"
pool_set_by = "settings"
concurrency = 20
{expectation}
"""
EXPECT_MISSING = 'expect = "fail"\nbecause = ["missing"]'

# Long enough (40 parts, 0.5 s apart: 19.5 s) to be interrupted after its first part;
# prefork, so the worker has pool processes of its own that must not survive either.
LONG_PREFORK = """
name = "long-prefork"
description = "40 parts 0.5 s apart on prefork, to be interrupted."

[flow]
messages = 40
spacing_s = 0.5

[tolerances]
on_time_s = 0.5
missing_after_s = 5.0

[[lanes]]
name = "prefork"
pool = "prefork"
concurrency = 2
"""

INVALID_FIELD = """
name = "invalid"
description = "flow.spacing_s must be above 0."

[flow]
messages = 5
spacing_s = -2

[tolerances]
on_time_s = 0.5

[[lanes]]
name = "solo"
pool = "solo"
"""


def harness(*argv: str, timeout_s: float = STOP_DEADLINE_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HARNESS, *argv], capture_output=True, text=True, timeout=timeout_s, check=False, env=ENV
    )


def start_harness(*argv: str) -> subprocess.Popen[str]:
    """The harness in a session of its own: a signal sent to it reaches it alone."""
    return subprocess.Popen(
        [*HARNESS, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str], timeout_s: float = RUN_TIMEOUT_S) -> str:
    """Its whole output once it exits; killed (with its group) if it does not in time."""
    try:
        output, _ = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return output


def flat(text: str) -> str:
    """Whitespace collapsed, so a message wrapped by Rich still matches."""
    return " ".join(text.split())


def listed_pids(run_dir: Path) -> dict[str, int]:
    listing = run_dir / "processes.json"
    return json.loads(listing.read_text()) if listing.exists() else {}


def with_children(pids: set[int]) -> set[int]:
    """`pids` and every live process they forked (a prefork worker's pool processes)."""
    found = set(pids)
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            found.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    return found


def kill_listed(run_dir: Path) -> None:
    """What `harness_run_dir` does after a test, for run directories it does not know."""
    for pid in listed_pids(run_dir).values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def extra_run_dirs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """More run directories for one test; whatever their stacks left is killed afterwards."""
    made: list[Path] = []

    def make(name: str) -> Path:
        made.append(tmp_path / name)
        return made[-1]

    yield make
    for run_dir in made:
        kill_listed(run_dir)


def table_rows(output: str, lanes: set[str]) -> dict[str, str]:
    """The comparison table's rows (they start with the lane's name), by lane."""
    rows = {}
    for line in output.splitlines():
        words = line.split()
        if words and words[0] in lanes:
            rows[words[0]] = line
    return rows


def lane(results: Results, name: str) -> LaneResult:
    return next(found for found in results.lanes if found.lane == name)


# -- a shipped scenario, time-scaled, then judged again -------------------------------------------


@pytest.mark.timeout(RUN_TIMEOUT_S + STOP_DEADLINE_S)
def test_a_time_scaled_shipped_scenario_runs_and_is_judged_again(harness_run_dir: Path) -> None:
    run_dir = harness_run_dir
    argv = ["run", "incident", "--time-scale", "0.25", "--pool", "solo", "--pool", "gevent"]
    done = harness(*argv, "--out", str(run_dir), timeout_s=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr

    raw = json.loads((run_dir / RESULTS).read_text())
    results = Results.model_validate(raw)
    assert results.complete
    assert results.as_expected
    assert results.time_scale == 0.25
    assert results.scenario_definition["flow"]["spacing_s"] == 0.5, "durations stored scaled"
    assert {"python", "celery", "kombu", "gevent", "broker"} <= set(results.versions)
    assert results.versions["broker"].startswith("valkey "), results.versions
    assert [found.lane for found in results.lanes] == ["solo", "gevent"]
    for stored in raw["lanes"]:
        assert set(stored) >= LANE_FIELDS, f"{stored['lane']}: {LANE_FIELDS - set(stored)}"
        assert stored["delivered"] == stored["expected_messages"] == 22, stored
        assert (stored["missing"], stored["duplicated"], stored["order_inversions"]) == (0, 0, 0)
        assert stored["verdict"] == stored["expected_verdict"] == "pass", stored["reasons"]
        assert stored["reasons"] == []
        assert stored["lateness_max_s"] is not None
        assert stored["lateness_max_s"] <= 0.5, "on time at scale 0.25 means within 0.5 s"
    assert (lane(results, "solo").concurrency, lane(results, "gevent").concurrency) == (1, 20)

    assert len((run_dir / HISTORY).read_text().splitlines()) == 44
    shipped = (on_disk("scenarios") / "incident.toml").read_text(encoding="utf-8")
    assert (run_dir / "scenario.toml").read_text(encoding="utf-8") == shipped
    assert "incident (time scale 0.25)" in done.stdout
    rows = table_rows(done.stdout, {"solo", "gevent"})
    assert set(rows) == {"solo", "gevent"}, done.stdout
    assert all("22/22" in row and "pass" in row for row in rows.values()), done.stdout
    assert f"results: {run_dir / RESULTS}" in flat(done.stdout)

    checked = harness("check", str(run_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "verdict changed" not in checked.stdout
    rows = table_rows(checked.stdout, {"solo", "gevent"})
    assert set(rows) == {"solo", "gevent"}, checked.stdout
    assert all("22/22" in row and "pass" in row for row in rows.values()), checked.stdout
    stored, again = recheck(run_dir)
    figures = ("verdict", "reason_codes", "delivered", "missing", "duplicated", "order_inversions")
    assert [[getattr(x, f) for f in figures] for x in again.lanes] == [
        [getattr(x, f) for f in figures] for x in stored.lanes
    ]


# -- an expected failure, and the same failure unexpected -----------------------------------------


@pytest.mark.timeout(RUN_TIMEOUT_S + STOP_DEADLINE_S)
def test_a_lane_that_must_fail_fails_and_one_that_must_pass_exits_1(
    tmp_path: Path, extra_run_dirs: Callable[[str], Path]
) -> None:
    """Both runs at once (the verdict does not depend on timing): one schedule, not two."""
    runs = {}
    for expectation in ("fail", "pass"):
        scenario = tmp_path / f"expect-{expectation}.toml"
        text = EXPECT_MISSING if expectation == "fail" else 'expect = "pass"'
        scenario.write_text(SETTINGS_GEVENT.format(expectation=text))
        run_dir = extra_run_dirs(f"run-expect-{expectation}")
        runs[expectation] = (run_dir, start_harness("run", str(scenario), "--out", str(run_dir)))
    outputs = {expectation: finish(process) for expectation, (_, process) in runs.items()}
    codes = {expectation: process.returncode for expectation, (_, process) in runs.items()}

    failing_dir = runs["fail"][0]
    assert codes["fail"] == 0, outputs["fail"]
    failed = lane(
        Results.model_validate_json((failing_dir / RESULTS).read_text()), "gevent-settings"
    )
    assert (failed.verdict, failed.expected_verdict, failed.as_expected) == ("fail", "fail", True)
    assert failed.pool_set_by == "settings"
    assert "missing" in failed.reason_codes
    assert (failed.delivered, failed.missing) == (0, 5)
    assert any("5 of 5 parts never reached the API (part 0, part 1" in r for r in failed.reasons)
    assert "gevent-settings: 5 of 5 parts never reached the API" in flat(outputs["fail"])
    assert "NOT AS EXPECTED" not in outputs["fail"]

    passing_dir = runs["pass"][0]
    assert codes["pass"] == 1, outputs["pass"]
    results = Results.model_validate_json((passing_dir / RESULTS).read_text())
    assert results.complete
    assert not results.as_expected
    unexpected = lane(results, "gevent-settings")
    assert (unexpected.verdict, unexpected.expected_verdict) == ("fail", "pass")
    assert unexpected.mismatch == "expected pass, got fail (missing)"
    assert "gevent-settings: NOT AS EXPECTED: expected pass, got fail (missing)" in flat(
        outputs["pass"]
    )

    for run_dir in (failing_dir, passing_dir):
        assert survivors(set(listed_pids(run_dir).values())) == []


# -- Ctrl-C and SIGTERM ---------------------------------------------------------------------------


@pytest.mark.timeout(RUN_TIMEOUT_S + STOP_DEADLINE_S)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_a_run_writes_partial_results_and_stops_everything(
    tmp_path: Path, harness_run_dir: Path, signum: int
) -> None:
    run_dir = harness_run_dir
    scenario = tmp_path / "long-prefork.toml"
    scenario.write_text(LONG_PREFORK)
    runner = start_harness("run", str(scenario), "--out", str(run_dir))
    try:
        names = {"broker", "mock", "bot-prefork", "worker-prefork"}
        wait_for(
            lambda: set(listed_pids(run_dir)),
            lambda listed: names <= listed or runner.poll() is not None,
            timeout_s=STOP_DEADLINE_S,
            interval_s=0.1,
            what="every process of the stack listed in processes.json",
        )
        worker_log = run_dir / "worker-prefork.log"
        # TASK SENT is logged once the mock accepted a part: the run is under way.
        wait_for(
            lambda: worker_log.read_text() if worker_log.exists() else "",
            lambda text: "TASK SENT" in text or runner.poll() is not None,
            timeout_s=STOP_DEADLINE_S,
            interval_s=0.1,
            what="the first part delivered",
        )
        assert runner.poll() is None, "the run ended before it could be interrupted"
        pids = with_children(set(listed_pids(run_dir).values()))
        assert len(pids) >= len(names) + 2, "the prefork worker's two pool processes are counted"
        runner.send_signal(signum)
    finally:
        output = finish(runner, timeout_s=STOP_DEADLINE_S)

    assert runner.returncode == 130, output
    assert "interrupted: every process was stopped" in output
    assert "INTERRUPTED: partial figures" in output
    assert f"partial results: {run_dir / RESULTS}" in flat(output)
    assert "Traceback" not in output
    results = Results.model_validate_json((run_dir / RESULTS).read_text())
    assert not results.complete
    assert not results.as_expected
    assert results.verdict_at is None
    interrupted = lane(results, "prefork")
    assert 1 <= interrupted.delivered < 40, "interrupted after the first part, well before the end"
    history = (run_dir / HISTORY).read_text().splitlines()
    assert len(history) >= interrupted.delivered
    assert survivors(pids) == []


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "messages"),
    [
        pytest.param(
            ["run", "nope"],
            [
                f"no scenario named 'nope'; shipped: {', '.join(shipped_names())} "
                "(or give a path to a .toml file)"
            ],
            id="unknown-scenario",
        ),
        pytest.param(
            ["run", "{invalid}"],
            ["{invalid}: 1 invalid setting(s)", "flow.spacing_s:", "greater than 0 (got -2)"],
            id="invalid-field",
        ),
        pytest.param(
            ["run", "{tmp}/absent.toml"],
            ["{tmp}/absent.toml: no such scenario file"],
            id="absent-file",
        ),
        pytest.param(
            ["run", "incident", "--time-scale", "0.01"],
            [
                "time scale 0.01 makes flow.spacing_s 2 s into 0.02 s, below the 0.1 s",
                "tolerances.on_time_s 2 s into 0.02 s, below the 0.5 s",
                "use a time scale of at least 0.25",
            ],
            id="below-the-floor",
        ),
        pytest.param(
            ["matrix", "incident", "--time-scale", "0.1"],
            ["tolerances.on_time_s 2 s into 0.2 s, below the 0.5 s", "at least 0.25"],
            id="matrix-below-the-floor",
        ),
        pytest.param(
            ["run", "incident", "--pool", "greenlet"],
            ["has no lane or pool ['greenlet']; lanes: solo, prefork, threads, gevent"],
            id="unknown-pool",
        ),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    tmp_path: Path, argv: list[str], messages: list[str]
) -> None:
    invalid = tmp_path / "invalid.toml"
    invalid.write_text(INVALID_FIELD)
    fill = {"invalid": str(invalid), "tmp": str(tmp_path)}
    run_dir = tmp_path / "run"
    done = harness(*(arg.format(**fill) for arg in argv), "--out", str(run_dir))
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    for message in messages:
        assert message.format(**fill) in flat(output)
    assert "Traceback" not in output
    assert len(output.splitlines()) <= 10, "one screen, not a dump"
    assert not run_dir.exists(), "nothing started, no run directory"


def test_an_out_directory_holding_a_run_is_refused_untouched(tmp_path: Path) -> None:
    run_dir = tmp_path / "earlier"
    run_dir.mkdir()
    earlier = '{"an": "earlier run"}\n'
    (run_dir / RESULTS).write_text(earlier)
    done = harness("run", "incident", "--pool", "solo", "--out", str(run_dir))
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"{run_dir} already holds a run" in flat(output)
    assert "Traceback" not in output
    assert (run_dir / RESULTS).read_text() == earlier
    assert [path.name for path in run_dir.iterdir()] == [RESULTS]


TIGHT_SPACING = """
name = "tight-spacing"
description = "0.3 s spacing: 0.1 / 0.3 is not a float that scales 0.3 back to 0.1."

[flow]
messages = 5
spacing_s = 0.3

[tolerances]
on_time_s = 5.0

[[lanes]]
name = "solo"
pool = "solo"
"""


@pytest.mark.parametrize(
    ("scenario", "scale"),
    [("incident", "0.01"), ("{tight}", "0.1")],
    ids=["incident-both-floors", "rounding"],
)
def test_the_least_time_scale_suggested_is_accepted(
    tmp_path: Path, scenario: str, scale: str
) -> None:
    """Below a floor, the scale the message suggests lifts every bound, rounded up."""
    tight = tmp_path / "tight.toml"
    tight.write_text(TIGHT_SPACING)
    name = scenario.format(tight=tight)
    refused = harness("run", name, "--time-scale", scale, "--out", str(tmp_path / "run"))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    suggested = flat(refused.stdout).split("use a time scale of at least ")[1].split()[0]
    load_scenario(name)[0].scaled(float(suggested))  # raises ScenarioError if refused
    assert not (tmp_path / "run").exists()


# -- listing --------------------------------------------------------------------------------------


def test_scenarios_lists_every_shipped_scenario() -> None:
    done = harness("scenarios")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = table_rows(done.stdout.replace("│", " "), set(SHIPPED))
    assert set(listed) == set(SHIPPED), done.stdout
    assert "solo, prefork, threads, gevent" in listed["incident"]
    assert "22 x 2 s" in listed["incident"]


# -- known harness bugs (strict: once fixed, these pass and the marker must go) -------------------


def test_a_bad_value_that_looks_like_markup_is_named(tmp_path: Path) -> None:
    scenario = tmp_path / "markup.toml"
    scenario.write_text(
        INVALID_FIELD.replace("spacing_s = -2", "spacing_s = 0.5").replace(
            'pool = "solo"', 'pool = "[/x]"'
        )
    )
    done = harness("run", str(scenario), "--out", str(tmp_path / "run"))
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert done.returncode == 2, output
    assert "(got '[/x]')" in flat(output)


def test_check_does_not_pass_an_interrupted_run(tmp_path: Path) -> None:
    scenario = parse_scenario(SETTINGS_GEVENT.format(expectation=EXPECT_MISSING), "inline")
    # Interrupted during start-up: nothing was queued, so every part counts as missing.
    verdicts = judge(scenario, {})
    results = Results(
        scenario=scenario.name,
        description=scenario.description,
        time_scale=scenario.time_scale,
        complete=False,
        as_expected=False,
        started_at=0.0,
        finished_at=1.0,
        stack_start_s=None,
        trigger_at=None,
        versions={},
        lanes=[lane_result(verdict, scenario, None) for verdict in verdicts.values()],
        scenario_definition=scenario.model_dump(mode="json"),
    )
    (tmp_path / RESULTS).write_text(results.model_dump_json())
    (tmp_path / HISTORY).write_text("")
    done = harness("check", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
