"""The journal: one record per Graph request, in arrival order.

It is the mock's evidence for the harness: when each send was received and
answered (wall clock, `time.time()`), what it carried, and what it got back.

Records are kept as plain dicts of strings and numbers. CPython's garbage
collector does not track such dicts, so a journal of a million sends adds
nothing to the collector's full passes, which would otherwise stall answers
for tens of milliseconds under load (see benchmarks/README.md). They become
`JournalEntry` models only when read.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

from pydantic import BaseModel

Outcome = Literal["accepted", "error", "reset", "hang", "disconnected"]
Record = dict[str, Any]


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


_BLANK: Record = {
    name: field.default
    for name, field in JournalEntry.model_fields.items()
    if not field.is_required()
}


NO_BODY: Record = {"body": None}


class Journal:
    """Bounded, ordered record of requests; `dropped` counts what overflowed."""

    def __init__(self, max_entries: int) -> None:
        self._records: deque[Record] = deque(maxlen=max_entries)
        self._next_seq = 1
        self.dropped = 0

    def open(self, received_at: float, method: str, path: str, **fields: str | None) -> Record:
        """Start a record at request arrival; the handler completes it in place.

        Values must stay strings, numbers or None (see the module docstring).
        """
        if len(self._records) == self._records.maxlen:
            self.dropped += 1
        record = _BLANK | fields
        record["seq"] = self._next_seq
        record["received_at"] = received_at
        record["method"] = method
        record["path"] = path
        self._next_seq += 1
        self._records.append(record)
        return record

    def __len__(self) -> int:
        return len(self._records)

    def select(
        self,
        recipient: str | None = None,
        correlation: str | None = None,
        since: float | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
        body: bool = True,
    ) -> list[JournalEntry]:
        """Entries matching every given filter, oldest first; without `body`, each
        request's body is left out (a reply's parts are kilobytes each)."""
        found: list[JournalEntry] = []
        for record in self._records:
            if recipient is not None and record["recipient"] != recipient:
                continue
            if correlation is not None and record["biz_opaque_callback_data"] != correlation:
                continue
            if since is not None and record["received_at"] < since:
                continue
            if after_seq is not None and record["seq"] <= after_seq:
                continue
            found.append(JournalEntry.model_validate(record if body else record | NO_BODY))
            if limit is not None and len(found) >= limit:
                break
        return found

    def clear(self) -> None:
        self._records.clear()
        self._next_seq = 1
        self.dropped = 0
