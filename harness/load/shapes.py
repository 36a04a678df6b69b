"""Load shapes: how many users run at each moment of a load test, per lane.

Pure functions, so the Locust shape class and the tests agree on the numbers.
"""

from __future__ import annotations

import math
from typing import Literal

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
