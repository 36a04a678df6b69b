"""The report's plots, drawn with matplotlib as SVG text.

SVG because it stays sharp at any zoom and in print, and is text: the HTML report
inlines it, the Markdown report links the same files, and labels stay searchable. Only
`matplotlib.figure.Figure` is used (no pyplot), so nothing global is touched and no
display is needed. Output is deterministic (fixed id salt, no date), so a regenerated
report differs only where the run does.
"""

from __future__ import annotations

import math

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .data import LATENESS_PLOT, LOAD_PLOT, Lane, Report
from .load import load_svg
from .style import INK, STYLE, time_unit, to_svg
from .text import verdict


def _x_limit(report: Report) -> float:
    """One x range for every timeline, so lanes compare at a glance."""
    times = [0.0]
    for lane in report.lanes:
        for part in lane.parts:
            times += [t for t in (part.due_s, part.received_s, part.responded_s) if t is not None]
            times += [*part.extra_accepted_s, *part.refused_s]
            if part.due_s is not None:  # the end of its on-time band
                times.append(part.due_s + lane.result.on_time_s)
        times += [at for _, at in lane.faults_s]
    return max(times) * 1.03 + 0.1


def _segments(ax: Axes, rows: list[tuple[int, float, float]], **style: object) -> None:
    """Horizontal segments (seq, from, to) as one line with gaps: one SVG path, not one
    element per part."""
    xs: list[float] = []
    ys: list[float] = []
    for seq, start, end in rows:
        xs += [start, end, math.nan]
        ys += [seq, seq, math.nan]
    ax.plot(xs, ys, solid_capstyle="butt", **style)  # type: ignore[arg-type]


def _timeline(ax: Axes, lane: Lane) -> None:
    style, on_time_s = lane.style, lane.result.on_time_s
    due = [p for p in lane.parts if p.due_s is not None]
    _segments(
        ax,
        [(p.seq, p.due_s, p.due_s + on_time_s) for p in due],  # type: ignore[operator]
        color="#cccccc",
        linewidth=7,
        label=f"on time: within {on_time_s:g} s of due",
    )
    ax.scatter(
        [p.due_s for p in due],
        [p.seq for p in due],
        marker="|",
        s=90,
        color=INK,
        linewidths=1.2,
        label="expected send (due time)",
        zorder=3,
    )
    sent = [p for p in lane.parts if p.received_s is not None]
    answered = [p for p in sent if p.responded_s is not None]
    _segments(
        ax,
        [(p.seq, p.received_s, p.responded_s) for p in answered],  # type: ignore[misc]
        color=style.colour,
        linewidth=1.2,
        zorder=2,
    )
    for label, times, face in (
        ("API receipt", [(p.received_s, p.seq) for p in sent], style.colour),
        ("API response", [(p.responded_s, p.seq) for p in answered], "white"),
    ):
        ax.scatter(
            [at for at, _ in times],
            [seq for _, seq in times],
            marker=style.marker,
            s=34,
            facecolors=face,
            edgecolors=style.colour,
            linewidths=1.3,
            label=label,
            zorder=4,
        )
    _marks(ax, lane)


def _marks(ax: Axes, lane: Lane) -> None:
    """What a clean run lacks, each counted in the legend: late, overtaken, missing and
    duplicated parts, refused sends, faults."""
    ring = {"facecolors": "none", "edgecolors": INK, "linewidths": 1.4}
    sent = [p for p in lane.parts if p.received_s is not None]
    late = [(p.received_s, p.seq) for p in sent if p.late]
    _mark(ax, late, f"late: more than {lane.result.on_time_s:g} s after due", "o", 150, ring)
    by_response = lane.result.order_by == "api_response"
    overtaken = [
        (p.responded_s if by_response else p.received_s, p.seq) for p in sent if p.overtaken
    ]
    verb = "answered" if by_response else "received"
    _mark(ax, overtaken, f"out of order: a later part was {verb} first", "d", 160, ring)
    missing = [(p.due_s, p.seq) for p in lane.parts if p.missing and p.due_s is not None]
    _mark(ax, missing, "missing: never accepted", "X", 70, {"color": INK})
    extra = [(t, p.seq) for p in lane.parts for t in p.extra_accepted_s]
    _mark(ax, extra, "duplicate: accepted again", "*", 110, {"color": INK})
    refused = [(t, p.seq) for p in lane.parts for t in p.refused_s]
    _mark(ax, refused, "send refused or unanswered", "1", 60, {"color": "#666666"})
    for what, at in lane.faults_s:  # named on the line itself: several may strike one lane
        ax.axvline(at, color=INK, linestyle="--", linewidth=1)
        ax.annotate(
            f"{what} at {at:.1f} s",
            (at, 1),
            xycoords=("data", "axes fraction"),
            xytext=(-3, -4),
            textcoords="offset points",
            rotation=90,
            ha="right",
            va="top",
            fontsize=8.5,
        )


def _mark(
    ax: Axes,
    points: list[tuple[float | None, int]],
    label: str,
    marker: str,
    size: float,
    style: dict[str, object],
) -> None:
    """Points that call for attention, with their count in the legend; none, no entry."""
    if points:
        xs, ys = zip(*points, strict=True)
        label = f"{label} ({len(points)})"
        ax.scatter(xs, ys, marker=marker, s=size, label=label, zorder=5, **style)  # type: ignore[arg-type]


def timeline_svg(report: Report, lane: Lane, x_max: float | None = None) -> str:
    """Per part (y): when it was due, reached the API and was answered (x)."""
    result = lane.result
    with matplotlib.rc_context(STYLE):
        rows = max([p.seq for p in lane.parts], default=0) + 1
        figure = Figure(figsize=(9, min(9.0, 2.4 + 0.14 * rows)))
        ax = figure.add_subplot()
        _timeline(ax, lane)
        concurrency = "" if result.concurrency is None else f", concurrency {result.concurrency}"
        title = f"{result.lane} ({result.pool} pool{concurrency}): {verdict(lane)}"
        ax.set_title(title, loc="left")
        ax.set_xlabel(f"time since the first request ({time_unit(report.results.time_scale)})")
        ax.set_ylabel("part (seq)")
        ax.set_xlim(0, x_max if x_max is not None else _x_limit(report))
        ax.set_ylim(-0.8, rows - 0.2)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        # Below the axes, where it can hide no part and no fault.
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.13), ncols=3, frameon=False)
        return to_svg(figure, lane.plot)


def lateness_svg(report: Report) -> str:
    """Every lane's lateness side by side: a box per lane and each part as a point."""
    lanes = report.lanes
    on_time = {lane.result.on_time_s for lane in lanes}
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 4.2))
        ax = figure.add_subplot()
        for x, lane in enumerate(lanes):
            values = lane.lateness
            if not values:
                ax.text(x, 0, "nothing\ndelivered", ha="center", va="bottom", fontsize=8.5)
                continue
            box = ax.boxplot(
                [values], positions=[x], widths=0.5, showfliers=False, patch_artist=True
            )
            for patch in box["boxes"]:
                patch.set(facecolor="none", edgecolor=lane.style.colour, linewidth=1.4)
            for key in ("whiskers", "caps", "medians"):
                for line in box[key]:
                    line.set(color=lane.style.colour, linewidth=1.4)
            # Spread points sideways by rank, deterministically, so they do not pile up.
            spread = [x - 0.18 + 0.36 * (i % 7) / 6 for i in range(len(values))]
            ax.scatter(
                spread,
                values,
                marker=lane.style.marker,
                s=18,
                color=lane.style.colour,
                alpha=0.75,
                zorder=3,
            )
        for bound in sorted(on_time):
            ax.axhline(
                bound, color=INK, linestyle="--", linewidth=1, label=f"late above {bound:g} s"
            )
        ax.legend(loc="best")
        names = [lane.name for lane in lanes]
        crowded = sum(len(name) + 4 for name in names) > 70  # characters across 9 inches
        ax.set_xticks(range(len(lanes)), names, rotation=20 if crowded else 0)
        for label, lane in zip(ax.get_xticklabels(), lanes, strict=True):
            label.set(
                color=lane.style.colour, fontweight="bold", ha="right" if crowded else "center"
            )
        ax.set_xlim(-0.6, len(lanes) - 0.4)
        ax.set_ylabel(f"lateness ({time_unit(report.results.time_scale)})")
        ax.set_title("Lateness per lane: API receipt minus due time", loc="left")
        return to_svg(figure, LATENESS_PLOT)


def draw(report: Report) -> dict[str, str]:
    """Every plot of the report (`Report.plots`) by file name, as SVG."""
    x_max = _x_limit(report)
    plots = {LATENESS_PLOT: lateness_svg(report)}
    for lane in report.lanes:
        plots[lane.plot] = timeline_svg(report, lane, x_max)
    if report.results.load is not None:
        plots[LOAD_PLOT] = load_svg(report)
    return plots
