"""A capacity run's reports: report.md, report.html and plots/capacity.svg.

One table of knees beside their theory, one table of every step (so a knee can be
checked against the steps that found it), and one plot: offered rate against the p95
lateness per configuration, each knee marked, the on-time bound drawn across. Drawn
only from results.json, so `harness report RUN_DIR` redraws any capacity run.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..capacity.results import CapacityResults, ConfigResult, read_capacity
from ..results import write_atomic
from .data import MARKERS, PALETTE
from .render import render
from .style import INK, STYLE, time_unit, to_svg

PLOT = "capacity.svg"
BUSY = 0.2  # busier than this before the run: other work is sharing the machine
SATURATED = 0.9  # a step this busy may have been set by the machine, not the pool
KNEE_COLUMNS = (
    ("configuration", "l"),
    ("pool", "l"),
    ("concurrency", "r"),
    ("knee (requests/s)", "r"),
    ("parts/s", "r"),
    ("not kept at", "r"),
    ("theory (requests/s)", "r"),
    ("limited by", "l"),
    ("knee / theory", "r"),
    ("steps", "r"),
    ("search ended", "l"),
)
STEP_COLUMNS = (
    ("configuration", "l"),
    ("round", "r"),
    ("rate (requests/s)", "r"),
    ("offered", "r"),
    ("requests", "r"),
    ("delivered / expected", "r"),
    ("lost", "r"),
    ("refused", "r"),
    ("late", "r"),
    ("duplicated", "r"),
    ("out of order", "r"),
    ("lateness p50 / p95 / max (s)", "r"),
    ("mean send (s)", "r"),
    ("worker CPU per part (ms)", "r"),
    ("machine busy (peak)", "r"),
    ("kept on time", "l"),
    ("run", "l"),
)
KNEE_NOTE = (
    "The knee is the highest rate of fixtures requests kept on time (lateness p95 within "
    "the on-time bound, nothing lost) at every step run at it; `not kept at` is the lowest "
    "rate above it that was not, so the true knee lies between them. Theory: the pool's "
    "slots over the mean send time, Meta's throughput limit, and the worker's CPU per "
    "part over the cores it can use, each over the parts per request; the lowest bounds. "
    "A step not kept on time while the machine was 90% busy or more may have been set by "
    "the machine (every lane shares it), not by the pool: its row says so."
)
STEP_NOTE = (
    "Each round is one stack with every configuration still searching under its own "
    "steady load, side by side. Offered: the fixtures requests per second Locust sent, "
    "from the first to the last (below the rate, the load fell behind). A lost part counts as late "
    "by the grace in the p95 (shown as >=). Machine busy is the share of every core in use "
    "during the round, all lanes together, and in its busiest second (peak): near 100%, "
    "the machine, not the pool, may have set the outcome."
)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _busy(share: float | None) -> str:
    if share is None:
        return ""
    return f", {share:.0%} busy before the first round" + (
        " (other work: every knee is lower than this machine allows)" if share > BUSY else ""
    )


def knee_rows(results: CapacityResults) -> list[list[str]]:
    rows = []
    for config in results.configs:
        bounds = config.theory
        knee = _rate(config.knee_rps)
        if config.knee_rps is not None and not config.stable:
            knee += " (a repeat was not kept)"
        above = _rate(config.above_rps)
        busy = [
            peak
            for s in config.steps
            if s.rate_rps == config.above_rps
            and (peak := s.machine_busy if s.machine_peak is None else s.machine_peak) is not None
        ]
        if busy and max(busy) >= SATURATED:
            above += f" (machine {max(busy):.0%} busy)"
        rows.append(
            [
                config.lane,
                config.pool,
                str(config.concurrency),
                knee,
                _rate(None if config.knee_rps is None else config.knee_rps * results.parts),
                above,
                "-" if bounds is None else _rate(bounds.bound_rps),
                "-" if bounds is None else bounds.limited_by,
                "-" if config.of_theory is None else f"{config.of_theory:.0%}",
                str(len(config.steps)),
                config.stopped or "-",
            ]
        )
    return rows


def step_rows(results: CapacityResults) -> list[list[str]]:
    rows = []
    for config in results.configs:
        for step in config.steps:
            at_least = ">=" if step.p95_at_least else ""
            late = (
                f"{_secs(step.lateness_p50_s)} / {at_least}{_secs(step.lateness_p95_s)} / "
                f"{_secs(step.lateness_max_s)}"
            )
            cpu = step.worker_cpu_s_per_part
            busy = step.machine_busy
            rows.append(
                [
                    config.lane,
                    str(step.round) + (" (repeat)" if step.repeat else ""),
                    _rate(step.rate_rps),
                    _rate(step.offered_rps),
                    str(step.requests),
                    f"{step.delivered} / {step.parts_expected}",
                    str(step.lost),
                    str(step.refused),
                    str(step.late),
                    str(step.duplicated),
                    str(step.out_of_order),
                    late,
                    _secs(step.mean_send_s),
                    "-" if cpu is None else f"{cpu * 1000:.1f}",
                    ("-" if busy is None else f"{busy:.0%}")
                    + ("" if step.machine_peak is None else f" ({step.machine_peak:.0%})"),
                    "yes" if step.passed else "no",
                    step.run_dir,
                ]
            )
    return rows


def facts(results: CapacityResults) -> list[tuple[str, str]]:
    settings = results.settings
    schedule = (results.parts - 1) * results.spacing_s
    unit = time_unit(results.time_scale)
    latency = ", ".join(f"{k} {v}" for k, v in results.latency.items())
    api = "off" if results.api_mps is None else f"{results.api_mps:g} messages/s per number"
    equal = "; ".join(" = ".join(group) for group in results.equal) or "none"
    return [
        ("scenario", f"{results.scenario}: {results.description}"),
        ("complete", "yes" if results.complete else "no: cut short, the steps so far"),
        ("flow", f"{results.parts} parts {results.spacing_s:g} {unit} apart per request"),
        ("Cloud API latency", latency),
        ("Cloud API throughput limit", api),
        ("on time", f"lateness p95 within {results.on_time_s:g} {unit}, nothing lost"),
        (
            "each step",
            f"a steady load for {settings.load_s:g} {unit}, at the full part rate for the "
            f"last {max(0.0, settings.load_s - schedule):g} {unit} of it (each request's "
            f"parts span {schedule:g} {unit}); a part not at the API "
            f"{results.missing_after_s:g} {unit} after it is due is lost",
        ),
        (
            "search",
            f"from {settings.start:g} x the theory, x{settings.growth:g} until a step is not "
            f"kept, then bisect to within {settings.resolution:.0%}; at most "
            f"{settings.max_steps} steps each"
            + (", the knee's step repeated" if settings.repeat else "")
            + f"; no round begun past {settings.budget_s:g} {unit}",
        ),
        ("noise", f"p95 differences within {results.noise_s:.2f} {unit} are noise"),
        ("knees equal within their ranges", equal),
        ("machine", f"{results.cores} cores{_busy(results.busy_before)}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in results.versions.items())),
    ]


def capacity_svg(results: CapacityResults) -> str:
    """Offered rate (log) against the p95 lateness, per configuration, knees marked."""
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 5.2))
        ax = figure.subplots()
        ax.set_xscale("log")
        for i, config in enumerate(results.configs):
            colour, marker = PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]
            steps = sorted(
                (s for s in config.steps if s.lateness_p95_s is not None),
                key=lambda s: (s.rate_rps, s.round),
            )
            if not steps:
                continue
            xs = [s.rate_rps for s in steps]
            ys = [s.lateness_p95_s for s in steps]
            ax.plot(xs, ys, color=colour, linewidth=1, alpha=0.6)
            for step in steps:
                ax.scatter(
                    [step.rate_rps],
                    [step.lateness_p95_s],
                    marker=marker,
                    s=36,
                    color=colour if step.passed else "white",
                    edgecolors=colour,
                    linewidths=1.4,
                    zorder=3,
                )
            label = config.lane
            if config.knee_rps is not None:
                ax.axvline(config.knee_rps, color=colour, linewidth=1.2, linestyle=":")
                label += f" (knee {config.knee_rps:.3g}/s)"
            ax.plot([], [], color=colour, marker=marker, label=label)
        ax.axhline(results.on_time_s, color=INK, linestyle="--", linewidth=1)
        ax.annotate(
            f"on time up to {results.on_time_s:g} s",
            (0.01, results.on_time_s),
            xycoords=("axes fraction", "data"),
            fontsize=8,
            va="bottom",
        )
        ax.set_yscale("symlog", linthresh=max(results.on_time_s, 0.1))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("fixtures requests per second, each step's rate (log)")
        ax.set_ylabel("lateness p95 (s)")
        ax.set_title(
            "Capacity: each step's p95 lateness (hollow: not kept on time; dotted: the knee)",
            loc="left",
        )
        ax.legend(loc="upper left", ncols=min(2, len(results.configs)))
        return to_svg(figure, PLOT)


def _view(results: CapacityResults) -> dict[str, object]:
    """What both templates show: the facts, both tables with their notes, the scenario."""
    return {
        "results": results,
        "facts": facts(results),
        "knee_columns": KNEE_COLUMNS,
        "knee_rows": knee_rows(results),
        "knee_note": KNEE_NOTE,
        "step_columns": STEP_COLUMNS,
        "step_rows": step_rows(results),
        "step_note": STEP_NOTE,
        "plot": PLOT,
        "as_run": json.dumps(results.scenario_definition, indent=2),
    }


def render_markdown(results: CapacityResults) -> str:
    """report.md (templates/capacity.md), linking plots/capacity.svg."""
    return render("capacity.md", **_view(results))


def render_html(results: CapacityResults, svg: str) -> str:
    """report.html (templates/capacity.html), the plot inlined."""
    return render("capacity.html", **_view(results), svg=svg)


def write_capacity_reports(run_dir: Path) -> tuple[Path, Path]:
    """report.md, report.html and plots/capacity.svg beside the run's results.json."""
    results = read_capacity(run_dir)
    svg = capacity_svg(results)
    (run_dir / "plots").mkdir(exist_ok=True)
    write_atomic(run_dir / "plots" / PLOT, svg)
    write_atomic(run_dir / "report.md", render_markdown(results))
    write_atomic(run_dir / "report.html", render_html(results, svg))
    return run_dir / "report.md", run_dir / "report.html"


def summary(config: ConfigResult, parts: int) -> str:
    """One line for the terminal: the knee and how it compares with the theory."""
    if config.knee_rps is None:
        return f"{config.lane}: no rate kept on time"
    knee = config.knee_rps
    line = f"{config.lane}: knee {knee:.3g} requests/s ({knee * parts:.3g} parts/s)"
    if config.theory is not None and config.of_theory is not None:
        line += f", {config.of_theory:.0%} of the theory ({config.theory.limited_by})"
    return line
