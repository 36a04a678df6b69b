"""History: one record per message, joining the bot's outbox, the worker's events and the
mock's journal by the message id the bot sends as `biz_opaque_callback_data`; and beside
the messages, the faults the nemesis did, as Jepsen keeps its nemesis's operations in the
history with the clients'.

`build_history` is pure (sources in, records out); harness.evidence reads the sources of
running lanes. Every time is wall clock (`time.time()`) on one host. In history.jsonl a
message is one `MessageHistory` per line, and a fault one `{"fault": FaultRecord}` line
after them (runs stored before faults were kept there have none).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from .bot.store import OutboxRecord
from .fault_record import FaultRecord


class ApiRequest(BaseModel):
    """One request for this message as the mock journalled it."""

    received_at: float
    responded_at: float | None = None
    outcome: str
    http_status: int | None = None
    error_code: int | None = None
    wamid: str | None = None


class MessageHistory(BaseModel):
    """Everything known about one part: when it was queued, run and seen by the API."""

    lane: str
    message_id: str
    correlation_id: str
    seq: int
    recipient: str | None = None
    queued_at: float | None = None
    countdown_s: float | None = None
    eta: float | None = None
    received: float | None = Field(default=None, description="First `task_received`.")
    started: float | None = Field(default=None, description="First `task_prerun`.")
    finished: float | None = Field(default=None, description="Last `task_postrun`.")
    api_received_at: float | None = Field(
        default=None, description="When the API received the first accepted send."
    )
    api_responded_at: float | None = Field(
        default=None, description="When the API answered the first accepted send."
    )
    status: str = Field(default="unknown", description="The outbox state; `unknown` if absent.")
    attempts: int = 0
    error_code: int | None = Field(
        default=None, description="The API's error code the outbox recorded last, if any."
    )
    accepted: int = Field(default=0, description="Sends the API accepted (more than 1: duplicate).")
    api_requests: list[ApiRequest] = Field(default_factory=list)
    worker_pids: list[int] = Field(default_factory=list)

    @property
    def due(self) -> float | None:
        """When the part should reach the API: queued_at + countdown."""
        if self.queued_at is None or self.countdown_s is None:
            return None
        return self.queued_at + self.countdown_s

    @property
    def lateness_s(self) -> float | None:
        if self.api_received_at is None or self.due is None:
            return None
        return self.api_received_at - self.due


class FaultLine(BaseModel):
    """A fault's line in history.jsonl."""

    fault: FaultRecord


def parse_line(line: str) -> MessageHistory | FaultLine:
    """One line of history.jsonl: a fault's (its one key first), else a message's; a line
    that is neither raises the message's ValidationError, as before faults were kept."""
    if line.lstrip().removeprefix("{").lstrip().startswith('"fault"'):
        return FaultLine.model_validate_json(line)
    return MessageHistory.model_validate_json(line)


@dataclass
class History:
    """A run's history: each lane's messages, and the faults in the order they began."""

    messages: dict[str, list[MessageHistory]] = field(default_factory=dict)
    faults: list[FaultRecord] = field(default_factory=list)

    def lines(self) -> list[MessageHistory | FaultLine]:
        """history.jsonl's lines: every lane's messages, then the faults."""
        found: list[MessageHistory | FaultLine] = [
            m for lane in self.messages.values() for m in lane
        ]
        return found + [FaultLine(fault=fault) for fault in self.faults]

    def add(self, line: MessageHistory | FaultLine) -> None:
        """One line read back from history.jsonl."""
        if isinstance(line, FaultLine):
            self.faults.append(line.fault)
        else:
            self.messages.setdefault(line.lane, []).append(line)


def is_settled(history: list[MessageHistory], expected: int) -> bool:
    """Every part queued, and each sent or failed for good."""
    return len(history) >= expected and all(m.status in ("sent", "failed") for m in history)


def split_message_id(message_id: str) -> tuple[str, int] | None:
    """`<correlation>-<seq>` (see harness.bot.flow) -> (correlation, seq)."""
    correlation, _, seq = message_id.rpartition("-")
    if not correlation or not seq.isdigit():
        return None
    return correlation, int(seq)


def build_history(
    lane: str,
    outbox: Iterable[OutboxRecord],
    events: Iterable[dict[str, Any]],
    journal: Iterable[dict[str, Any]],
) -> list[MessageHistory]:
    """One record per message id found in any source, ordered by (correlation, seq).

    A part the API saw but the outbox lacks still gets a record, so nothing sent is hidden.
    """
    records: dict[str, MessageHistory] = {}

    def record(message_id: str) -> MessageHistory | None:
        if message_id not in records:
            parts = split_message_id(message_id)
            if parts is None:
                return None
            records[message_id] = MessageHistory(
                lane=lane, message_id=message_id, correlation_id=parts[0], seq=parts[1]
            )
        return records[message_id]

    for part in outbox:
        entry = record(part.message_id)
        if entry is None:
            continue
        entry.recipient = part.recipient
        entry.seq = part.seq
        entry.correlation_id = part.correlation_id
        entry.queued_at = part.queued_at
        entry.countdown_s = part.countdown_s
        entry.eta = part.eta
        entry.status = part.state
        entry.attempts = part.attempts
        entry.error_code = part.error_code

    by_message: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event.get("message_id"):
            by_message[event["message_id"]].append(event)
    for message_id, found in by_message.items():
        entry = record(message_id)
        if entry is None:
            continue
        times = {name: [e["at"] for e in found if e["event"] == name] for name in _EVENTS}
        entry.received = min(times["received"], default=None)
        entry.started = min(times["started"], default=None)
        entry.finished = max(times["finished"], default=None)
        entry.worker_pids = sorted({e["pid"] for e in found if e["event"] == "started"})

    for sent in sorted(journal, key=lambda e: e["received_at"]):
        message_id = sent.get("biz_opaque_callback_data")
        entry = record(message_id) if message_id else None
        if entry is None:
            continue
        entry.recipient = entry.recipient or sent.get("recipient")
        entry.api_requests.append(ApiRequest.model_validate(sent))
        if sent["outcome"] == "accepted":
            entry.accepted += 1
            if entry.api_received_at is None:
                entry.api_received_at = sent["received_at"]
                entry.api_responded_at = sent.get("responded_at")
    return sorted(records.values(), key=lambda r: (r.correlation_id, r.seq))


_EVENTS = ("received", "started", "finished")
