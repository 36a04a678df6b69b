"""External lanes on paper: the lane's fields as validated, and the history built from
the mock's journal and Celery's task events (pure, no process)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from harness.external_history import SentRequest, build_external_history
from harness.scenario import External
from harness.stack.external import command_argv, worker_argv

pytestmark = pytest.mark.unit

WORKER = "{python} -m celery -A mybot worker -P {pool}"


def test_commands_are_split_like_a_shell_and_filled() -> None:
    values = {"python": "/venv/bin/python", "pool": "gevent"}
    assert worker_argv(WORKER, values) == [
        "/venv/bin/python", "-m", "celery", "-A", "mybot", "worker", "-P", "gevent", "-E",
    ]  # fmt: skip
    assert command_argv("{python} -c 'print(1)'", values) == ["/venv/bin/python", "-c", "print(1)"]
    assert worker_argv(WORKER + " -E", values).count("-E") == 1


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"worker": WORKER}, "give either `webhook` (a command) or `url`"),
        (
            {"worker": WORKER, "webhook": "x", "url": "http://127.0.0.1:8000/"},
            "give either `webhook`",
        ),
        ({"worker": "{python} -P {pol}", "webhook": "x"}, "unknown placeholder(s) ['pol']"),
        ({"worker": WORKER, "url": "http://example.com/webhook/"}, "only a webhook on 127.0.0.1"),
        ({"worker": WORKER, "webhook": "x", "part_regex": "part \\d+"}, "needs a group"),
        ({"worker": WORKER, "webhook": "x", "part_regex": "part ("}, "is not a regex"),
        ({"worker": "", "webhook": "x"}, "a command cannot be empty"),
        ({"worker": WORKER, "webhook": "x", "env": {"lower": "1"}}, "UPPER_CASE"),
    ],
)
def test_a_bad_lane_is_refused_naming_what_is_allowed(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError) as caught:
        External.model_validate(fields)
    assert error in str(caught.value)


def test_the_part_rule_reads_the_number_from_the_text() -> None:
    rule = External(worker=WORKER, webhook="x", part_regex=r"part (?P<seq>\d+) of", first_seq=1)
    assert rule.seq_of("Fixtures, part 3 of 8") == 2
    assert rule.seq_of("Teil 3") is None
    assert External(worker=WORKER, webhook="x").seq_of("part 3 of 8") is None


def _task(uuid: str, seq: int, eta: str | None, at: float, started: bool = True) -> list[dict]:
    events: list[dict[str, Any]] = [
        {
            "type": "task-received",
            "uuid": uuid,
            "args": f"['447700000000', {seq}, 3]",
            "kwargs": "{}",
            "eta": eta,
            "timestamp": at,
        }
    ]
    if started:
        events.append({"type": "task-started", "uuid": uuid, "timestamp": at + 0.5, "pid": 7})
        events.append({"type": "task-succeeded", "uuid": uuid, "timestamp": at + 0.8})
    return events


def _sent(text: str, at: float, outcome: str = "accepted") -> dict[str, Any]:
    return {
        "received_at": at,
        "responded_at": at + 0.3,
        "recipient": "447700000000",
        "body": text,
        "outcome": outcome,
        "http_status": 200 if outcome == "accepted" else 500,
    }


REQUEST = SentRequest("c0ffee", "447700000000", 1000.0)


def test_parts_are_told_apart_by_the_regex_and_due_on_the_lane_s_schedule() -> None:
    rule = External(worker=WORKER, webhook="x", part_regex=r"part (?P<seq>\d+) of", first_seq=1)
    events = [
        *_task("b", 1, "2001-09-09T01:46:42+00:00", 1000.1),  # eta = 1000000002
        *_task("a", 0, None, 1000.1),
        *_task("c", 2, "2001-09-09T01:46:44+00:00", 1000.1, started=False),
    ]
    journal = [
        _sent("part 2 of 3", 1002.4),
        _sent("part 1 of 3", 1000.6, "error"),
        _sent("part 1 of 3", 1000.7),
    ]
    found = build_external_history("mine", rule, [REQUEST], events, journal, spacing_s=2.0)
    assert found.unmatched == []
    first, second, third = found.history
    assert [m.seq for m in found.history] == [0, 1, 2]
    # Due from when the bot queued (its first task received at 1000.1), not the request.
    assert [m.due for m in found.history] == [1000.1, 1002.1, 1004.1]
    assert (first.accepted, len(first.api_requests), first.api_received_at) == (1, 2, 1000.7)
    assert first.lateness_s == pytest.approx(0.6)
    assert second.lateness_s == pytest.approx(0.3)
    assert (first.received, first.started, first.finished) == (1000.1, 1000.6, 1000.9)
    assert second.eta == 1000000002.0
    assert (third.received, third.started, third.status, third.accepted) == (
        1000.1,
        None,
        "queued",
        0,
    )


def test_no_part_is_due_before_the_api_first_saw_one_of_them() -> None:
    # Part 1's task stamped (eta - countdown) after part 0 was at the API, and part 0's
    # own task-received never read: the schedule counts from the API's first receipt.
    rule = External(worker=WORKER, webhook="x", part_regex=r"part (?P<seq>\d+) of", first_seq=1)
    events = _task("b", 1, "2001-09-09T01:46:42.5+00:00", 1000000000.6)  # stamped at ...0.5
    journal = [_sent("part 1 of 3", 1000000000.4), _sent("part 2 of 3", 1000000002.5)]
    request = SentRequest("c0ffee", "447700000000", 1000000000.0)
    found = build_external_history("mine", rule, [request], events, journal, spacing_s=2.0)
    assert [m.due for m in found.history] == [1000000000.4, 1000000002.4]
    assert [m.lateness_s for m in found.history] == [0.0, pytest.approx(0.1)]


def test_without_a_regex_parts_are_the_order_of_distinct_texts() -> None:
    rule = External(worker=WORKER, webhook="x")
    journal = [_sent("hello", 1000.2), _sent("hello", 1000.3), _sent("bye", 1002.1)]
    found = build_external_history("mine", rule, [REQUEST], [], journal, spacing_s=2.0)
    assert [(m.seq, m.accepted) for m in found.history] == [(0, 2), (1, 1)]
    # No task event at all: the schedule counts from the request's post.
    assert [m.due for m in found.history] == [1000.0, 1002.0]


def test_texts_the_regex_does_not_match_are_reported() -> None:
    rule = External(worker=WORKER, webhook="x", part_regex=r"Teil (\d+)")
    found = build_external_history("mine", rule, [REQUEST], [], [_sent("part 1", 1.0)], 2.0)
    assert (found.history, found.unmatched) == ([], ["part 1"])


def test_a_scenario_refuses_external_lanes_under_load_or_with_replica_settings() -> None:
    from harness.scenario import Scenario

    lane = {"name": "mine", "pool": "solo", "external": {"worker": WORKER, "webhook": "x"}}
    base = {"name": "x", "description": "x", "tolerances": {"on_time_s": 1.0}}
    with pytest.raises(ValidationError, match="a load test runs the replica bot only"):
        Scenario.model_validate(base | {"lanes": [lane], "load": {"users": 1, "run_time_s": 5}})
    with pytest.raises(ValidationError, match="an external lane takes its environment from"):
        Scenario.model_validate(base | {"lanes": [lane | {"settings": {"SEND_MAX_RETRIES": 1}}]})
