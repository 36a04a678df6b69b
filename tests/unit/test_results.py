"""results.json, the contract for machines, and `harness check`, which judges a stored run again."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.fault_record import FaultRecord
from harness.history import History, MessageHistory
from harness.results import (
    HISTORY,
    RESULTS,
    BrokerServer,
    LaneResult,
    Results,
    ResultsError,
    harness_version,
    judge,
    lane_result,
    read_results,
    read_run_history,
    recheck,
    write_jsonl,
    write_results,
)
from harness.scenario import load_scenario
from harness.stack.broker import server_said as redis_server_said
from harness.stack.rabbitmq import server_said as amqp_server_said

pytestmark = pytest.mark.unit

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "reference" / "results.md"
SCENARIO = load_scenario("incident")[0].only(["solo"]).scaled(0.25)
CORRELATION = "0123456789abcdef"


def contract_section() -> str:
    """What the results.json reference page says by hand, before its capacity runs."""
    text = CONTRACT.read_text()
    return text[: text.index("\n## Capacity runs")]


@pytest.mark.parametrize("model", [Results, LaneResult])
def test_the_docs_document_every_field(model: type[Results] | type[LaneResult]) -> None:
    """A field added to results.json without a word in the docs is a contract nobody knows."""
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


KILL = FaultRecord(
    action="kill-worker",
    lane="solo",
    at_s=1.0,
    scheduled_at=1_700_000_001.0,
    begun_at=1_700_000_001.0,
    done_at=1_700_000_001.02,
    pid=41,
    exit_code=-9,
)


def test_the_history_keeps_the_faults_beside_the_messages(tmp_path: Path) -> None:
    """As Jepsen keeps its nemesis's operations: a fault's line after the messages'."""
    stored_run(tmp_path, clean_history())
    write_jsonl(tmp_path / HISTORY, History({"solo": clean_history()}, [KILL]).lines())

    history = read_run_history(tmp_path)
    _, again = recheck(tmp_path)

    assert (history.messages, history.faults) == ({"solo": clean_history()}, [KILL])
    assert json.loads((tmp_path / HISTORY).read_text().splitlines()[-1])["fault"]["pid"] == 41
    assert again.as_expected, "a fault's line is not a part"


def test_check_of_a_stored_run_lists_its_faults_as_they_were_done() -> None:
    """A committed sample (faults recorded before they were records) reads as it always did."""
    sample = Path(__file__).resolve().parents[2] / "reports" / "broker-restart"

    done = CliRunner().invoke(app, ["check", str(sample)], env={"COLUMNS": "200"})

    assert done.exit_code == 0, done.output
    assert "fault: restart-broker the stack (pid 13131, then 13616) at 3.78-3.87 s" in done.output
    assert "fault: restart-worker solo-restarted (none running, then pid 14064)" in done.output


def test_a_damaged_fault_line_is_named_by_its_number(tmp_path: Path) -> None:
    stored_run(tmp_path, clean_history())
    lines = [m.model_dump_json() for m in clean_history()] + ['{"fault": {"action": "nap"}}']
    (tmp_path / HISTORY).write_text("\n".join(lines) + "\n")

    with pytest.raises(ResultsError, match=rf"(?s){HISTORY}:{len(lines)}.*action"):
        read_run_history(tmp_path)


# -- where a run ran: schema 2 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "said"),
    [
        pytest.param(
            {"redis_version": "7.2.4", "server_name": "valkey", "valkey_version": "9.1.2"},
            "valkey 9.1.2",
            id="valkey-answers-redis_version-too",
        ),
        pytest.param({"redis_version": "7.0.15"}, "redis 7.0.15", id="debian-redis-7"),
        pytest.param({"redis_version": "7.2.4", "valkey_version": "7.2.5"}, "valkey 7.2.5"),
    ],
)
def test_a_redis_protocol_broker_is_named_by_what_answered(info: dict, said: str) -> None:
    assert redis_server_said(info) == said


def test_an_amqp_broker_is_named_by_its_server_properties() -> None:
    properties = {"product": b"RabbitMQ", "version": b"3.10.8", "platform": b"Erlang/OTP 25"}
    assert amqp_server_said(properties) == "rabbitmq 3.10.8"


def test_a_lane_records_its_backend_and_the_broker_that_answered(tmp_path: Path) -> None:
    """A compose lane the scenario calls valkey, on Debian's Redis 7: labelled redis."""
    verdict = judge(SCENARIO, {"solo": clean_history()})["solo"]
    lane = lane_result(verdict, SCENARIO, 1, "redis 7.0.15", backend="compose")

    assert (lane.broker, lane.backend) == ("valkey", "compose")
    assert lane.broker_server == BrokerServer(name="redis", version="7.0.15")
    assert (lane.broker_label, lane.broker_name) == ("redis 7.0.15", "redis")


def test_results_record_the_harness_version_and_schema_1_files_are_still_read(
    tmp_path: Path,
) -> None:
    stored = stored_run(tmp_path, clean_history())
    assert stored.schema_version == 2
    assert stored.harness_version is None  # the test built it; run_scenario sets it
    assert harness_version() == metadata.version("stagger-harness")

    old = json.loads((tmp_path / RESULTS).read_text())
    old["schema_version"] = 1
    for key in ("harness_version", "command"):
        del old[key]
    for lane in old["lanes"]:
        for key in ("backend", "broker_server"):
            del lane[key]
    (tmp_path / RESULTS).write_text(json.dumps(old))

    read = read_results(tmp_path)
    assert (read.schema_version, read.harness_version, read.command) == (1, None, None)
    assert (read.lanes[0].backend, read.lanes[0].broker_server) == (None, None)


def test_check_of_a_run_without_a_ledger_says_it_judged_one_from_the_history(
    tmp_path: Path,
) -> None:
    stored_run(tmp_path, clean_history())
    old = json.loads((tmp_path / RESULTS).read_text())
    for lane in old["lanes"]:
        lane["ledger"] = None
    (tmp_path / RESULTS).write_text(json.dumps(old))

    done = CliRunner().invoke(app, ["check", str(tmp_path)], env={"COLUMNS": "200"})

    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())
    assert "ledger not recorded in results.json (written before the ledger) for solo" in said
    assert "judged again from the history, every request's parts counted" in said
