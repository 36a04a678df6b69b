"""Load runs end to end: Locust drives every lane's webhook on a real local stack, and every
request's parts are judged by the checks, in one process or as a master and two workers.

The scenario is small and bounded: a few users for a few seconds, short replies, a fast
API; every bound asserted comes from it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness.load.driver import REQUESTS_LOG
from harness.run import RunOutcome, run_scenario
from harness.scenario import Scenario, parse_scenario

pytestmark = [pytest.mark.integration, pytest.mark.load, pytest.mark.timeout(240)]

TINY = """
name = "load-tiny"
description = "A bounded load: 2 users per lane, one request a second each, for 8 s."

[flow]
messages = 4
spacing_s = 0.5

[api.latency]
default = { model = "fixed", value_s = 0.05 }

[tolerances]
# What is under test is the load pipeline, not the ETA timer's precision: a bound a busy
# 2-core machine keeps (part 0 can come 0.6 s late while Locust and 2 lanes share it).
on_time_s = 2.0
missing_after_s = 8.0

[load]
users = 2
spawn_rate = 10
run_time_s = 8
pace_s = 1.0
fixtures_share = 0.75
workers = WORKERS

[load.thresholds]
max_fail_ratio = 0.0

[[lanes]]
name = "solo"
pool = "solo"

[[lanes]]
name = "gevent"
pool = "gevent"
concurrency = 10
"""


def tiny(workers: int) -> Scenario:
    return parse_scenario(TINY.replace("WORKERS", str(workers)), "load-tiny.toml")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    return run_scenario(tiny(0), tmp_path_factory.mktemp("load"))


@pytest.fixture(scope="module")
def distributed(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    return run_scenario(tiny(2), tmp_path_factory.mktemp("load-distributed"))


def stats_rows(run_dir: Path) -> dict[str, dict[str, str]]:
    with (run_dir / "locust_stats.csv").open() as table:
        return {row["Name"]: row for row in csv.DictReader(table)}


@pytest.mark.parametrize("lane", ["solo", "gevent"])
def test_every_webhook_request_succeeded(one_process: RunOutcome, lane: str) -> None:
    load = one_process.results.load
    assert load is not None
    figures = load.lane(lane)
    assert figures is not None
    assert figures.webhook_requests is not None
    assert figures.webhook_requests > 0
    assert figures.webhook_failures == 0
    assert figures.fixtures_requests == figures.fixtures_accepted > 0
    assert load.exceeded == []
    assert load.exit_code == 0


@pytest.mark.parametrize("lane", ["solo", "gevent"])
def test_delivery_lateness_is_in_locusts_own_statistics(one_process: RunOutcome, lane: str) -> None:
    rows = stats_rows(one_process.run_dir)
    lateness = rows[f"lateness [{lane}]"]
    assert lateness["Type"] == "DELIVERY"
    assert int(lateness["Request Count"]) == one_process.lane(lane).delivered
    assert int(lateness["Failure Count"]) == 0
    assert int(rows[f"webhook fixtures [{lane}]"]["Request Count"]) > 0
    for report in ("locust.html", "locust.json", "locust_stats_history.csv"):
        assert (one_process.run_dir / report).stat().st_size > 0


@pytest.mark.parametrize("lane", ["solo", "gevent"])
def test_every_request_s_parts_were_judged(one_process: RunOutcome, lane: str) -> None:
    scenario = one_process.scenario
    load = one_process.results.load
    assert load is not None
    figures = load.lane(lane)
    assert figures is not None
    result = one_process.lane(lane)
    history = one_process.history[lane]
    assert result.expected_messages == len(figures.correlations) * scenario.flow.messages
    assert {m.correlation_id for m in history} == set(figures.correlations)
    assert result.delivered == result.expected_messages == len(history)
    assert (result.verdict, result.as_expected) == ("pass", True), result.reasons
    for message in history:
        assert message.lateness_s is not None
        assert -scenario.tolerances.early_s <= message.lateness_s <= scenario.tolerances.on_time_s


def test_a_stored_load_run_is_judged_the_same_again(one_process: RunOutcome) -> None:
    from harness.results import recheck

    stored, again = recheck(one_process.run_dir)
    assert [lane.model_dump() for lane in again.lanes] == [
        lane.model_dump() for lane in stored.lanes
    ]
    assert again.as_expected == stored.as_expected is True


def test_a_master_and_two_workers_share_the_load(distributed: RunOutcome) -> None:
    run_dir = distributed.run_dir
    assert "2 workers connected" in (run_dir / "locust.log").read_text()
    requests = [json.loads(line) for line in (run_dir / REQUESTS_LOG).read_text().splitlines()]
    assert {record["worker"] for record in requests} == {0, 1}
    assert {record["lane"] for record in requests} == {"solo", "gevent"}
    load = distributed.results.load
    assert load is not None
    assert load.exit_code == 0
    for lane in ("solo", "gevent"):
        result = distributed.lane(lane)
        figures = load.lane(lane)
        assert figures is not None
        assert figures.webhook_failures == 0
        assert result.delivered == result.expected_messages > 0
        assert figures.locust_delivered == result.delivered
    assert distributed.results.as_expected
