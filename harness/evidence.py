"""Evidence: what a running stack shows of each lane, read into histories while the run
is followed.

Each lane's store (the bot's outbox, the workers' events) and the mock's journal are
read incrementally; a lane of one's own has no store, and Celery's task events stand in
for its events. The run directory keeps the raw readings beside the history built from
them (journal.jsonl, events.jsonl).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import redis

from .bot.store import OutboxRecord
from .external_history import SentRequest, build_external_history
from .history import MessageHistory, build_history
from .mock_admin import MockAdmin
from .stack.backend import Lane, Stack
from .stack.external import ExternalLaneError, last_lines

# The last reading before a verdict: a mock busy with a load's backlog gets this long.
STRICT_READ_S = 60.0


@dataclass
class Evidence:
    """The evidence as last read (the mock's journal, each lane's worker events) and the
    history built from it with each lane's outbox."""

    journal: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    history: dict[str, list[MessageHistory]] = field(default_factory=dict)

    def concurrency(self, lane: str) -> int | None:
        """As the lane's worker reported it; a solo worker runs one task at a time,
        whatever it was told."""
        ready = [e for e in self.events.get(lane, []) if e.get("event") == "worker_ready"]
        if not ready:
            return None
        return 1 if ready[-1].get("pool") == "solo" else ready[-1].get("concurrency")

    def worker_versions(self, lane: str) -> dict[str, str]:
        """Python, Celery, kombu, ... as the lane's (first) worker reported them."""
        ready = [
            e
            for e in self.events.get(lane, [])
            if e.get("event") == "worker_ready" and e.get("versions")
        ]
        return dict(ready[0]["versions"]) if ready else {}

    def event_rows(self) -> list[dict[str, Any]]:
        """events.jsonl's rows: each event with its lane."""
        return [{"lane": name} | event for name, events in self.events.items() for event in events]


class Collector:
    """Reads each lane's store and the journal (incrementally) into histories.

    What the store held once is kept: a broker restarted empty (a fault) loses the bot's
    outbox and events with the queue, and the evidence of what happened before must not
    go with them. While the broker is down, the last reading stands.
    """

    def __init__(self, stack: Stack, spacing_s: float) -> None:
        self.stack = stack
        self.spacing_s = spacing_s
        self.mock = MockAdmin(stack.mock_url)
        self.evidence = Evidence()
        # Only a lane of one's own is told apart by the texts sent; the replica's parts
        # carry their id, and a reply's texts are kilobytes each, re-read every poll.
        self.stale = False  # the last journal read timed out
        self.bodies = any(lane.task_events is not None for lane in stack.lanes.values())
        self._outbox: dict[str, dict[str, OutboxRecord]] = {name: {} for name in stack.lanes}
        self._events: dict[str, dict[bytes, dict[str, Any]]] = {name: {} for name in stack.lanes}

    def _read_stores(self) -> None:
        """Each replica lane's outbox and events (an external lane has no store)."""
        for name, lane in self.stack.lanes.items():
            if lane.task_events is not None:
                continue
            outbox, events = lane.store.outbox(), lane.store.events()
            self._outbox[name].update((record.message_id, record) for record in outbox)
            self._events[name].update((orjson.dumps(event), event) for event in events)

    def collect(self, strict: bool = False) -> Evidence:
        """Outbox and events first, then the journal: a part the outbox calls sent was
        answered by the mock before the bot wrote that, so its journal entry is read too.

        An external lane has no outbox: Celery's task events stand in for its events.
        A journal read that times out leaves the last reading (`stale`); `strict`, it is
        given longer, and raises if even that is not enough."""
        lanes = self.stack.lanes
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            self._read_stores()  # the broker down or loading (a fault): keep the last reading
        outboxes = {name: list(self._outbox[name].values()) for name in lanes}
        events = {name: list(self._events[name].values()) for name in lanes}
        events |= {
            name: lane.task_events.snapshot()
            for name, lane in lanes.items()
            if lane.task_events is not None
        }
        # Entries are completed in place when the mock answers: re-read from the first open one.
        journal = self.evidence.journal
        done = next((i for i, e in enumerate(journal) if e["responded_at"] is None), len(journal))
        after = journal[done - 1]["seq"] if done else 0
        try:
            timeout = STRICT_READ_S if strict else None
            page = self.mock.journal(timeout, after_seq=after, body=self.bodies)
            journal = journal[:done] + page
            self.stale = False
        except httpx.TimeoutException:  # a mock saturated by a load: read it again later
            if strict:
                raise
            self.stale = True
        history: dict[str, list[MessageHistory]] = {}
        for name, lane in lanes.items():
            sent = [e for e in journal if e.get("phone_number_id") == lane.phone_number_id]
            if lane.task_events is None:
                history[name] = build_history(name, outboxes[name], events[name], sent)
            else:
                history[name] = self._external(lane, events[name], sent)
        self.evidence = Evidence(journal=journal, events=events, history=history)
        return self.evidence

    def _external(
        self, lane: Lane, events: list[dict[str, Any]], sent: list[dict[str, Any]]
    ) -> list[MessageHistory]:
        """A lane of one's own: its parts from the journal and Celery's task events."""
        assert lane.spec.external is not None
        found = build_external_history(
            lane.name,
            lane.spec.external,
            [SentRequest(*request) for request in lane.requests],
            events,
            sent,
            self.spacing_s,
        )
        if found.unmatched and not any(m.api_requests for m in found.history):
            worker = lane.oldest_running_worker() or lane.worker
            raise ExternalLaneError(
                f"lane {lane.name}: part_regex {lane.spec.external.part_regex!r} matches none "
                f"of the {len(found.unmatched)} texts sent (first: {found.unmatched[0]!r}); "
                f"the worker's last lines:\n{last_lines(worker.output)}"
            )
        return found.history

    def close(self) -> None:
        self.mock.close()
