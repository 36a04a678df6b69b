"""The `harness` command line (Typer + Rich).

`harness stack` brings up the local stack (embedded broker, mock Cloud API, a
bot webhook and a Celery worker per pool), optionally runs the fixtures flow
once per lane and shows what the outbox says, and stops every process on exit,
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .bot.flow import correlation_for
from .bot.settings import POOLS, SettingsError
from .bot.store import OutboxRecord
from .processes import ServerStartError
from .stack import Lane, LaneSpec, LocalStack, StackSpec, sigterm_as_interrupt
from .stack.broker import BrokerError
from .workload import inbound_text, new_inbound_id, post_inbound

app = typer.Typer(add_completion=False, no_args_is_help=True)
console = Console()
DEFAULT_RUNS = Path("reports/runs")


@app.callback()
def harness() -> None:
    """Reproduce, measure and guard against Celery delivery bugs in the fixtures flow."""


def _run_dir(out: Path | None) -> Path:
    return out or DEFAULT_RUNS / datetime.now().strftime("stack-%Y%m%d-%H%M%S")


def _lanes_table(stack: LocalStack) -> Table:
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


def _progress_table(parts: dict[str, list[OutboxRecord]], expected: int, started: float) -> Table:
    table = Table(title="Fixtures flow, one request per lane (outbox)")
    for column in ("lane", "sent", "failed", "waiting", "attempts", "last sent (s)"):
        table.add_column(column, justify="right" if column != "lane" else "left")
    for name, records in parts.items():
        sent = [r for r in records if r.state == "sent"]
        failed = sum(r.state == "failed" for r in records)
        last = max((r.sent_at or 0.0 for r in sent), default=None)
        table.add_row(
            name,
            f"{len(sent)}/{expected}",
            str(failed),
            str(expected - len(sent) - failed),
            str(sum(r.attempts for r in records)),
            f"{last - started:.2f}" if last else "-",
        )
    return table


def _run_fixtures(stack: LocalStack, expected: int, deadline_s: float) -> bool:
    """One "fixtures" request per lane; show the outbox until every part is settled."""
    correlations: dict[str, str] = {}
    refused: list[str] = []
    started = time.time()
    with httpx.Client(timeout=10) as client:
        for lane in stack.lanes.values():
            inbound_id = new_inbound_id()
            payload = inbound_text(
                phone_number_id=lane.phone_number_id,
                sender=lane.recipient(),
                text="fixtures",
                message_id=inbound_id,
            )
            answer = post_inbound(
                client, lane.webhook_url, payload, lane.settings.whatsapp_app_secret
            )
            if answer.status_code != 200:
                console.print(f"[red]{lane.name}: webhook answered {answer.status_code}[/red]")
                refused.append(lane.name)
                continue
            correlations[lane.name] = correlation_for(inbound_id)

    def snapshot() -> dict[str, list[OutboxRecord]]:
        return {name: _parts(stack.lanes[name], corr) for name, corr in correlations.items()}

    parts = snapshot()
    with Live(_progress_table(parts, expected, started), console=console) as live:
        while time.time() - started < deadline_s and not _settled(parts, expected):
            time.sleep(0.25)
            parts = snapshot()
            live.update(_progress_table(parts, expected, started))
    console.line()
    return not refused and all(
        len(records) == expected and all(r.state == "sent" for r in records)
        for records in parts.values()
    )


def _parts(lane: Lane, correlation_id: str) -> list[OutboxRecord]:
    return [r for r in lane.store.outbox() if r.correlation_id == correlation_id]


def _settled(parts: dict[str, list[OutboxRecord]], expected: int) -> bool:
    return all(
        len(records) == expected and all(r.state in ("sent", "failed") for r in records)
        for records in parts.values()
    )


@app.command()
def stack(
    pool: Annotated[
        list[str] | None,
        typer.Option("--pool", "-p", help=f"Pool to run, repeatable: {', '.join(POOLS)}."),
    ] = None,
    broker_url: Annotated[
        str | None, typer.Option(help="External Redis URL; default: an embedded Valkey.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory for logs.")] = None,
    fixtures: Annotated[
        bool, typer.Option(help="Send one 'fixtures' request per lane and follow the outbox.")
    ] = True,
    parts: Annotated[int, typer.Option(min=1, max=1000, help="Message parts per reply.")] = 22,
    spacing: Annotated[float, typer.Option(min=0, help="Seconds between parts.")] = 2.0,
    hold: Annotated[bool, typer.Option(help="Keep the stack up until Ctrl-C.")] = False,
) -> None:
    """Bring up the local stack, one lane per pool; by default run the fixtures flow once."""
    pools = pool or list(POOLS)
    unknown = [name for name in pools if name not in POOLS]
    if unknown:
        raise typer.BadParameter(f"unknown pool(s) {unknown}; allowed: {', '.join(POOLS)}")
    env = {"FIXTURES_PARTS": str(parts), "FIXTURES_SPACING_S": str(spacing)}
    try:
        spec = StackSpec(
            lanes=[LaneSpec(name=name, pool=name) for name in dict.fromkeys(pools)],  # type: ignore[arg-type]
            broker_url=broker_url,
            bot_env=env,
        )
    except ValidationError as exc:
        console.print(f"[red]invalid stack:[/red] {describe(exc)}")
        raise typer.Exit(2) from None
    run_dir = _run_dir(out)
    ok = True
    local = LocalStack(spec, run_dir)
    try:
        with sigterm_as_interrupt():
            try:
                with console.status("starting the stack..."):
                    local.start()
                console.print(_lanes_table(local))
                if fixtures:
                    ok = _run_fixtures(local, parts, deadline_s=(parts - 1) * spacing + 60)
                if hold:
                    console.print("The stack is up; Ctrl-C stops it.")
                    threading.Event().wait()
            finally:
                local.stop()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: every process was stopped[/yellow]")
        raise typer.Exit(130) from None
    except (SettingsError, BrokerError, ServerStartError) as exc:
        console.print(f"[red]the stack did not start:[/red] {exc}")
        console.print(f"logs: {run_dir}")
        raise typer.Exit(2) from None
    console.print(f"logs: {run_dir}")
    if not ok:
        raise typer.Exit(1)


def describe(exc: ValidationError) -> str:
    """One line per problem, without pydantic's links and input dumps."""
    return "; ".join(
        f"{'.'.join(map(str, item['loc'])) or 'spec'}: {item['msg'].removeprefix('Value error, ')}"
        for item in exc.errors(include_url=False)
    )


def main() -> None:
    app()
