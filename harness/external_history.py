"""History for a bot the harness did not write: the mock's journal and Celery's task events.

No outbox: a part's due time comes from the lane's schedule (when the bot queued the
request's first part, as its tasks' ETAs and task-received events and the API's first
receipt bound it, plus `seq * spacing_s`), which
part a sent text is from the lane's rule (a regex over the text, or the order of distinct
texts), and when its task was received, started and finished from Celery's own events
(task-received / started / succeeded / failed / retried). Tasks are matched to parts by
their ETA order within a request (or the same regex over their arguments, when it
matches there). Pure: sources in, records out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .bot.flow import message_id_for
from .history import ApiRequest, MessageHistory
from .scenario import External


@dataclass(frozen=True)
class SentRequest:
    """One inbound request the harness posted to a lane's webhook."""

    correlation_id: str
    recipient: str
    sent_at: float


@dataclass
class ExternalSources:
    """What was read for an external lane, and the sent texts its part rule did not match."""

    history: list[MessageHistory]
    unmatched: list[str] = field(default_factory=list)


@dataclass
class _Task:
    uuid: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def first(self, kind: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("type") == kind), None)

    def times(self, *kinds: str) -> list[float]:
        return [float(e["timestamp"]) for e in self.events if e.get("type") in kinds]

    @property
    def arguments(self) -> str:
        received = self.first("task-received") or {}
        return f"{received.get('args', '')} {received.get('kwargs', '')}"

    @property
    def eta(self) -> float | None:
        received = self.first("task-received")
        return _epoch(received.get("eta")) if received else None

    @property
    def order_key(self) -> float:
        eta = self.eta
        if eta is not None:
            return eta
        received = self.times("task-received")
        return min(received) if received else float("inf")


def _epoch(eta: Any) -> float | None:
    if not eta:
        return None
    try:
        return datetime.fromisoformat(str(eta)).timestamp()
    except ValueError:
        return None


def _digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def build_external_history(
    lane: str,
    external: External,
    requests: Sequence[SentRequest],
    task_events: Sequence[dict[str, Any]],
    journal: Sequence[dict[str, Any]],
    spacing_s: float,
) -> ExternalSources:
    """One record per part found in the journal or the task events, ordered by (request, seq)."""
    by_recipient = {_digits(r.recipient): r for r in requests}

    def request_of(text: str) -> SentRequest | None:
        if len(requests) == 1:
            return requests[0]
        digits = _digits(text)
        return next((r for number, r in by_recipient.items() if number and number in digits), None)

    def request_sent_to(sent: dict[str, Any]) -> SentRequest | None:
        request = by_recipient.get(_digits(sent.get("recipient")))
        return requests[0] if request is None and len(requests) == 1 else request

    # -- Celery's task events, per task and per request.
    tasks: dict[str, _Task] = {}
    for event in task_events:
        uuid = event.get("uuid")
        if uuid:
            tasks.setdefault(uuid, _Task(uuid)).events.append(event)
    per_request: dict[str, list[_Task]] = defaultdict(list)
    for task in tasks.values():
        request = request_of(task.arguments)
        if request is not None:
            per_request[request.correlation_id].append(task)

    # The schedule counts from when the bot queued the request's parts, as the replica's
    # counts from its outbox's queued_at: the webhook's own time is not lateness. Celery
    # stamps each countdown task with eta = queued + countdown, so the n-th task in ETA
    # order says when it was queued; a worker that consumes late receives late, so the
    # task-received times only bound it from above, and so does the API's first receipt of
    # any of its parts: nothing reaches the API before it is queued. Nothing received:
    # when it was posted.
    def anchor_of(correlation: str, found: list[_Task]) -> float | None:
        queued = [
            task.eta - n * spacing_s
            for n, task in enumerate(sorted(found, key=lambda t: t.order_key))
            if task.eta is not None
        ]
        received = [t for task in found for t in task.times("task-received")]
        return min(queued + received + api_receipts[correlation], default=None)

    api_receipts: dict[str, list[float]] = defaultdict(list)
    for sent in journal:
        if (request := request_sent_to(sent)) is not None:
            api_receipts[request.correlation_id].append(float(sent["received_at"]))
    anchors = {c: anchor_of(c, found) for c, found in per_request.items()}
    records: dict[tuple[str, int], MessageHistory] = {}

    def record(request: SentRequest, seq: int) -> MessageHistory:
        key = (request.correlation_id, seq)
        if key not in records:
            anchor = anchors.get(request.correlation_id)
            records[key] = MessageHistory(
                lane=lane,
                message_id=message_id_for(request.correlation_id, seq),
                correlation_id=request.correlation_id,
                seq=seq,
                recipient=request.recipient,
                queued_at=request.sent_at if anchor is None else anchor,
                countdown_s=seq * spacing_s,
            )
        return records[key]

    # -- When each part's task was received, started and finished.
    requests_by_id = {r.correlation_id: r for r in requests}
    for correlation, found in per_request.items():
        request = requests_by_id[correlation]
        for n, task in enumerate(sorted(found, key=lambda t: t.order_key)):
            seq = external.seq_of(task.arguments)
            entry = record(request, n if seq is None else seq)
            entry.eta = task.eta
            entry.received = min(task.times("task-received"), default=None)
            entry.started = min(task.times("task-started"), default=None)
            entry.finished = max(task.times("task-succeeded", "task-failed"), default=None)
            entry.attempts = len(task.times("task-started"))
            entry.worker_pids = sorted(
                {
                    int(e["pid"])
                    for e in task.events
                    if e.get("type") == "task-started" and "pid" in e
                }
            )
            if task.first("task-failed") is not None:
                entry.status = "failed"
            elif entry.received is not None:
                entry.status = "queued"

    # -- The mock's journal: which part each sent text is, and when the API saw it.
    unmatched: list[str] = []
    texts: dict[str, dict[str, int]] = defaultdict(dict)  # per request: text -> order seen
    for sent in sorted(journal, key=lambda e: e["received_at"]):
        request = request_sent_to(sent)
        if request is None:
            continue
        body = sent.get("body")
        if external.part_regex is None:
            seen = texts[request.correlation_id]
            seq = seen.setdefault(str(body), len(seen))
        else:
            found_seq = external.seq_of(body)
            if found_seq is None:
                unmatched.append(str(body))
                continue
            seq = found_seq
        entry = record(request, seq)
        entry.api_requests.append(ApiRequest.model_validate(sent))
        if sent["outcome"] == "accepted":
            entry.accepted += 1
            # Settled only once the worker's own word is in too: Celery sends task events
            # asynchronously, so the API can accept a part before its task-started is read.
            entry.status = "sent" if entry.started is not None else "sending"
            if entry.api_received_at is None:
                entry.api_received_at = sent["received_at"]
                entry.api_responded_at = sent.get("responded_at")
    history = sorted(records.values(), key=lambda r: (r.correlation_id, r.seq))
    return ExternalSources(history=history, unmatched=unmatched)
