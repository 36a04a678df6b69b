"""The bot's state in the broker's Redis: outbox, inbound dedupe, statuses, worker events.

No extra database, as in production: one hash per outbox part and a few lists,
all under the lane's key prefix so lanes can share a Redis server. Every record
carries wall-clock times (`time.time()`), the harness's shared clock.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
import redis
from pydantic import BaseModel

OutboxState = Literal["queued", "sending", "sent", "failed"]
# How long an inbound message id is remembered; Meta retries a webhook for up to 7 days.
DEDUPE_TTL_S = 7 * 24 * 3600


class OutboxRecord(BaseModel):
    """One part of one reply, from queueing to Meta's answer."""

    message_id: str
    correlation_id: str
    inbound_id: str
    recipient: str
    seq: int
    parts_total: int
    body: str
    countdown_s: float
    queued_at: float
    eta: float
    task_id: str
    state: OutboxState = "queued"
    wamid: str | None = None
    attempts: int = 0
    last_error: str | None = None
    error_code: int | None = None
    sent_at: float | None = None

    def to_hash(self) -> dict[str, str]:
        return {key: str(value) for key, value in self.model_dump().items() if value is not None}


class Store:
    """Typed access to the bot's keys under one prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        self.redis: redis.Redis = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # Outbox -----------------------------------------------------------------------------------

    def add(self, records: list[OutboxRecord]) -> None:
        """Write all parts of a reply at once, so the outbox never holds half a reply.

        A part written again (a redelivered request whose first queueing failed)
        replaces its old record and keeps its place in the outbox's order.
        """
        known = {
            r.message_id for r in records if self.redis.exists(self._key("outbox", r.message_id))
        }
        with self.redis.pipeline(transaction=True) as pipe:
            for record in records:
                key = self._key("outbox", record.message_id)
                pipe.delete(key)
                pipe.hset(key, mapping=record.to_hash())
                if record.message_id not in known:
                    pipe.rpush(self._key("outbox"), record.message_id)
            pipe.execute()

    def get(self, message_id: str) -> OutboxRecord | None:
        fields = self.redis.hgetall(self._key("outbox", message_id))
        return OutboxRecord.model_validate(fields) if fields else None

    def update(self, message_id: str, **fields: Any) -> None:
        """Set some fields; a None value removes the field (e.g. last_error after success)."""
        key = self._key("outbox", message_id)
        with self.redis.pipeline(transaction=True) as pipe:
            values = {name: str(value) for name, value in fields.items() if value is not None}
            if values:
                pipe.hset(key, mapping=values)
            cleared = [name for name, value in fields.items() if value is None]
            if cleared:
                pipe.hdel(key, *cleared)
            pipe.execute()

    def start_attempt(self, message_id: str) -> OutboxRecord | None:
        """Count one more send attempt and mark the part as sending; None if it is unknown."""
        key = self._key("outbox", message_id)
        if not self.redis.exists(key):
            return None
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "attempts", 1)
            pipe.hset(key, "state", "sending")
            pipe.hgetall(key)
            fields = pipe.execute()[-1]
        return OutboxRecord.model_validate(fields)

    def outbox(self) -> list[OutboxRecord]:
        """Every part, in the order the parts were queued."""
        ids = self.redis.lrange(self._key("outbox"), 0, -1)
        with self.redis.pipeline(transaction=False) as pipe:
            for message_id in ids:
                pipe.hgetall(self._key("outbox", message_id))
            rows = pipe.execute()
        return [OutboxRecord.model_validate(row) for row in rows if row]

    # Inbound dedupe ---------------------------------------------------------------------------

    def claim_inbound(self, inbound_id: str) -> bool:
        """True the first time an inbound message id is seen: Meta redelivers webhooks."""
        key = self._key("inbound", inbound_id)
        return bool(self.redis.set(key, "1", nx=True, ex=DEDUPE_TTL_S))

    def release_inbound(self, inbound_id: str) -> None:
        """Forget a claim whose work could not be queued, so Meta's redelivery is handled."""
        self.redis.delete(self._key("inbound", inbound_id))

    # Logs: statuses from Meta, events from the workers ----------------------------------------

    def _append(self, name: str, record: dict[str, Any]) -> None:
        self.redis.rpush(self._key(name), orjson.dumps(record))

    def _read(self, name: str) -> list[dict[str, Any]]:
        return [orjson.loads(raw) for raw in self.redis.lrange(self._key(name), 0, -1)]

    def record_status(self, status: dict[str, Any]) -> None:
        self._append("statuses", status)

    def statuses(self) -> list[dict[str, Any]]:
        return self._read("statuses")

    def record_inbound(self, message: dict[str, Any]) -> None:
        self._append("inbound", message)

    def inbound(self) -> list[dict[str, Any]]:
        return self._read("inbound")

    def record_event(self, event: dict[str, Any]) -> None:
        self._append("events", event)

    def events(self) -> list[dict[str, Any]]:
        return self._read("events")
