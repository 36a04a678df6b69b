"""The mock's mutable state: current behaviours, their live machinery, counters, journal."""

from __future__ import annotations

import base64
import itertools
import os
import time

from .config import Behaviours, MockConfig
from .faults import FaultPlan
from .journal import Journal
from .latency import LatencySampler
from .ratelimit import KeyedLimiter
from .webhooks import StatusWebhooks


class MockState:
    """One per app. Behaviours are swapped whole, so a request sees one consistent set."""

    def __init__(self, config: MockConfig, webhooks: StatusWebhooks) -> None:
        self.config = config
        self.phone_number_ids = frozenset(config.phone_number_ids)
        self.journal = Journal(config.journal_max_entries)
        self.webhooks = webhooks
        self.started_at = time.time()
        self.attempts = 0
        self._attempts_by_number: dict[str, int] = {}
        self._wamid_prefix = base64.b32encode(os.urandom(5)).decode()
        self._wamids = itertools.count(1)
        self.apply(config.behaviours)

    def apply(self, behaviours: Behaviours) -> None:
        """Make `behaviours` current; outage windows are timed from now."""
        self.behaviours = behaviours
        self.latency = LatencySampler(behaviours.latency)
        self.faults = FaultPlan(behaviours.failures, applied_at=time.monotonic())
        rate = behaviours.throughput.messages_per_second
        self.throughput = KeyedLimiter(rate, capacity=max(1.0, rate))  # one second's worth
        pair = behaviours.pair_rate
        self.pair_rate = KeyedLimiter(1 / pair.period_s, pair.burst)
        self.webhooks.reseed(behaviours.webhooks.seed)

    def reset(self) -> None:
        """Forget what happened (journal, counters, buckets, webhooks); keep behaviours."""
        self.journal.clear()
        self.attempts = 0
        self._attempts_by_number.clear()
        self.webhooks.clear()
        self.apply(self.behaviours)

    def next_attempt(self, phone_number_id: str) -> int:
        """This business number's next send attempt number (1-based).

        Counted per number, so a scripted failure ("attempt 2 hangs") hits every business
        number the same way, as latency does: lanes sharing one mock meet the same API.
        """
        self.attempts += 1
        number = self._attempts_by_number.get(phone_number_id, 0) + 1
        self._attempts_by_number[phone_number_id] = number
        return number

    def new_wamid(self, wa_id: str) -> str:
        """A unique message id in Meta's `wamid.` form."""
        raw = f"{wa_id}:{self._wamid_prefix}:{next(self._wamids):010d}".encode()
        return "wamid.HBgL" + base64.b64encode(raw).decode().rstrip("=")
