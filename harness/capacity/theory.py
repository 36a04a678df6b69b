"""What a configuration could carry at best, to set beside the knee measured.

Three bounds, in fixtures requests per second (parts per second over the parts per
request), the lowest of which is the theoretical knee:
- the pool: `concurrency` sends at once, each holding its slot for the mean send time
  (a solo worker has one slot, whatever its concurrency says);
- the API: Meta's throughput limit per business number, when the mock enforces it;
- the CPU: the worker's own CPU time per part against the cores it can use (one
  process for solo, threads, gevent and eventlet, whose Python runs one thread at a
  time; up to `concurrency` processes for prefork, at most the machine's cores).
"""

from __future__ import annotations

import random
from statistics import fmean
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from mock_meta_api.config import LatencyModel
from mock_meta_api.latency import draw

Limit = Literal["pool", "api", "cpu"]
SAMPLES = 20_000  # draws of the latency model for its mean: within 1% for every shipped model


class Theory(BaseModel):
    """The bounds for one configuration and which of them is the lowest."""

    mean_send_s: float = Field(description="Mean time a send holds a pool slot (s).")
    mean_send_from: Literal["measured", "latency model"]
    slots: int = Field(description="Sends the pool runs at once (solo: 1).")
    pool_rps: float = Field(description="slots / mean send time / parts per request.")
    api_rps: float | None = Field(description="The API's throughput limit / parts (None: off).")
    cpu_rps: float | None = Field(
        description="Usable cores / the worker's CPU seconds per part / parts (None: not measured)."
    )
    bound_rps: float
    limited_by: Limit


def mean_latency(model: dict[str, Any], seed: int = 0) -> float:
    """The mean of a latency model, as the mock draws it (clipping included)."""
    parsed = TypeAdapter(LatencyModel).validate_python(model)
    rng = random.Random(seed)
    return fmean(draw(parsed, rng) for _ in range(SAMPLES))


def slots(pool: str, concurrency: int) -> int:
    return 1 if pool == "solo" else concurrency


def usable_cores(pool: str, concurrency: int, cores: int) -> int:
    return min(concurrency, cores) if pool == "prefork" else 1


def theory(
    *,
    pool: str,
    concurrency: int,
    parts: int,
    mean_send_s: float,
    measured: bool,
    api_mps: float | None,
    cpu_s_per_part: float | None,
    cores: int,
) -> Theory:
    """The bounds for a configuration; a mean send time of 0 is taken as 1 ms."""
    n = slots(pool, concurrency)
    pool_rps = n / max(mean_send_s, 0.001) / parts
    api_rps = None if api_mps is None else api_mps / parts
    cpu_rps = None
    if cpu_s_per_part is not None and cpu_s_per_part > 0:
        cpu_rps = usable_cores(pool, concurrency, cores) / cpu_s_per_part / parts
    bounds: dict[Limit, float | None] = {"pool": pool_rps, "api": api_rps, "cpu": cpu_rps}
    limited_by, bound = min(
        ((name, value) for name, value in bounds.items() if value is not None),
        key=lambda item: item[1],
    )
    return Theory(
        mean_send_s=mean_send_s,
        mean_send_from="measured" if measured else "latency model",
        slots=n,
        pool_rps=pool_rps,
        api_rps=api_rps,
        cpu_rps=cpu_rps,
        bound_rps=bound,
        limited_by=limited_by,
    )
