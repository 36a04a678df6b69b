"""Time scaling: every duration of a scenario times `x`, and the floors no scale may cross.

`Scenario.scaled` applies these to each part of the scenario; the parts that are not
plain fields (settings by environment name, the mock's behaviours, faults) are scaled
here, by name: a field named `*_s` is seconds, a rate is per second.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Context, Decimal
from typing import Any

from celery.utils.time import rate as parse_rate

from .errors import ScenarioError
from .faults import FAULT, Fault
from .settings import DURATION_SETTINGS, NO_VALUE, RATE_SETTINGS, SettingValue, env_value

# Below these the harness cannot time a run faithfully, whatever the scale. Celery's ETA timer
# fires 0.1-0.3 s late at worst, and measured lateness on 2 cores (`harness matrix
# --time-scale 0.25`, 0.5 s spacing) is 0.01 s median and at most 0.17 s; an on-time bound
# under 0.5 s, or a spacing under 0.1 s, would turn scheduling noise into verdicts.
MIN_SPACING_S = 0.1
MIN_ON_TIME_S = 0.5


def check_scale(x: float, named: str, min_time_scale: float | None) -> None:
    """Refuse a scale out of range, or under the scenario's own least one."""
    if not 0 < x <= 100:
        raise ScenarioError(f"time scale must be above 0 and at most 100, got {x}")
    if min_time_scale is not None and x < min_time_scale:
        raise ScenarioError(
            f"{named} runs at a time scale of at least {min_time_scale:g} "
            f"(got {x:g}): a broker's own timer, which no scale changes, decides its verdicts"
        )


def check_floors(named: str, x: float, spacing_s: float, on_time_s: float) -> None:
    """Refuse a scale that takes the spacing or the on-time bound (as written) under its
    floor, naming the least scale that lifts both."""
    floors = [
        ("flow.spacing_s", spacing_s, MIN_SPACING_S),
        ("tolerances.on_time_s", on_time_s, MIN_ON_TIME_S),
    ]
    below = [
        f"{field} {written:g} s into {written * x:g} s, below the {floor:g} s floor"
        for field, written, floor in floors
        if written * x < floor
    ]
    if below:  # the scale suggested must lift every bound, not only the first one named
        least = max(least_scale(written, floor) for _, written, floor in floors)
        raise ScenarioError(
            f"{named}: time scale {x:g} makes {', and '.join(below)}; "
            "under these floors Celery's ETA timer and a cold worker would turn scheduling "
            f"noise into verdicts; use a time scale of at least {least:f}"
        )


def least_scale(written: float, floor: float) -> Decimal:
    """The least scale, to 6 significant digits, that keeps `written` at `floor` or above."""
    context = Context(prec=6, rounding=ROUND_CEILING)
    least = context.divide(Decimal(repr(floor)), Decimal(repr(written)))
    while written * float(least) < floor:  # as `scaled` computes it, in binary floats
        least = context.next_plus(least)
    return least


def scaled_fault(fault: Fault, x: float) -> Fault:
    """Its times, windows and the behaviours it switches on, as `[api]`'s are scaled;
    never a stop's grace, which races the worker's warm shutdown, and that takes as long
    (seconds for prefork and gevent) at any time scale."""
    scaled = scaled_behaviours(fault.model_dump(mode="json", exclude_none=True), x)
    if fault.grace_s is not None:
        scaled["grace_s"] = fault.grace_s
    return FAULT.validate_python(scaled)


def scaled_settings(values: dict[str, SettingValue], x: float) -> dict[str, SettingValue]:
    """Duration settings times `x`; rate settings per second, divided by `x`."""
    scaled = dict(values)
    for name, value in values.items():
        text = env_value(value).strip()
        if text.lower() in NO_VALUE:
            continue
        if name in DURATION_SETTINGS:
            scaled[name] = float(text) * x
        elif name in RATE_SETTINGS:  # per second: N/m at scale x is N/(60x) per second
            scaled[name] = f"{parse_rate(text) / x:g}/s"
    return scaled


def scaled_behaviours(value: Any, x: float, key: str = "") -> Any:
    """Fields named `*_s` are seconds and scale by `x`; `messages_per_second` scales by 1/x."""
    if isinstance(value, dict):
        return {k: scaled_behaviours(v, x, k) for k, v in value.items()}
    if isinstance(value, list):
        return [scaled_behaviours(item, x, key) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        if key.endswith("_s"):
            return value * x
        if key == "messages_per_second":
            return value / x
    return value
