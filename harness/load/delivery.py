"""Delivery as load-test statistics: each part a request sent, judged as it reaches the API.

Locust sees only the webhook's answer (200 in a few ms), never the staggered parts behind a
"fixtures" request. The tracker knows every request the load test made (its lane, its
correlation id, when it was sent), reads the mock's journal, and says for each part:
delivered (with its lateness), delivered out of order, delivered again, or missing once
its due time plus a grace has passed. The locustfile turns these into Locust `request`
events; nothing here imports Locust or does I/O, so it is tested on its own.

A part is due `seq x spacing` after its request was sent: lateness, seen from the user's
side, includes the webhook's own time. Parts are told apart by the Cloud API's
`biz_opaque_callback_data`, which the bot sets to `<correlation>-<seq>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..history import split_message_id

Kind = Literal["lateness", "missing", "duplicated"]
# Journal entries of requests not (yet) known are kept this long: in distributed mode a
# worker's word that it sent a request can reach the master after the request's part 0.
UNMATCHED_KEEP_S = 120.0


@dataclass(frozen=True)
class DeliveryEvent:
    """One Locust statistic: a part delivered (lateness), or a failure."""

    lane: str
    kind: Kind
    message_id: str
    response_time_ms: float
    error: str | None = None

    @property
    def name(self) -> str:
        """The row in Locust's table: `lateness [solo]`."""
        return f"{self.kind} [{self.lane}]"


@dataclass
class _Request:
    lane: str
    sent_at: float
    seen: dict[int, int] = field(default_factory=dict)  # seq -> times accepted
    highest: int = -1  # highest seq accepted so far
    expired: set[int] = field(default_factory=set)


class DeliveryTracker:
    """Expected parts per request in, journal entries in, delivery events out."""

    def __init__(self, parts: int, spacing_s: float, grace_s: float) -> None:
        self.parts = parts
        self.spacing_s = spacing_s
        self.grace_s = grace_s
        self._requests: dict[str, _Request] = {}
        self._unmatched: dict[str, list[dict[str, Any]]] = {}

    def expect(self, lane: str, correlation: str, sent_at: float) -> list[DeliveryEvent]:
        """A request was answered 200: its parts are due from `sent_at` on."""
        self._requests[correlation] = _Request(lane, sent_at)
        return self.observe(self._unmatched.pop(correlation, []))

    def due(self, request: _Request, seq: int) -> float:
        return request.sent_at + seq * self.spacing_s

    def observe(self, entries: Iterable[dict[str, Any]]) -> list[DeliveryEvent]:
        """Journal entries, in arrival order; only accepted sends count as delivered."""
        events: list[DeliveryEvent] = []
        for entry in entries:
            if entry.get("outcome") != "accepted":
                continue
            message_id = entry.get("biz_opaque_callback_data") or ""
            parsed = split_message_id(message_id)
            if parsed is None:
                continue
            correlation, seq = parsed
            request = self._requests.get(correlation)
            if request is None:
                self._unmatched.setdefault(correlation, []).append(entry)
                continue
            events += self._delivered(request, message_id, seq, float(entry["received_at"]))
        return events

    def _delivered(
        self, request: _Request, message_id: str, seq: int, received_at: float
    ) -> list[DeliveryEvent]:
        lateness_ms = (received_at - self.due(request, seq)) * 1000
        times = request.seen.get(seq, 0) + 1
        request.seen[seq] = times
        if times > 1:
            error = f"{message_id} accepted {times} times"
            return [DeliveryEvent(request.lane, "duplicated", message_id, 0.0, error)]
        error = None
        if seq < request.highest:
            error = f"{message_id} reached the API after part {request.highest}"
        request.highest = max(request.highest, seq)
        # Locust's statistics take no negative times: an early part counts as on time here.
        return [DeliveryEvent(request.lane, "lateness", message_id, max(0.0, lateness_ms), error)]

    def expire(self, now: float) -> list[DeliveryEvent]:
        """Parts still not delivered `grace_s` after their due time: missing."""
        events: list[DeliveryEvent] = []
        for correlation, request in self._requests.items():
            for seq in range(self.parts):
                if seq in request.seen or seq in request.expired:
                    continue
                if now >= self.due(request, seq) + self.grace_s:
                    request.expired.add(seq)
                    message_id = f"{correlation}-{seq:03d}"
                    error = f"{message_id} not at the API {self.grace_s:g} s after its due time"
                    events.append(DeliveryEvent(request.lane, "missing", message_id, 0.0, error))
        self._forget_unmatched(now)
        return events

    def _forget_unmatched(self, now: float) -> None:
        stale = [
            correlation
            for correlation, entries in self._unmatched.items()
            if all(now - float(e["received_at"]) > UNMATCHED_KEEP_S for e in entries)
        ]
        for correlation in stale:
            del self._unmatched[correlation]

    def outstanding(self) -> int:
        """Parts neither delivered nor given up on yet."""
        return sum(
            1
            for request in self._requests.values()
            for seq in range(self.parts)
            if seq not in request.seen and seq not in request.expired
        )

    def settled_by(self) -> float | None:
        """When the last part still outstanding will be given up on (None: nothing is)."""
        deadlines = [
            self.due(request, seq) + self.grace_s
            for request in self._requests.values()
            for seq in range(self.parts)
            if seq not in request.seen and seq not in request.expired
        ]
        return max(deadlines, default=None)


class JournalCursor:
    """Reads the journal incrementally; yields each entry once, once it is answered.

    The mock completes an entry in place when it answers, so entries are read again from
    the first one still open; answered entries beyond it are remembered, not repeated.
    """

    def __init__(self) -> None:
        self.after = 0  # every entry up to this seq is answered and was yielded
        self._yielded: set[int] = set()

    def take(self, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The newly answered entries of a page read with `after_seq=self.after`."""
        fresh: list[dict[str, Any]] = []
        open_seen = False
        for entry in page:
            seq = int(entry["seq"])
            answered = entry.get("responded_at") is not None
            if answered and seq not in self._yielded:
                fresh.append(entry)
                self._yielded.add(seq)
            if not answered:
                open_seen = True
            elif not open_seen:
                self.after = seq
        self._yielded = {seq for seq in self._yielded if seq > self.after}
        return fresh
