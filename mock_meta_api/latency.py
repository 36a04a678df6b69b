"""Latency models: how long the mock waits before answering a send.

Seeded, so a scenario replays the same delays; per phone number overrides
let one business number be slow while another is fast.
"""

from __future__ import annotations

import math
import random

from .config import (
    FixedLatency,
    Latency,
    LatencyModel,
    LognormalLatency,
    NoLatency,
    NormalLatency,
    UniformLatency,
)


def _clip(value: float, max_s: float | None) -> float:
    value = max(0.0, value)
    return value if max_s is None else min(value, max_s)


def draw(model: LatencyModel, rng: random.Random) -> float:
    """One delay in seconds from `model`."""
    match model:
        case NoLatency():
            return 0.0
        case FixedLatency(value_s=value):
            return value
        case UniformLatency(low_s=low, high_s=high):
            return rng.uniform(low, high)
        case NormalLatency(mean_s=mean, stddev_s=stddev, max_s=max_s):
            return _clip(rng.gauss(mean, stddev), max_s)
        case LognormalLatency(median_s=median, sigma=sigma, max_s=max_s):
            return _clip(rng.lognormvariate(math.log(median), sigma), max_s)
    raise TypeError(f"unknown latency model {model!r}")


class LatencySampler:
    """Draws delays for a Latency behaviour: one generator per business number.

    With a seed, every number's generator starts from it: each number replays the same
    sequence of delays, whatever the other numbers do, so lanes that share the mock are
    compared under the same API.
    """

    def __init__(self, latency: Latency) -> None:
        self._latency = latency
        self._rngs: dict[str, random.Random] = {}

    def sample(self, phone_number_id: str) -> float:
        model = self._latency.per_phone_number.get(phone_number_id, self._latency.default)
        rng = self._rngs.get(phone_number_id)
        if rng is None:
            rng = self._rngs[phone_number_id] = random.Random(self._latency.seed)
        return draw(model, rng)
