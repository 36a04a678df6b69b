"""results.json, the contract for machines, and `harness check`, which judges a stored run again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.history import MessageHistory
from harness.results import (
    HISTORY,
    RESULTS,
    LaneResult,
    Results,
    ResultsError,
    describe_fault,
    judge,
    lane_result,
    read_results,
    recheck,
    write_jsonl,
    write_results,
)
from harness.scenario import load_scenario

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"
SCENARIO = load_scenario("incident")[0].only(["solo"]).scaled(0.25)
CORRELATION = "0123456789abcdef"


def contract_section() -> str:
    text = README.read_text()
    start = text.index("### The run directory and `results.json`")
    return text[start : text.index("\n## ", start)]


@pytest.mark.parametrize("model", [Results, LaneResult])
def test_the_readme_documents_every_field(model: type[Results] | type[LaneResult]) -> None:
    """A field added to results.json without a word in the README is a contract nobody knows."""
    documented = set(re.findall(r"`(\w+)`", contract_section()))
    assert set(model.model_fields) - documented == set()


def clean_history() -> list[MessageHistory]:
    """Every part of one request, each accepted once, on time and in order."""
    spacing = SCENARIO.flow.spacing_s
    start = 1_700_000_000.0
    return [
        MessageHistory(
            lane="solo",
            message_id=f"{CORRELATION}-{seq:03d}",
            correlation_id=CORRELATION,
            seq=seq,
            queued_at=start,
            countdown_s=seq * spacing,
            api_received_at=start + seq * spacing,
            api_responded_at=start + seq * spacing + spacing / 2,
            status="sent",
            accepted=1,
        )
        for seq in range(SCENARIO.flow.messages)
    ]


def stored_run(run_dir: Path, history: list[MessageHistory]) -> Results:
    """A run directory as run_scenario writes it, for this history."""
    verdicts = judge(SCENARIO, {"solo": history})
    lanes = [lane_result(verdict, SCENARIO, 1) for verdict in verdicts.values()]
    results = Results(
        scenario=SCENARIO.name,
        description=SCENARIO.description,
        time_scale=SCENARIO.time_scale,
        complete=True,
        as_expected=all(lane.as_expected for lane in lanes),
        started_at=0.0,
        finished_at=1.0,
        stack_start_s=0.5,
        trigger_at=0.5,
        versions={"python": "3"},
        lanes=lanes,
        scenario_definition=SCENARIO.model_dump(mode="json"),
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(run_dir / HISTORY, history)
    write_results(run_dir, results)
    return results


def test_a_stored_run_is_judged_again_to_the_same_verdict(tmp_path: Path) -> None:
    stored = stored_run(tmp_path, clean_history())

    before, again = recheck(tmp_path / RESULTS)

    assert before == stored
    assert again.lanes == stored.lanes
    assert again.as_expected


def test_check_says_when_the_stored_history_no_longer_gives_the_stored_verdict(
    tmp_path: Path,
) -> None:
    """A history edited after the run (here: a part dropped) is judged on what it now holds."""
    stored_run(tmp_path, clean_history())
    write_jsonl(tmp_path / HISTORY, clean_history()[:-1])

    done = CliRunner().invoke(app, ["check", str(tmp_path)], env={"COLUMNS": "200"})

    assert done.exit_code == 1, done.output
    assert "verdict changed since the run: solo: stored pass, now fail" in done.output
    assert f"part {SCENARIO.flow.messages - 1}" in done.output


def test_check_of_a_directory_without_results_names_the_file(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["check", str(tmp_path)], env={"COLUMNS": "200"})

    assert done.exit_code == 2
    assert f"{tmp_path / RESULTS}: cannot read results" in " ".join(done.output.split())


def test_damaged_results_are_refused_with_the_file_and_the_field(tmp_path: Path) -> None:
    stored_run(tmp_path, clean_history())
    text = (tmp_path / RESULTS).read_text().replace('"complete": true', '"complete": "maybe"')
    (tmp_path / RESULTS).write_text(text)

    with pytest.raises(ResultsError, match=r"(?s)results\.json.*complete.*maybe"):
        read_results(tmp_path)


def test_a_damaged_history_line_is_named_by_its_number(tmp_path: Path) -> None:
    stored_run(tmp_path, clean_history())
    lines = (tmp_path / HISTORY).read_text().splitlines()
    lines[2] = '{"lane": "solo"}'
    (tmp_path / HISTORY).write_text("\n".join(lines) + "\n")

    with pytest.raises(ResultsError, match=rf"{HISTORY}:3"):
        recheck(tmp_path)


@pytest.mark.parametrize(
    ("fault", "line"),
    [
        pytest.param(
            {"action": "kill-worker", "lane": "solo", "pid": 41, "scheduled_at": 101.0}
            | {"begun_at": 101.0, "done_at": 101.02},
            "kill-worker solo (pid 41) at 1.00-1.02 s, scheduled 1.00 s",
            id="done",
        ),
        pytest.param(
            {"action": "kill-worker", "lane": "solo", "done_at": 101.5},
            "kill-worker solo at 1.50-1.50 s",
            id="before-begun_at-was-recorded",
        ),
        pytest.param(
            {"action": "start-worker", "lane": "solo", "begun_at": 102.0, "done_at": 109.0}
            | {"error": "ServerStartError: no ready line"},
            "start-worker solo at 2.00-9.00 s: FAILED: ServerStartError: no ready line",
            id="failed",
        ),
        pytest.param(
            {"action": "start-worker", "lane": "solo", "begun_at": 102.0, "done_at": 103.0}
            | {"cancelled": True},
            "start-worker solo at 2.00-3.00 s: cancelled, the run was stopping",
            id="cancelled",
        ),
    ],
)
def test_a_fault_is_described_from_the_trigger(fault: dict, line: str) -> None:
    assert describe_fault(fault, trigger_at=100.0) == line
