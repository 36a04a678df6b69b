"""The Django example bot (examples/django-bot) as external lanes, through the pytest plugin.

Its webhook (runserver) and Celery worker start from the scenarios' commands; each part
is judged from the mock's journal and Celery's own task events, nothing the bot writes.
Both scenarios run at half speed: the schedule counts from the request, so part 0's
lateness includes Django answering the webhook, which a cold runserver on 2 busy cores
does in up to ~0.5 s (the on-time bound at a quarter of the time).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from harness.expect import assert_as_expected, assert_delivered, assert_fails_with
from harness.processes import running_server
from harness.pytest_plugin import RunScenario
from harness.run import RunOutcome, run_scenario
from harness.scenario import Scenario
from harness.stack import broker as brokers
from mock_meta_api.config import DEFAULT_APP_SECRET

pytest.importorskip("django", reason="the Django example needs `uv sync --group django`")

pytestmark = [pytest.mark.integration, pytest.mark.ownbots, pytest.mark.timeout(300)]

DJANGO = Path(__file__).resolve().parents[2] / "examples" / "django-bot"
SCENARIOS = DJANGO / "scenarios"
POOLS = str(SCENARIOS / "django-pools.toml")
TRAP = str(SCENARIOS / "django-settings-trap.toml")
SCALE = 0.5


@pytest.mark.stagger(scenario=POOLS, time_scale=SCALE)
@pytest.mark.parametrize("pool", ["solo", "prefork", "threads", "gevent"])
def test_every_pool_delivers_every_part_on_time(stagger_outcome: RunOutcome, pool: str) -> None:
    assert_delivered(stagger_outcome, pool)
    history = stagger_outcome.history[pool]
    # The task events were read: each part's task received and started by a worker (its
    # task-succeeded may come after the run settles, once the API has accepted every part).
    assert all(m.received and m.started and m.worker_pids for m in history)
    assert [m.eta is not None for m in history] == [False] + [True] * (len(history) - 1)


@pytest.mark.stagger(scenario=TRAP, time_scale=SCALE)
def test_gevent_set_only_in_settings_receives_every_part_and_starts_none(
    stagger_outcome: RunOutcome,
) -> None:
    assert_as_expected(stagger_outcome, "gevent")
    assert_fails_with(stagger_outcome, "gevent", "missing")
    history = stagger_outcome.history["gevent"]
    assert len(history) == stagger_outcome.scenario.expected_messages
    assert all(m.received is not None and m.started is None for m in history)
    assert all(m.accepted == 0 for m in history)


@pytest.mark.stagger(scenario=TRAP, time_scale=SCALE)
@pytest.mark.parametrize("lane", ["solo", "gevent-argv"])
def test_solo_in_settings_and_gevent_on_argv_deliver(
    stagger_outcome: RunOutcome, lane: str
) -> None:
    assert_delivered(stagger_outcome, lane)


def test_a_webhook_already_running_is_used_by_its_url(
    tmp_path: Path, embedded_broker: brokers.Broker
) -> None:
    """The lane's `url`: the harness posts to a webhook it did not start, which queues onto
    the broker the run is given; the worker it starts sends to the mock."""
    broker_url = embedded_broker.url_for_db(9)
    queue = "stagger-running"  # the queue the harness's worker for lane `running` consumes
    port = brokers.free_port()
    env = {
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_QUEUE": queue,
        "WHATSAPP_APP_SECRET": DEFAULT_APP_SECRET,
        "FIXTURES_PARTS": "3",
        "FIXTURES_SPACING_S": "1.0",
    }
    argv = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    scenario = Scenario.model_validate(
        {
            "name": "running-webhook",
            "description": "The Django webhook started outside the harness.",
            # A second between parts: the worker the harness starts may take part of one to
            # consume after the webhook (not the harness's) queued the reply.
            "flow": {"messages": 3, "spacing_s": 1.0},
            "tolerances": {"on_time_s": 1.5, "missing_after_s": 10.0},
            "lanes": [
                {
                    "name": "running",
                    "pool": "threads",
                    "concurrency": 4,
                    "external": {
                        "url": f"http://127.0.0.1:{port}/webhook/",
                        "worker": "{python} -m celery -A botsite worker -Q {queue} -P {pool} "
                        "-c {concurrency}",
                        "cwd": str(DJANGO),
                        "part_regex": r"part (?P<seq>\d+) of",
                        "first_seq": 1,
                    },
                }
            ],
        }
    )
    with running_server(
        argv, re.compile(r"Quit the server with"), env=env, cwd=DJANGO, timeout_s=60.0
    ):
        outcome = run_scenario(scenario.scaled(1.0), tmp_path / "run", broker_url=broker_url)
    assert_delivered(outcome, "running")
    assert all(m.started is not None for m in outcome.history["running"])


KILLED = {
    "name": "django-killed",
    "description": "The Django bot's worker SIGKILLed mid-flow, then a new one started.",
    "flow": {"messages": 6, "spacing_s": 1.0},
    "tolerances": {"on_time_s": 1.0, "missing_after_s": 8.0},
    "lanes": [
        {
            "name": "solo",
            "pool": "solo",
            "expect": "fail",
            "because": ["missing"],
            "external": {
                "webhook": "{python} manage.py runserver 127.0.0.1:{port} --noreload",
                "worker": "{python} -m celery -A botsite worker -Q {queue} -P {pool}",
                "cwd": str(DJANGO),
                "part_regex": r"part (?P<seq>\d+) of",
                "first_seq": 1,
            },
        }
    ],
    "faults": [
        {"at_s": 2.5, "action": "kill-worker"},
        {"at_s": 3.0, "action": "start-worker"},
    ],
}


def test_the_nemesis_kills_and_restarts_an_external_worker(stagger_run: RunScenario) -> None:
    """Parts due after the kill were held by the killed worker (unacked, back only after
    Redis's one-hour visibility timeout): received, never started, never sent, even
    though a new worker is up."""
    outcome = stagger_run(Scenario.model_validate(KILLED))
    assert_fails_with(outcome, "solo", "missing")
    assert [f["action"] for f in outcome.results.model_dump()["faults"]] == [
        "kill-worker",
        "start-worker",
    ]
    scenario = outcome.scenario
    kill_s, spacing = scenario.faults[0].at_s, scenario.flow.spacing_s
    history = outcome.history["solo"]
    sent = [m.seq for m in history if m.accepted]
    # Every part due on time before the kill was sent; none due after it.
    surely = [seq for seq in range(6) if seq * spacing + scenario.tolerances.on_time_s <= kill_s]
    at_most = [seq for seq in range(6) if seq * spacing <= kill_s]
    assert sent[: len(surely)] == surely, sent
    assert set(sent) <= set(at_most), sent
    lost = [m for m in history if not m.accepted]
    assert lost
    assert all(m.received is not None and m.started is None for m in lost)
