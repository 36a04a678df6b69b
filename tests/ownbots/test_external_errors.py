"""Bad external lanes: a clear error naming the lane, with the process's last lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.processes import STARTED
from harness.run import run_scenario
from harness.scenario import External, Scenario
from harness.stack import LaneSpec, LocalStack, StackSpec
from harness.stack.broker import free_port
from harness.stack.external import ExternalLaneError

pytestmark = [pytest.mark.integration, pytest.mark.ownbots, pytest.mark.timeout(120)]

DJANGO = Path(__file__).resolve().parents[2] / "examples" / "django-bot"
WORKER = "{python} -m celery -A botsite worker --loglevel INFO -Q {queue} -P solo"


def _stack(tmp_path: Path, external: External) -> LocalStack:
    lane = LaneSpec(name="mine", pool="solo", external=external)
    return LocalStack(StackSpec(lanes=[lane], start_timeout_s=20.0), tmp_path)


def _nothing_left(started_before: int) -> None:
    assert all(popen.poll() is not None for popen in STARTED[started_before:])


def test_a_command_that_exits_at_once_names_the_lane_and_quotes_its_output(
    tmp_path: Path,
) -> None:
    before = len(STARTED)
    external = External(
        webhook="{python} -c \"import sys; print('no module named mybot'); sys.exit(3)\"",
        worker="{python} -c \"print('worker never runs')\"",
    )
    with pytest.raises(ExternalLaneError) as caught:
        _stack(tmp_path, external).start()
    message = str(caught.value)
    assert message.startswith("lane mine: the ")
    assert "exited with" in message
    assert "no module named mybot" in message or "worker never runs" in message
    _nothing_left(before)


def test_a_webhook_url_that_does_not_answer_names_the_lane(tmp_path: Path) -> None:
    before = len(STARTED)
    url = f"http://127.0.0.1:{free_port()}/webhook/"
    external = External(url=url, worker='{python} -c "import time; time.sleep(60)"')
    with pytest.raises(ExternalLaneError, match=rf"^lane mine: the webhook at {url} does not"):
        _stack(tmp_path, external).start()
    _nothing_left(before)


def test_a_part_rule_that_matches_nothing_names_the_lane_with_the_worker_s_lines(
    tmp_path: Path,
) -> None:
    pytest.importorskip("django", reason="the Django example needs `uv sync --group django`")
    scenario = Scenario.model_validate(
        {
            "name": "wrong-rule",
            "description": "The Django bot, with a part rule for another bot's texts.",
            "flow": {"messages": 2, "spacing_s": 0.5},
            "tolerances": {"on_time_s": 1.0, "missing_after_s": 10.0},
            "lanes": [
                {
                    "name": "django",
                    "pool": "solo",
                    "external": {
                        "webhook": "{python} manage.py runserver 127.0.0.1:{port} --noreload",
                        "worker": WORKER,
                        "cwd": str(DJANGO),
                        "part_regex": r"Teil (?P<seq>\d+)",
                    },
                }
            ],
        }
    )
    with pytest.raises(ExternalLaneError) as caught:
        run_scenario(scenario.scaled(1.0), tmp_path)
    message = str(caught.value)
    assert message.startswith(
        "lane django: part_regex 'Teil (?P<seq>\\\\d+)' matches none of the"
    ), message
    assert "'Fixtures, part 1 of 2'" in message
    assert "replies.tasks.send_part" in message  # the worker's own log lines
