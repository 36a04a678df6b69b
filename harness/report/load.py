"""A load test's part of the reports: the load table, its notes and its plot.

Shared by report.md and report.html, like `text`: each writer adds only its markup.
The plot puts the load and its effect on one time axis: fixtures requests per second
per lane (above), and each delivered part's lateness at the moment it reached the API
(below), so a lane falling behind shows as lateness climbing while the load lasts.
"""

from __future__ import annotations

import math

import matplotlib
from matplotlib.figure import Figure

from ..load.figures import LoadResult
from ..wording import seconds
from .data import LOAD_PLOT, Report
from .style import INK, STYLE, time_unit, to_svg

LOAD_COLUMNS = (
    ("lane", "l"),
    ("fixtures requests (accepted)", "r"),
    ("webhook requests", "r"),
    ("webhook failures", "r"),
    ("webhook p50 / p99 (ms)", "r"),
    ("Locust: delivered", "r"),
    ("missing", "r"),
    ("duplicated", "r"),
    ("out of order", "r"),
    ("lateness p95 (s)", "r"),
    ("failure ratio", "r"),
)
LOAD_NOTE = (
    "From Locust's side: every webhook request, and every part as the load test saw it "
    "arrive (lateness = API receipt minus request sent plus seq x spacing, webhook time "
    "included; a part not at the API within the grace is missing there, though the checks "
    "above may still see it arrive). The verdicts above are the checks', from the bot's "
    "outbox, the workers' events and the mock's journal. Locust's own report: locust.html "
    "in the run directory."
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def load_rows(load: LoadResult) -> list[list[str]]:
    """One row per lane, in `LOAD_COLUMNS` order."""
    rows = []
    for lane in load.lanes:
        ratio = "-" if lane.fail_ratio is None else f"{lane.fail_ratio:.3f}"
        rows.append(
            [
                lane.lane,
                f"{lane.fixtures_requests} ({lane.fixtures_accepted})",
                "-" if lane.webhook_requests is None else str(lane.webhook_requests),
                "-" if lane.webhook_failures is None else str(lane.webhook_failures),
                f"{_ms(lane.webhook_p50_ms)} / {_ms(lane.webhook_p99_ms)}",
                "-" if lane.locust_delivered is None else str(lane.locust_delivered),
                "-" if lane.locust_missing is None else str(lane.locust_missing),
                "-" if lane.locust_duplicated is None else str(lane.locust_duplicated),
                "-" if lane.locust_out_of_order is None else str(lane.locust_out_of_order),
                seconds(lane.locust_lateness_p95_s),
                ratio,
            ]
        )
    return rows


def load_facts(load: LoadResult) -> list[str]:
    """The load as run, its thresholds, and Locust's verdict on them."""
    spec = load.load
    thresholds = spec.get("thresholds", {})
    bounds = []
    if thresholds.get("max_fail_ratio") is not None:
        bounds.append(f"failure ratio <= {thresholds['max_fail_ratio']:g}")
    if thresholds.get("max_lateness_p95_s") is not None:
        bounds.append(f"delivery-lateness p95 <= {thresholds['max_lateness_p95_s']:g} s")
    pace = f"one request each every {spec['pace_s']:g} s"
    if spec.get("rates"):  # a capacity step: each lane at its own rate
        rates = ", ".join(f"{lane} {rate:.3g}" for lane, rate in spec["rates"].items())
        pace = f"sharing their lane's rate ({rates} requests/s)"
    facts = [
        f"{spec['users']} users per lane ({spec['shape']}), {pace}, "
        f"{spec['fixtures_share']:.0%} of them fixtures, for "
        f"{spec['run_time_s']:g} s; {spec['workers'] or 'no'} Locust workers",
        "thresholds (lanes expected to pass): " + (", ".join(bounds) or "none"),
        f"Locust's exit status: {'-' if load.exit_code is None else load.exit_code}",
    ]
    facts += [f"exceeded: {line}" for line in load.exceeded]
    if load.error is not None:
        facts.append(f"the load did not run: {load.error}")
    return facts


def load_svg(report: Report) -> str:
    """Fixtures requests per second per lane, and each part's lateness as it arrived."""
    load = report.results.load
    assert load is not None
    # Requests come a few a second at most: averaged over a window, the rate reads as one.
    window = max(1, math.ceil(load.load["run_time_s"] / 15))
    unit = time_unit(report.results.time_scale)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 6.2))
        rate_ax, late_ax = figure.subplots(2, 1, sharex=True, height_ratios=(1, 2))
        for lane in report.lanes:
            figures = load.lane(lane.name)
            style = {"color": lane.style.colour}
            if figures is not None and figures.rate:
                rates, edges = _smoothed(figures.rate, window)
                rate_ax.stairs(rates, edges, label=lane.name, linewidth=1.4, **style)
            points = [
                (p.received_s, p.lateness_s)
                for p in lane.parts
                if p.received_s is not None and p.lateness_s is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                late_ax.scatter(xs, ys, s=10, marker=lane.style.marker, alpha=0.7, **style)
        for bound in sorted({lane.result.on_time_s for lane in report.lanes}):
            late_ax.axhline(bound, color=INK, linestyle="--", linewidth=1)
            late_ax.annotate(f"late above {bound:g} s", (0, bound), fontsize=8, va="bottom")
        rate_ax.set_ylabel(f"fixtures requests / s\n(mean over {window} s)")
        rate_ax.set_title(
            f"Load: {load.load['users']} users per lane ({load.load['shape']})", loc="left"
        )
        rate_ax.legend(loc="upper right", ncols=min(4, len(report.lanes)))
        late_ax.set_ylabel(f"lateness ({unit})")
        late_ax.set_xlabel(f"time since the load started ({unit})")
        late_ax.set_title("Each part's lateness when it reached the API", loc="left")
        return to_svg(figure, LOAD_PLOT)


def _smoothed(per_second: list[int], window: int) -> tuple[list[float], list[int]]:
    """Requests per second, averaged over consecutive windows of `window` seconds."""
    rates = [
        sum(per_second[start : start + window]) / window
        for start in range(0, len(per_second), window)
    ]
    return rates, [i * window for i in range(len(rates) + 1)]
