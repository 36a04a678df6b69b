"""The words and figures both report formats print, so Markdown and HTML never disagree.

Each writer only adds its markup around these: the headline, the facts of the run, the
comparison table's cells, and each lane's verdict line.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..checks import LOST_STAGES, expected_reasons_text
from ..wording import describe_fault, seconds
from .data import Lane, Report

# The comparison table: (heading, alignment) per column, "l" or "r".
COLUMNS = (
    ("lane", "l"),
    ("pool", "l"),
    ("broker", "l"),
    ("celery / kombu", "l"),
    ("concurrency", "r"),
    ("delivered", "r"),
    ("on time", "r"),
    ("late", "r"),
    ("duplicated", "r"),
    ("failed", "r"),
    ("lost", "r"),
    ("order inversions", "r"),
    ("lateness p50 (s)", "r"),
    ("p95 (s)", "r"),
    ("max (s)", "r"),
    ("throughput (parts/s)", "r"),
    ("verdict", "l"),
    ("expected", "l"),
)
VERDICT_COLUMN = [heading for heading, _ in COLUMNS].index("verdict")
EXPECTED_COLUMN = [heading for heading, _ in COLUMNS].index("expected")
# Each lane's own versions, as its worker reported them (a lane may run its own release).
LANE_PACKAGES = ("python", "celery", "kombu", "amqp", "redis", "billiard", "gevent", "eventlet")
LANE_ENV_COLUMNS = ("lane", "backend", "broker asked for", "broker server", *LANE_PACKAGES)
LANE_ENV_NOTE = (
    "Each lane's environment: where it ran (local processes or compose containers), the "
    "broker its scenario asked for and the server that answered (its own name and "
    "version), and the packages its worker reported at start-up:"
)
TABLE_NOTE = (
    "The ledger: each part the requests asked for is on time, late, duplicated (accepted "
    "more than once), failed (the bot gave up, with the API's error code) or lost (never "
    "accepted, nor given up on), exactly one of them. "
    "Lateness: API receipt minus due time (request + countdown). Throughput: parts "
    "delivered per second, from the request to the lane's last API answer. "
    "Expected: the scenario's expectation, ✓ when the lane met it."
)
PLOTS_NOTE = (
    "Timelines, one per lane, on one time axis: x is the time since the first request, y the part "
    "(seq). A bar marks when each part was due and the shaded band how long it may take; "
    "a filled marker is when the API received the part, a hollow one when it answered. A "
    "ring marks a late part, a diamond one overtaken by a later part, a cross a missing "
    "one. Each lane keeps its colour and marker in every plot."
)


def verdict(lane: Lane) -> str:
    """`pass`, or `fail (late, out-of-order)`."""
    result = lane.result
    return result.verdict + (f" ({', '.join(result.reason_codes)})" if result.reason_codes else "")


def expected(lane: Lane) -> str:
    """What the scenario expects, and whether the lane did it: `fail (late) ✓`."""
    result = lane.result
    either = expected_reasons_text(result.expected_reasons, lane.or_because)
    reasons = f" ({either})" if either else ""
    return f"{result.expected_verdict}{reasons} {'✓' if result.as_expected else '✗'}"


def release(lane: Lane) -> str:
    """`5.3.6 / 5.3.4` as the lane's worker reported it; `-` from results without it."""
    versions = lane.result.versions
    if "celery" not in versions:
        return "-"
    return f"{versions['celery']} / {versions.get('kombu', '?')}"


def lane_versions(lane: Lane) -> list[str]:
    """One row of the lane environment table, in `LANE_ENV_COLUMNS` order. Results
    written before schema 2 did not record the backend: `not recorded`."""
    result = lane.result
    return [
        result.lane,
        result.backend or "not recorded",
        result.broker,
        result.broker_label,
        *(result.versions.get(package, "-") for package in LANE_PACKAGES),
    ]


def cells(lane: Lane) -> list[str]:
    """One row of the comparison table, in `COLUMNS` order."""
    result = lane.result
    throughput = lane.throughput_per_s
    pool = result.pool + (" (settings)" if result.pool_set_by == "settings" else "")
    return [
        result.lane,
        pool,
        result.broker_label,
        release(lane),
        "-" if result.concurrency is None else str(result.concurrency),
        f"{result.delivered}/{result.expected_messages}",
        *_ledger_cells(lane),
        str(result.order_inversions),
        seconds(result.lateness_p50_s),
        seconds(result.lateness_p95_s),
        seconds(result.lateness_max_s),
        "-" if throughput is None else f"{throughput:.2f}",
        verdict(lane),
        expected(lane),
    ]


def _ledger_cells(lane: Lane) -> list[str]:
    """On time, late, duplicated, failed, lost; `-` each where the ledger is unknown."""
    book = lane.ledger
    if book is None:
        return ["-"] * 5
    return [str(n) for n in (book.on_time, book.late, book.duplicated, book.failed, book.lost)]


def ledger_line(lane: Lane) -> str:
    """`ledger: 1 on time, 21 lost (21 received by a worker, never started)`."""
    book = lane.ledger
    if book is None:
        return f"ledger: {LEDGER_SOURCES['not recorded']}"
    said = [
        f"{book.on_time} on time",
        f"{book.late} late",
        f"{book.duplicated} duplicated",
    ]
    failed = f"{book.failed} failed"
    if book.failed_codes:
        failed += (
            " ("
            + ", ".join(
                f"{n} with no error code" if code == "none" else f"{n} with error {code}"
                for code, n in book.failed_codes.items()
            )
            + ")"
        )
    lost = f"{book.lost} lost"
    stages = [f"{n} {LOST_STAGES.get(stage, stage)}" for stage, n in book.lost_at.items() if n]
    if stages:
        lost += " (" + "; ".join(stages) + ")"
    return "ledger: " + ", ".join([*said, failed, lost])


def headline(report: Report) -> str:
    results = report.results
    if not results.complete:
        return "INTERRUPTED: the run was cut short, figures are partial"
    if results.as_expected:
        return "every lane reached the verdict its scenario expects"
    wrong = [lane.name for lane in report.lanes if not lane.result.as_expected]
    wrong += [f"{fault.action} {fault.lane} failed" for fault in results.faults if fault.failed]
    if results.load is not None and results.load.error is not None:
        wrong.append(results.load.error)
    if results.load is not None:  # a bound exceeded by a lane expected to pass
        wrong += [
            line
            for lane in report.lanes
            if lane.result.expected_verdict == "pass"
            for line in results.load.exceeded_by(lane.name)
        ]
    return f"NOT as expected: {', '.join(wrong)}"


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


LEDGER_SOURCES = {
    "history": "not recorded in results.json (written before the ledger): judged again "
    "from history.jsonl, every request's parts counted, as a fresh run counts them",
    "not recorded": "not recorded in results.json (written before the ledger), and not "
    "judged again: the history does not give the lane's stored figures",
}


def ledger_fact(report: Report) -> str | None:
    """Where the ledgers come from, when any was not recorded by the run (old results)."""
    said = {lane.ledger_source for lane in report.lanes} - {"recorded"}
    if not said:
        return None
    return "; ".join(
        f"{', '.join(lane.name for lane in report.lanes if lane.ledger_source == source)}: "
        f"{LEDGER_SOURCES[source]}"
        for source in ("history", "not recorded")
        if source in said
    )


def _flow(report: Report) -> str:
    """The parts of a reply, and how many requests each lane's figures judge: one per
    recipient, or under a load as many as Locust's users sent."""
    results = report.results
    flow = results.scenario_definition.get("flow", {})
    parts = f"{flow.get('messages', '?')} parts {flow.get('spacing_s', '?')} s apart"
    if results.load is None:
        return f"{parts}, {flow.get('recipients', 1)} request(s) per lane"
    judged = ", ".join(f"{lane.lane} {len(lane.correlations)}" for lane in results.load.lanes)
    return f"{parts} per request; requests judged per lane (the load's): {judged}"


def facts(report: Report) -> list[tuple[str, str]]:
    """What ran, when, and how the figures are to be read."""
    results = report.results
    definition = results.scenario_definition
    tolerances = definition.get("tolerances", {})
    scale = results.time_scale
    found = [
        ("scenario", f"{results.scenario}: {results.description}"),
        (
            "time scale",
            f"{scale:g}"
            + ("" if scale == 1 else f" (every duration; x{1 / scale:g} at full length)"),
        ),
        ("flow", _flow(report)),
        (
            "tolerances",
            f"late beyond {tolerances.get('on_time_s', '?')} s after due; order judged by "
            f"{tolerances.get('order_by', 'api_receipt').replace('_', ' ')}",
        ),
        ("started", _when(results.started_at)),
        ("command", results.command or "not recorded"),
        ("harness", results.harness_version or "not recorded"),
    ]
    if results.stack_start_s is not None:
        found.append(("stack start", f"{results.stack_start_s:.1f} s"))
    if results.trigger_at is not None and results.verdict_at is not None:
        found.append(("request to verdict", f"{results.verdict_at - results.trigger_at:.1f} s"))
    found.append(("complete", "yes" if results.complete else "no: interrupted, figures partial"))
    if (source := ledger_fact(report)) is not None:
        found.append(("ledger", source))
    found += [("fault", describe_fault(fault, results.trigger_at)) for fault in results.faults]
    found += [("trigger error", error) for error in results.trigger_errors]
    return found
