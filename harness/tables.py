"""Rich tables for the CLI: a stack's lanes, live progress, the comparison of lanes, scenarios."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from .results import LaneResult, Results
from .run import Progress
from .scenario import LaneScenario, Scenario
from .stack import LocalStack
from .wording import describe_fault, seconds


def lanes_table(stack: LocalStack) -> Table:
    """Where each lane of a running stack is: its webhook, worker PID and log."""
    table = Table(title=f"Local stack (mock Cloud API {stack.mock_url})")
    for column in ("lane", "pool", "webhook", "worker pid", "log"):
        table.add_column(column)
    for lane in stack.lanes.values():
        table.add_row(
            lane.name,
            lane.spec.pool,
            lane.webhook_url,
            str(lane.worker.pid),
            str(stack.run_dir / f"worker-{lane.name}.log"),
        )
    return table


def progress_table(progress: Progress) -> Table:
    """Delivered / expected and lateness so far, per lane, while the run goes on."""
    scenario = progress.scenario
    table = Table(
        title=f"{scenario.name} x{scenario.time_scale:g}: "
        f"{progress.elapsed_s:.0f} s of at most {progress.deadline_s:.0f} s"
    )
    for column in ("lane", "delivered", "late", "inversions", "lateness p50 / max (s)", "state"):
        table.add_column(column, justify="left" if column in ("lane", "state") else "right")
    for name, verdict in progress.verdicts.items():
        late = verdict.lateness
        table.add_row(
            name,
            f"{verdict.delivery.delivered}/{verdict.delivery.expected}",
            str(len(late.late)),
            str(verdict.order.inversions),
            f"{seconds(late.p50_s)} / {seconds(late.max_s)}",
            "settled" if progress.settled.get(name) else "running",
        )
    return table


def _verdict(lane: LaneResult) -> Text:
    text = Text(lane.verdict, style="green" if lane.verdict == "pass" else "red")
    if lane.reason_codes:
        text.append(f" ({', '.join(lane.reason_codes)})")
    return text


def _ledger_cells(lane: LaneResult) -> list[str | Text]:
    """On time, late, duplicated, failed, lost; lost in red (it fails the lane)."""
    book = lane.ledger
    if book is None:  # results written before the ledger
        return ["-", str(lane.late), str(lane.duplicated), "-", "-"]
    lost = Text(str(book.lost), style="bold red" if book.lost else "")
    return [str(book.on_time), str(book.late), str(book.duplicated), str(book.failed), lost]


def _caption(results: Results) -> str:
    notes = ["each part on time, late, dup(licated), failed or lost; lateness p50 / max in s"]
    if results.time_scale != 1:
        notes.append(
            f"at time scale {results.time_scale:g} (x{1 / results.time_scale:g} at full length)"
        )
    if any(lane.pool_set_by == "settings" for lane in results.lanes):
        notes.append("* pool set only by CELERY_WORKER_POOL")
    return "; ".join(notes)


def comparison_table(results: Results) -> Group:
    """Lanes side by side, each verdict against its expectation, then the reasons."""
    title = f"{results.scenario} (time scale {results.time_scale:g})"
    if not results.complete:
        title += " [yellow]INTERRUPTED: partial figures[/yellow]"
    table = Table(
        title=title,
        caption=_caption(results),
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    columns = ("lane", "pool", "broker", "celery", "conc", "sent", "on time", "late", "dup")
    for column in (*columns, "failed", "lost", "inv", "p50", "max"):  # p95 is in the reports
        left = column in ("lane", "pool", "broker", "celery")
        table.add_column(column, justify="left" if left else "right")
    table.add_column("verdict")
    table.add_column("expected")
    for lane in results.lanes:
        expected = Text(lane.expected_verdict)
        expected.append(" ✓" if lane.as_expected else " ✗", "green" if lane.as_expected else "red")
        table.add_row(
            lane.lane,
            lane.pool + ("*" if lane.pool_set_by == "settings" else ""),
            lane.broker_name,
            lane.versions.get("celery", "-"),
            "-" if lane.concurrency is None else str(lane.concurrency),
            f"{lane.delivered}/{lane.expected_messages}",
            *_ledger_cells(lane),
            str(lane.order_inversions),
            seconds(lane.lateness_p50_s),
            seconds(lane.lateness_max_s),
            _verdict(lane),
            expected,
        )
    notes: list[Text] = []
    for fault in results.faults:
        line = f"  fault: {describe_fault(fault, results.trigger_at)}"
        notes.append(Text(line, style="bold red" if fault.failed else ""))
    for lane in results.lanes:
        for reason in lane.reasons:
            notes.append(Text(f"  {lane.lane}: {reason}"))
        if lane.mismatch and results.complete:
            notes.append(Text(f"  {lane.lane}: NOT AS EXPECTED: {lane.mismatch}", style="bold red"))
    if not results.complete:
        notes.append(
            Text(
                "  interrupted: parts not yet sent count as missing, so verdicts are partial",
                style="yellow",
            )
        )
    for error in results.trigger_errors:
        notes.append(Text(f"  {error}", style="red"))
    if results.load is not None:
        notes += _load_notes(results)
    return Group(table, *notes)


def _load_notes(results: Results) -> list[Text]:
    """Per lane, what the load was and Locust's view; the thresholds a lane exceeded."""
    load = results.load
    assert load is not None
    expected = {lane.lane: lane.expected_verdict for lane in results.lanes}
    notes = []
    for lane in load.lanes:
        p99 = "-" if lane.webhook_p99_ms is None else f"{lane.webhook_p99_ms:.0f} ms"
        notes.append(
            Text(
                f"  load {lane.lane}: {lane.fixtures_requests} fixtures requests "
                f"({lane.webhook_requests or 0} webhook requests, {lane.webhook_failures or 0} "
                f"failed, p99 {p99}); Locust's delivery-lateness p95 "
                f"{seconds(lane.locust_lateness_p95_s)} s"
            )
        )
    for line in load.exceeded:
        lane = line.split(":", 1)[0]
        bad = expected.get(lane) == "pass"
        notes.append(
            Text(
                f"  threshold exceeded: {line}" + ("" if bad else " (expected to fail)"),
                style="bold red" if bad else "",
            )
        )
    if load.error is not None:
        notes.append(Text(f"  {load.error}", style="bold red"))
    return notes


def _lane_label(lane: LaneScenario) -> str:
    """`killed-5-3 (celery 5.3.6)`, `killed-rabbitmq (rabbitmq)`; a default lane: its name."""
    notes = [lane.broker] if lane.broker != "valkey" else []
    notes += [f"{package} {version}" for package, version in lane.pins.items()]
    return lane.name + (f" ({', '.join(notes)})" if notes else "")


def scenarios_table(scenarios: list[Scenario]) -> Table:
    table = Table(title="Scenarios (harness run NAME, or a path to a .toml file)")
    for column in ("name", "lanes", "parts x spacing", "description"):
        table.add_column(column)
    for scenario in scenarios:
        flow = scenario.flow
        table.add_row(
            scenario.name,
            ", ".join(_lane_label(lane) for lane in scenario.lanes),
            f"{flow.messages} x {flow.spacing_s:g} s",
            scenario.description,
        )
    return table
