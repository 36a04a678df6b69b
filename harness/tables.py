"""Rich tables for the CLI: a stack's lanes, live progress, the comparison of lanes, scenarios."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from .results import Results
from .run import Progress
from .scenario import Scenario
from .stack import LocalStack


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


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def progress_table(progress: Progress) -> Table:
    """Delivered / expected and lateness so far, per lane, while the run goes on."""
    scenario = progress.scenario
    table = Table(
        title=f"{scenario.name} x{scenario.time_scale:g}: "
        f"{progress.elapsed_s:.0f} s of at most {progress.deadline_s:.0f} s"
    )
    for column in ("lane", "delivered", "late", "inversions", "lateness p50 / max (s)", ""):
        table.add_column(column, justify="left" if column in ("lane", "") else "right")
    for name, verdict in progress.verdicts.items():
        late = verdict.lateness
        table.add_row(
            name,
            f"{verdict.delivery.delivered}/{verdict.delivery.expected}",
            str(len(late.late)),
            str(verdict.order.inversions),
            f"{_seconds(late.p50_s)} / {_seconds(late.max_s)}",
            "settled" if progress.settled.get(name) else "running",
        )
    return table


def _verdict(verdict: str) -> str:
    return f"[green]{verdict}[/green]" if verdict == "pass" else f"[red]{verdict}[/red]"


def comparison_table(results: Results) -> Group:
    """Lanes side by side, each verdict against its expectation, then the reasons."""
    title = f"{results.scenario} (time scale {results.time_scale:g})"
    if not results.complete:
        title += " [yellow]INTERRUPTED: partial figures[/yellow]"
    table = Table(title=title, box=box.SIMPLE_HEAD, caption="lateness in seconds")
    for column in ("lane", "pool", "conc", "sent", "miss", "dup", "inv", "p50", "p95", "max"):
        table.add_column(column, justify="left" if column in ("lane", "pool") else "right")
    table.add_column("verdict")
    table.add_column("expected")
    for lane in results.lanes:
        expected = _verdict(lane.expected_verdict)
        if lane.expected_reasons:
            expected += f" ({', '.join(lane.expected_reasons)})"
        table.add_row(
            lane.lane,
            lane.pool + (" (settings)" if lane.pool_set_by == "settings" else ""),
            "-" if lane.concurrency is None else str(lane.concurrency),
            f"{lane.delivered}/{lane.expected_messages}",
            str(lane.missing),
            str(lane.duplicated),
            str(lane.order_inversions),
            _seconds(lane.lateness_p50_s),
            _seconds(lane.lateness_p95_s),
            _seconds(lane.lateness_max_s),
            _verdict(lane.verdict),
            expected + (" [green]✓[/green]" if lane.as_expected else " [red]✗[/red]"),
        )
    notes: list[Text] = []
    for lane in results.lanes:
        for reason in lane.reasons:
            notes.append(Text(f"  {lane.lane}: {reason}"))
        if lane.mismatch:
            notes.append(Text(f"  {lane.lane}: NOT AS EXPECTED: {lane.mismatch}", style="bold red"))
    for error in results.trigger_errors:
        notes.append(Text(f"  {error}", style="red"))
    return Group(table, *notes)


def scenarios_table(scenarios: list[Scenario]) -> Table:
    table = Table(title="Scenarios (harness run NAME, or a path to a .toml file)")
    for column in ("name", "lanes", "parts x spacing", "description"):
        table.add_column(column)
    for scenario in scenarios:
        flow = scenario.flow
        table.add_row(
            scenario.name,
            ", ".join(lane.name for lane in scenario.lanes),
            f"{flow.messages} x {flow.spacing_s:g} s",
            scenario.description,
        )
    return table
