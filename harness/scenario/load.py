"""A scenario's `[load]` table: a Locust load test instead of one request per lane.

Its shapes (how many users run at each moment) are pure functions, so the Locust shape
class and the tests agree on the numbers.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .strict import Strict

Shape = Literal["steady", "step", "spike"]
SHAPES: tuple[Shape, ...] = ("steady", "step", "spike")
STEPS = 4  # `step`: users rise in this many equal steps over the run
SPIKE_BASE = 0.25  # `spike`: the share of users before and after the spike
SPIKE_WINDOW = (0.4, 0.6)  # `spike`: the spike spans this part of the run


def users_at(shape: Shape, elapsed_s: float, users: int, run_time_s: float) -> int | None:
    """Users wanted `elapsed_s` into the run (None once it is over).

    - steady: `users` the whole run;
    - step: `users` / 4 more every quarter of the run;
    - spike: a quarter of `users`, all of them for the middle fifth of the run, then a
      quarter again.
    Never below 1 while the run lasts, so every lane always has a user.
    """
    if elapsed_s >= run_time_s:
        return None
    share = elapsed_s / run_time_s
    if shape == "steady":
        wanted = float(users)
    elif shape == "step":
        wanted = users * (math.floor(share * STEPS) + 1) / STEPS
    else:
        low, high = SPIKE_WINDOW
        wanted = users if low <= share < high else users * SPIKE_BASE
    return max(1, math.ceil(wanted))


class Thresholds(Strict):
    """Bounds on a load test, per lane; a lane expected to pass that exceeds one fails the run."""

    max_fail_ratio: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None,
        description="The most a lane may fail: failed webhook requests and delivery failures "
        "over all of the lane's rows, 0 to 1 (unset: no bound). --max-fail-ratio overrides.",
    )
    max_lateness_p95_s: Annotated[float, Field(gt=0, le=3600)] | None = Field(
        default=None,
        description="The most a lane's delivery-lateness p95 may be, in seconds, as Locust "
        "measured it (unset: no bound); scales with the run. --max-lateness-p95 overrides.",
    )


class Load(Strict):
    """A Locust load test instead of one request per lane: every lane under the same load.

    `users` and `spawn_rate` are per lane: each lane's webhook gets that many users, each
    posting a signed inbound text every `pace_s` seconds (`fixtures_share` of them
    "fixtures"), shaped over `run_time_s` by `shape`.
    """

    users: Annotated[int, Field(ge=1, le=500)] = Field(
        description="Users per lane (each lane's webhook gets this many), 1 to 500."
    )
    spawn_rate: Annotated[float, Field(gt=0, le=1000)] = Field(
        default=1.0,
        description="Users started per second, per lane (above 0, at most 1000); divided by "
        "the time scale.",
    )
    run_time_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        description="How long users send, in seconds (above 0, at most 3600); then the test "
        "waits for the last parts. Scales with the run."
    )
    pace_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=5.0,
        description="Seconds between one user's requests (users are spread over the pace; "
        "0: no wait). Scales with the run.",
    )
    shape: Shape = Field(
        default="steady",
        description="How users come and go over run_time_s: `steady`; `step` (a quarter more "
        "users each quarter of the run); `spike` (a quarter of the users, all of them from "
        "40 % to 60 % of the run).",
    )
    fixtures_share: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.9,
        description='The share of requests that are "fixtures", 0 to 1 (the rest: other texts).',
    )
    workers: Annotated[int, Field(ge=0, le=8)] = Field(
        default=0,
        description="Locust worker processes under a master on loopback, 0 to 8 (0: one "
        "process). --workers overrides.",
    )
    rates: dict[str, Annotated[float, Field(gt=0, le=1000)]] = Field(
        default_factory=dict,
        description="A rate of its own for every lane, in fixtures requests per second "
        "({ solo = 0.05, gevent = 1.2 }): the lane's users are pinned to it and share its "
        "rate, `pace_s` unused; needs shape = 'steady' and no workers (a capacity step). "
        "Empty: every lane gets `users` / `pace_s`. Multiplied by 1 / the time scale.",
    )
    thresholds: Thresholds = Field(
        default_factory=Thresholds,
        description="Bounds per lane; a lane expected to pass that exceeds one fails the run.",
    )

    @model_validator(mode="after")
    def _rates_steady(self) -> Load:
        """A rate per lane is an open-loop load: its users are pinned to their lane, which
        a shape that stops users, or workers that each number their own, would unbalance."""
        if self.rates and self.shape != "steady":
            raise ValueError(f"rates need shape = 'steady' (got {self.shape!r})")
        if self.rates and self.workers:
            raise ValueError(f"rates need one Locust process: workers = 0 (got {self.workers})")
        return self

    def scaled(self, x: float) -> Load:
        p95 = self.thresholds.max_lateness_p95_s
        return self.model_copy(
            update={
                "run_time_s": self.run_time_s * x,
                "pace_s": self.pace_s * x,
                "spawn_rate": self.spawn_rate / x,
                "rates": {lane: rate / x for lane, rate in self.rates.items()},
                "thresholds": self.thresholds.model_copy(
                    update={"max_lateness_p95_s": None if p95 is None else p95 * x}
                ),
            }
        )
