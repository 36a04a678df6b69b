"""What the evidence says of a lane's workers, and when a lane's history is settled."""

from __future__ import annotations

import pytest

from harness.evidence import Evidence
from harness.history import MessageHistory, is_settled

pytestmark = pytest.mark.unit

READY = {"event": "worker_ready", "pool": "threads", "concurrency": 8}


def test_a_lane_s_concurrency_is_what_its_last_worker_reported() -> None:
    evidence = Evidence(
        events={
            "threads": [READY | {"concurrency": 4}, READY],
            "solo": [READY | {"pool": "solo", "concurrency": 20}],  # runs one task at a time
            "silent": [{"event": "received", "message_id": "x-000"}],
        }
    )

    assert [evidence.concurrency(lane) for lane in ("threads", "solo", "silent", "gone")] == [
        8,
        1,
        None,
        None,
    ]


def test_a_lane_s_versions_are_its_first_worker_s() -> None:
    first, second = {"celery": "5.5.3"}, {"celery": "5.3.6"}
    evidence = Evidence(
        events={"a": [READY, READY | {"versions": first}, READY | {"versions": second}]}
    )

    assert (evidence.worker_versions("a"), evidence.worker_versions("b")) == (first, {})


def test_each_event_row_names_its_lane() -> None:
    evidence = Evidence(events={"a": [READY], "b": [READY, READY]})

    assert [row["lane"] for row in evidence.event_rows()] == ["a", "b", "b"]
    assert all(row["event"] == "worker_ready" for row in evidence.event_rows())


def part(seq: int, status: str) -> MessageHistory:
    return MessageHistory(
        lane="a", message_id=f"c-{seq:03d}", correlation_id="c", seq=seq, status=status
    )


def test_a_lane_is_settled_once_every_part_is_sent_or_failed_for_good() -> None:
    assert is_settled([part(0, "sent"), part(1, "failed")], expected=2)
    assert not is_settled([part(0, "sent")], expected=2), "a part not queued yet"
    assert not is_settled([part(0, "sent"), part(1, "retrying")], expected=2)
