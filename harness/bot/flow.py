"""The fixtures flow: one inbound "fixtures" becomes N outbox parts queued with countdowns.

This is the production code path under test: build the reply, cut it into
parts, write every part to the outbox, then queue one `send_whatsapp_message`
per part with `countdown = seq * spacing`.
"""

from __future__ import annotations

import hashlib
import time
import uuid

from celery import Task

from .fixtures import fixtures_text, split_message
from .settings import BotSettings
from .store import OutboxRecord, Store

# The last_error of a part whose task could not be queued.
NOT_QUEUED = "not queued: "


def correlation_for(inbound_id: str) -> str:
    """The reply's correlation id, derived from the inbound message id so callers can predict it."""
    return hashlib.sha256(inbound_id.encode()).hexdigest()[:16]


def message_id_for(correlation_id: str, seq: int) -> str:
    """One part's id: sent to Meta as `biz_opaque_callback_data`, returned in statuses."""
    return f"{correlation_id}-{seq:03d}"


def is_fixtures_request(text: str, settings: BotSettings) -> bool:
    return text.strip().casefold() == settings.fixtures_keyword.casefold()


def _was_queued(record: OutboxRecord | None) -> bool:
    """A part is in the outbox and was handed to the broker (a later send may have failed)."""
    if record is None:
        return False
    return not (record.state == "failed" and (record.last_error or "").startswith(NOT_QUEUED))


def queue_fixtures(
    settings: BotSettings, store: Store, send_task: Task, recipient: str, inbound_id: str
) -> list[OutboxRecord]:
    """Write the reply's parts to the outbox and queue them; returns the records as queued.

    All records are written before the first task is queued, so a worker never
    looks for a part that is not there yet. If queueing fails part-way, the
    parts that were not queued are marked failed ("not queued: ..."), so the
    outbox says what happened, and Meta's redelivery queues only those.
    """
    text = fixtures_text(
        settings.fixtures_parts, settings.fixtures_part_chars, settings.fixtures_seed
    )
    bodies = split_message(text, settings.fixtures_part_chars)
    correlation_id = correlation_for(inbound_id)
    planned_at = time.time()
    records = [
        OutboxRecord(
            message_id=message_id_for(correlation_id, seq),
            correlation_id=correlation_id,
            inbound_id=inbound_id,
            recipient=recipient,
            seq=seq,
            parts_total=len(bodies),
            body=body,
            countdown_s=seq * settings.fixtures_spacing_s,
            queued_at=planned_at,
            eta=planned_at + seq * settings.fixtures_spacing_s,
            task_id=str(uuid.uuid4()),
        )
        for seq, body in enumerate(bodies)
    ]
    # A redelivered request whose first queueing failed part-way: queue only what was not queued.
    already = {r.message_id for r in records if _was_queued(store.get(r.message_id))}
    records = [r for r in records if r.message_id not in already]
    store.add(records)
    for index, record in enumerate(records):
        try:
            queued_at = time.time()
            send_task.apply_async(
                args=[record.message_id],
                countdown=record.countdown_s,
                task_id=record.task_id,
                queue=settings.celery_task_queue,
            )
        except Exception as exc:
            for unsent in records[index:]:
                store.update(unsent.message_id, state="failed", last_error=f"{NOT_QUEUED}{exc}")
            raise
        record.queued_at, record.eta = queued_at, queued_at + record.countdown_s
        store.update(record.message_id, queued_at=record.queued_at, eta=record.eta)
    return records
