"""The journal: one record per Graph request, in arrival order.

It is the mock's evidence for the harness: when each send was received and
answered (wall clock, `time.time()`), what it carried, and what it got back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel

Outcome = Literal["accepted", "error", "reset", "hang"]


class JournalEntry(BaseModel):
    seq: int
    received_at: float
    responded_at: float | None = None
    method: str
    path: str
    api_version: str | None = None
    phone_number_id: str | None = None
    recipient: str | None = None
    type: str | None = None
    body: str | None = None
    biz_opaque_callback_data: str | None = None
    attempt: int | None = None
    latency_s: float = 0.0
    outcome: Outcome = "error"
    http_status: int | None = None
    error_code: int | None = None
    wamid: str | None = None
    clock: Literal["time.time"] = "time.time"


class Journal:
    """Bounded, ordered record of requests; `dropped` counts what overflowed."""

    def __init__(self, max_entries: int) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=max_entries)
        self._next_seq = 1
        self.dropped = 0

    def open(self, **fields: object) -> JournalEntry:
        """Start a record at request arrival; the handler completes it in place."""
        if len(self._entries) == self._entries.maxlen:
            self.dropped += 1
        entry = JournalEntry(seq=self._next_seq, **fields)
        self._next_seq += 1
        self._entries.append(entry)
        return entry

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self._entries)

    def select(
        self,
        recipient: str | None = None,
        correlation: str | None = None,
        since: float | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Entries matching every given filter, oldest first."""
        found: list[JournalEntry] = []
        for entry in self._entries:
            if recipient is not None and entry.recipient != recipient:
                continue
            if correlation is not None and entry.biz_opaque_callback_data != correlation:
                continue
            if since is not None and entry.received_at < since:
                continue
            if after_seq is not None and entry.seq <= after_seq:
                continue
            found.append(entry)
            if limit is not None and len(found) >= limit:
                break
        return found

    def clear(self) -> None:
        self._entries.clear()
        self._next_seq = 1
        self.dropped = 0
