"""`build_history`: the outbox, the worker's events and the mock's journal, joined by message id.

Sources are built as the bot and the mock write them: real `OutboxRecord`s, event dicts
as `WorkerEvents` records them, journal dicts with every `JournalEntry` field.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from harness.bot.flow import message_id_for
from harness.bot.store import OutboxRecord
from harness.history import build_history, split_message_id
from mock_meta_api.journal import JournalEntry

pytestmark = pytest.mark.unit

LANE = "threads"
CORRELATION = "9c1f0e2d3b4a5968"
RECIPIENT = "15550100200"
REQUESTED_AT = 1_700_000_000.0
SPACING_S = 2.0
PID = 4242


def outbox_record(seq: int, correlation: str = CORRELATION, **update: Any) -> OutboxRecord:
    countdown = seq * SPACING_S
    queued_at = REQUESTED_AT + seq * 0.001
    fields: dict[str, Any] = {
        "message_id": message_id_for(correlation, seq),
        "correlation_id": correlation,
        "inbound_id": f"wamid.inbound-{correlation}",
        "recipient": RECIPIENT,
        "seq": seq,
        "parts_total": 3,
        "body": f"part {seq}",
        "countdown_s": countdown,
        "queued_at": queued_at,
        "eta": queued_at + countdown,
        "task_id": f"task-{correlation}-{seq}",
        "state": "sent",
        "attempts": 1,
    }
    return OutboxRecord(**(fields | update))


def event(name: str, at: float, message_id: str | None, pid: int = PID) -> dict[str, Any]:
    return {
        "event": name,
        "at": at,
        "pid": pid,
        "pool": "threads",
        "hostname": "celery@lane",
        "task_id": "task",
        "message_id": message_id,
    }


def sent(message_id: str | None, received_at: float, outcome: str = "accepted") -> dict[str, Any]:
    """A journal entry for one send, with every field the mock records."""
    accepted = outcome == "accepted"
    return JournalEntry(
        seq=1,
        received_at=received_at,
        responded_at=received_at + 0.3,
        method="POST",
        path="/v21.0/106540352290000/messages",
        phone_number_id="106540352290000",
        recipient=RECIPIENT,
        type="text",
        biz_opaque_callback_data=message_id,
        outcome=outcome,  # type: ignore[arg-type]
        http_status=200 if accepted else 500,
        error_code=None if accepted else 131000,
        wamid=f"wamid.{received_at}" if accepted else None,
    ).model_dump()


def test_outbox_fields_are_copied() -> None:
    """Queue times and state come from the outbox, the only source that has them."""
    record = outbox_record(1, state="failed", attempts=6)

    (entry,) = build_history(LANE, [record], [], [])

    assert entry.lane == LANE
    assert entry.message_id == record.message_id
    assert (entry.correlation_id, entry.seq) == (CORRELATION, 1)
    assert entry.recipient == record.recipient
    assert entry.queued_at == record.queued_at
    assert entry.countdown_s == record.countdown_s
    assert entry.eta == record.eta
    assert entry.due == record.queued_at + record.countdown_s
    assert entry.status == "failed"
    assert entry.attempts == 6
    # Never seen by the worker or the API.
    assert entry.received is entry.started is entry.finished is None
    assert entry.api_received_at is None
    assert entry.accepted == 0
    assert entry.api_requests == []
    assert entry.lateness_s is None


def test_events_give_first_received_and_started_and_last_finished() -> None:
    """A retried task runs twice: the first run is when it started, the last when it finished."""
    record = outbox_record(0)
    mid = record.message_id
    events = [
        event("received", REQUESTED_AT + 0.5, mid),
        event("started", REQUESTED_AT + 1.0, mid, pid=11),
        event("retry", REQUESTED_AT + 1.2, mid, pid=11),
        event("finished", REQUESTED_AT + 1.3, mid, pid=11),
        event("received", REQUESTED_AT + 1.4, mid),  # the retry, received again
        event("started", REQUESTED_AT + 2.5, mid, pid=7),
        event("finished", REQUESTED_AT + 2.9, mid, pid=7),
        event("worker_ready", REQUESTED_AT, None),  # no message: not about any part
    ]
    random.Random(0).shuffle(events)  # the join does not rely on the order events are listed in

    (entry,) = build_history(LANE, [record], events, [])

    assert entry.received == REQUESTED_AT + 0.5
    assert entry.started == REQUESTED_AT + 1.0
    assert entry.finished == REQUESTED_AT + 2.9
    assert entry.worker_pids == [7, 11]


def test_first_accepted_send_gives_the_api_times() -> None:
    """Errors before the accepted send are kept as requests but are not when the API got it."""
    record = outbox_record(2)
    mid = record.message_id
    journal = [
        sent(mid, REQUESTED_AT + 4.1, outcome="error"),
        sent(mid, REQUESTED_AT + 5.2, outcome="reset"),
        sent(mid, REQUESTED_AT + 6.3),
    ]

    (entry,) = build_history(LANE, [record], [], journal)

    assert entry.api_received_at == REQUESTED_AT + 6.3
    assert entry.api_responded_at == journal[2]["responded_at"]
    assert entry.accepted == 1
    assert [r.outcome for r in entry.api_requests] == ["error", "reset", "accepted"]
    assert [r.received_at for r in entry.api_requests] == [
        REQUESTED_AT + 4.1,
        REQUESTED_AT + 5.2,
        REQUESTED_AT + 6.3,
    ]
    assert entry.api_requests[0].http_status == 500
    assert entry.api_requests[0].error_code == 131000
    assert entry.api_requests[2].wamid == journal[2]["wamid"]
    assert entry.lateness_s == pytest.approx(REQUESTED_AT + 6.3 - record.eta)


def test_two_accepted_sends_are_a_duplicate_timed_by_the_first() -> None:
    """The journal may list sends out of time order; the earliest accepted one counts."""
    record = outbox_record(1)
    mid = record.message_id
    later, earlier = sent(mid, REQUESTED_AT + 9.0), sent(mid, REQUESTED_AT + 2.5)

    (entry,) = build_history(LANE, [record], [], [later, earlier])

    assert entry.accepted == 2
    assert entry.api_received_at == earlier["received_at"]
    assert entry.api_responded_at == earlier["responded_at"]
    assert [r.received_at for r in entry.api_requests] == [
        earlier["received_at"],
        later["received_at"],
    ]


def test_an_error_after_the_accepted_send_does_not_move_its_times() -> None:
    record = outbox_record(0)
    mid = record.message_id
    journal = [sent(mid, REQUESTED_AT + 0.2), sent(mid, REQUESTED_AT + 0.9, outcome="error")]

    (entry,) = build_history(LANE, [record], [], journal)

    assert entry.accepted == 1
    assert entry.api_received_at == REQUESTED_AT + 0.2
    assert len(entry.api_requests) == 2


def test_a_send_unknown_to_the_outbox_still_gets_a_record() -> None:
    """Nothing the API saw is hidden: the id gives correlation and seq, the journal the rest."""
    stray = message_id_for("feedfacecafebeef", 17)

    (entry,) = build_history(LANE, [], [], [sent(stray, REQUESTED_AT + 1.0)])

    assert (entry.correlation_id, entry.seq) == ("feedfacecafebeef", 17)
    assert entry.status == "unknown"
    assert entry.recipient == RECIPIENT
    assert entry.accepted == 1
    assert entry.api_received_at == REQUESTED_AT + 1.0
    assert entry.queued_at is None
    assert entry.due is None
    assert entry.lateness_s is None


def test_an_event_unknown_to_the_outbox_still_gets_a_record() -> None:
    mid = message_id_for(CORRELATION, 4)

    (entry,) = build_history(LANE, [], [event("received", REQUESTED_AT, mid)], [])

    assert (entry.message_id, entry.seq, entry.status) == (mid, 4, "unknown")
    assert entry.received == REQUESTED_AT


@pytest.mark.parametrize(
    "callback_data",
    [None, "", "no-seq-here", "0123abcd", "-007", "abc-12x", "abc-"],
)
def test_sends_without_a_message_id_are_ignored(callback_data: str | None) -> None:
    """A send without (or with a malformed) callback data is not a part of any reply."""
    record = outbox_record(0)

    (entry,) = build_history(LANE, [record], [], [sent(callback_data, REQUESTED_AT + 0.1)])

    assert entry.message_id == record.message_id
    assert entry.api_requests == []
    assert entry.accepted == 0


def test_records_are_sorted_by_request_then_seq() -> None:
    """Whatever order the sources list parts in, records come by (correlation, seq)."""
    other = "0000aaaa1111bbbb"
    outbox = [
        outbox_record(seq, correlation) for correlation in (CORRELATION, other) for seq in range(12)
    ]
    random.Random(1).shuffle(outbox)
    # Only the API saw these; the last has more digits than the padding (ordered by number).
    journal = [sent(message_id_for(other, seq), REQUESTED_AT) for seq in (12, 200, 1000)]

    history = build_history(LANE, outbox, [], journal)

    assert [(m.correlation_id, m.seq) for m in history] == [
        *((other, seq) for seq in [*range(13), 200, 1000]),
        *((CORRELATION, seq) for seq in range(12)),
    ]
    assert len({m.message_id for m in history}) == len(history)


def test_the_three_sources_join_on_one_record_per_part() -> None:
    """A whole small reply: each part's record holds its own outbox, event and journal data."""
    outbox = [outbox_record(seq) for seq in range(3)]
    events = [
        event(name, record.eta + offset, record.message_id, pid=100 + record.seq)
        for record in outbox
        for name, offset in (
            ("received", -record.countdown_s),
            ("started", 0.01),
            ("finished", 0.4),
        )
    ]
    journal = [sent(record.message_id, record.eta + 0.02) for record in outbox]

    history = build_history(LANE, outbox, events, journal)

    assert [m.seq for m in history] == [0, 1, 2]
    for record, entry in zip(outbox, history, strict=True):
        assert entry.message_id == record.message_id
        assert entry.started == record.eta + 0.01
        assert entry.worker_pids == [100 + record.seq]
        assert entry.api_received_at == record.eta + 0.02
        assert entry.lateness_s == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("message_id", "expected"),
    [
        (message_id_for(CORRELATION, 0), (CORRELATION, 0)),
        (message_id_for("with-dashes", 21), ("with-dashes", 21)),
        ("abc-1000", ("abc", 1000)),
        ("abc", None),
        ("-001", None),
        ("abc-1.5", None),
    ],
)
def test_split_message_id(message_id: str, expected: tuple[str, int] | None) -> None:
    """The id is `<correlation>-<seq>`; the seq is the part after the last dash."""
    assert split_message_id(message_id) == expected
