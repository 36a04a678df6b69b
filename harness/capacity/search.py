"""The search for a configuration's knee: grow the rate until a step is not kept on time,
then bisect between the highest rate kept and the lowest not, then repeat the knee's step.

Pure functions of the steps so far, so a stored run can be re-checked and the tests can
drive the search with made-up outcomes. Rates are compared on a log scale (the geometric
mean bisects), since a knee may lie anywhere from 0.01 to 100 requests per second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..scenario import CapacitySettings

Stopped = Literal["bracketed", "max-steps", "max-rate", "min-rate", "budget"]


@dataclass(frozen=True)
class Outcome:
    """What a step found, as the search needs it: its rate and whether it was kept on time."""

    rate: float
    passed: bool
    repeat: bool = False


@dataclass(frozen=True)
class Next:
    """The next step to run: its rate, and whether it repeats an earlier one."""

    rate: float
    repeat: bool = False


@dataclass(frozen=True)
class Knee:
    """The highest rate kept on time at every step run at it, and what bounds it above."""

    rate: float | None  # None: no rate was kept on time
    above: float | None  # the lowest rate above it not kept on time (None: none ran)
    stable: bool  # every run at the knee's rate was kept on time

    @property
    def resolution(self) -> float | None:
        """How far above the knee the true one may lie, as a share of it."""
        if self.rate is None or self.above is None:
            return None
        return self.above / self.rate - 1


def knee(steps: Sequence[Outcome]) -> Knee:
    """A rate counts as kept on time only if every step at it was (the repeat included)."""
    by_rate: dict[float, list[bool]] = {}
    for step in steps:
        by_rate.setdefault(step.rate, []).append(step.passed)
    kept = [rate for rate, passed in by_rate.items() if all(passed)]
    best = max(kept, default=None)
    wavered = [rate for rate, passed in by_rate.items() if any(passed) and not all(passed)]
    above = [
        rate
        for rate, passed in by_rate.items()
        if not all(passed) and (best is None or rate > best)
    ]
    stable = not any(best is None or rate > best for rate in wavered)
    return Knee(best, min(above, default=None), stable)


def next_step(
    steps: Sequence[Outcome], settings: CapacitySettings, first: float, least: float
) -> tuple[Next | None, Stopped | None]:
    """The next step, or None and why the search is over.

    `first` is the first rate to try; `least` the lowest rate a step can offer (one
    request within its load). Growth and bisection use the search's own steps; the
    repeat, once they are done, runs the knee's rate again.
    """
    searched = [s for s in steps if not s.repeat]
    if len(steps) >= settings.max_steps:
        return None, "max-steps"
    # The last step is kept for the repeat: a search that uses every step still measures
    # its knee's spread.
    search_steps = settings.max_steps - (1 if settings.repeat and settings.max_steps > 1 else 0)
    if not searched:
        return Next(_within(first, least, settings.max_rate)), None
    found = knee(searched)
    stop: Stopped | None = None
    rate: float | None = None
    if found.rate is None:  # nothing kept on time yet: come down
        lowest = min(s.rate for s in searched)
        rate = lowest / settings.growth
        if lowest <= least * (1 + 1e-9):
            stop = "min-rate"
        rate = max(rate, least)
    elif found.above is None:  # everything kept on time: go up
        if found.rate >= settings.max_rate * (1 - 1e-9):
            stop = "max-rate"
        rate = min(found.rate * settings.growth, settings.max_rate)
    elif found.above <= found.rate * (1 + settings.resolution):
        stop = "bracketed"
    else:
        rate = math.sqrt(found.rate * found.above)
    if stop is None and len(searched) >= search_steps:
        stop = "max-steps"
    if stop is None and rate is not None:
        return Next(rate), None
    knee_rate = knee(steps).rate
    repeated = any(s.repeat for s in steps)
    if settings.repeat and not repeated and knee_rate is not None:
        return Next(knee_rate, repeat=True), stop
    return None, stop


def _within(rate: float, least: float, most: float) -> float:
    return min(max(rate, least), most)
