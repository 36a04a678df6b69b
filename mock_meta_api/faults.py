"""Which send attempts fail, and how: outage windows, scripted attempts, random failures."""

from __future__ import annotations

import random

from .config import Failures, FaultAnswer


class FaultPlan:
    """Decides the fault (if any) for each send attempt.

    Outages are timed from `applied_at` (monotonic seconds), the moment the
    behaviours were set, so "an outage 10 s from now for 5 s" means just that.
    """

    def __init__(self, failures: Failures, applied_at: float) -> None:
        self._failures = failures
        self._applied_at = applied_at
        self._rng = random.Random(failures.seed)

    def decide(self, attempt: int, now: float) -> FaultAnswer | None:
        elapsed = now - self._applied_at
        for outage in self._failures.outages:
            if outage.start_s <= elapsed < outage.start_s + outage.duration_s:
                return outage.answer
        for scripted in self._failures.scripted:
            if scripted.covers(attempt):
                return scripted.answer
        for chance in self._failures.random:
            if self._rng.random() < chance.probability:
                return chance.answer
        return None

    def outage_left(self, now: float) -> float | None:
        """Seconds until the current outage ends (None when no outage is on)."""
        elapsed = now - self._applied_at
        for outage in self._failures.outages:
            end = outage.start_s + outage.duration_s
            if outage.start_s <= elapsed < end:
                return end - elapsed
        return None
