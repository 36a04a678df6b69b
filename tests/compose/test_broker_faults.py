"""A broker fault on the compose backend: the harness's broker container stopped with its
data and started again on its port, under a replica lane and a team's own containers.

One run of broker-restart's core (tests/faults/test_broker_restart.py runs the whole
scenario locally) with the Django example's I/O worker beside the replica: the replica's
prefork worker loses the parts it held, as locally; a short visibility timeout and a
worker restart send every part late, none lost, for the replica and for the team's
container alike. The team's new worker is ready only once the harness heard it come
online on the restarted broker: the event receiver rode the outage.
"""

from __future__ import annotations

from typing import Any

import docker
import pytest

from harness.expect import assert_as_expected
from harness.fault_record import FaultRecord
from harness.run import RunOutcome, run_scenario
from harness.scenario import Scenario

from .conftest import run_dir_project
from .test_own_containers import DJANGO, assert_nothing_left

pytestmark = [pytest.mark.compose, pytest.mark.timeout(600)]

SCALE = 0.5  # as tests/faults/test_broker_restart.py
WHY_LATE = "The restarted worker takes back the parts unacked for over 3 s: none lost, late."
SHORT_VISIBILITY = {"CELERY_BROKER_VISIBILITY_TIMEOUT": "3.0"}

RESTARTED: dict[str, Any] = {
    "name": "compose-broker-restart",
    "description": "The broker container restarts with its data; workers restarted later.",
    "flow": {"messages": 12, "spacing_s": 2.0},
    "api": {"latency": {"seed": 22, "default": {"model": "uniform", "low_s": 0.1, "high_s": 0.3}}},
    "tolerances": {"on_time_s": 2.0, "missing_after_s": 20.0},
    "lanes": [
        {
            "name": "prefork",
            "pool": "prefork",
            "concurrency": 2,
            "expect": "fail",
            "because": ["missing"],
            "why": "The broker restarted: the worker loses the ETA parts it held.",
        },
        {
            "name": "prefork-restarted",
            "pool": "prefork",
            "concurrency": 2,
            "settings": {"CELERY_BROKER_VISIBILITY_TIMEOUT": 3.0},
            "expect": "fail",
            "because": ["late"],
            "why": WHY_LATE,
        },
        {
            "name": "django-restarted",
            "pool": "prefork",
            "concurrency": 2,
            "expect": "fail",
            "because": ["late"],
            "why": WHY_LATE,
            "external": {
                "compose": {
                    "file": str(DJANGO / "compose.yml"),
                    "webhook": "web",
                    "workers": ["celery_io_worker"],
                },
                "env": SHORT_VISIBILITY,
                "part_regex": r"part (?P<seq>\d+) of",
                "first_seq": 1,
            },
        },
    ],
    "faults": [
        {"at_s": 3.0, "action": "restart-broker", "keep_data": True},
        {"at_s": 12.0, "action": "restart-worker", "lane": "prefork-restarted"},
        {"at_s": 12.0, "action": "restart-worker", "lane": "django-restarted"},
    ],
}


@pytest.fixture(scope="module")
def restarted(
    docker_engine: docker.DockerClient,
    offline_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> RunOutcome:
    run_dir = tmp_path_factory.mktemp("broker-restart") / "run"
    scenario = Scenario.model_validate(RESTARTED).scaled(SCALE)
    outcome = run_scenario(scenario, run_dir, backend="compose")
    assert_nothing_left(docker_engine, run_dir_project(run_dir))
    return outcome


def _fault(outcome: RunOutcome, action: str, lane: str | None) -> FaultRecord:
    found = [f for f in outcome.results.faults if f.action == action and f.lane == lane]
    assert len(found) == 1, outcome.results.faults
    assert found[0].error is None, found[0].error
    return found[0]


def test_the_broker_container_came_back_on_its_port_with_its_data(
    restarted: RunOutcome,
) -> None:
    fault = _fault(restarted, "restart-broker", None)
    assert fault.new_pid is not None
    assert fault.new_pid != fault.pid
    log = (restarted.run_dir / "broker.log").read_text()
    assert "Saving the final RDB snapshot" in log
    assert "DB loaded from disk" in log
    # The replica's outbox lives in the broker, read through the port the harness pinned:
    # a part sent after the restart is `sent` there only if it was read again after it.
    after = [m for m in restarted.history["prefork-restarted"] if (m.started or 0) > fault.done_at]
    assert after
    assert {m.status for m in after} == {"sent"}


def test_the_replica_worker_loses_the_parts_it_held(restarted: RunOutcome) -> None:
    fault = _fault(restarted, "restart-broker", None)
    lost = [m for m in restarted.history["prefork"] if not m.accepted]
    assert lost
    for m in lost:  # received before the broker went, never sent after
        assert m.received is not None
        assert m.received < fault.begun_at
    assert_as_expected(restarted, "prefork")


@pytest.mark.parametrize("lane", ["prefork-restarted", "django-restarted"])
def test_a_worker_restart_with_a_short_visibility_timeout_sends_every_part(
    restarted: RunOutcome, lane: str
) -> None:
    """For the team's lane, `started` comes from Celery's task events: parts started by
    the new worker are events heard on the restarted broker."""
    restart = _fault(restarted, "restart-worker", lane)
    assert restart.new_pid is not None  # ready: online on the restarted broker
    history = restarted.history[lane]
    assert len(history) == restarted.scenario.expected_messages
    assert [m.seq for m in history if not m.accepted] == []
    taken_back = [m for m in history if m.started is not None and m.started > restart.begun_at]
    assert taken_back
    assert (restarted.run_dir / f"worker-{lane}.2.log").read_text().strip()
    assert_as_expected(restarted, lane)
