"""The Django example bot (examples/django-bot) as external lanes, through the pytest plugin.

Its webhook (runserver) and Celery worker start from the scenarios' commands; each part
is judged from the mock's journal and Celery's own task events, nothing the bot writes.
Both scenarios run at half speed: the schedule counts from the request, so part 0's
lateness includes Django answering the webhook, which a cold runserver on 2 busy cores
does in up to ~0.5 s (the on-time bound at a quarter of the time).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.expect import assert_as_expected, assert_delivered, assert_fails_with
from harness.run import RunOutcome

pytest.importorskip("django", reason="the Django example needs `uv sync --group django`")

pytestmark = [pytest.mark.integration, pytest.mark.ownbots, pytest.mark.timeout(300)]

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "django-bot" / "scenarios"
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
