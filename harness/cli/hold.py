"""`harness stack`: the local stack held up for manual work until Ctrl-C."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ..bot.settings import DEFAULT_POOLS, POOLS
from ..stack import LaneSpec, LocalStack, StackSpec
from ..tables import lanes_table
from ..workload import send_fixtures
from .exits import supervised
from .options import BrokerOpt, new_run_dir
from .output import console, say

# A signal that lands just as the main thread begins an endless wait (a lock with no
# timeout) is noted in C but its handler never runs: the harness would hold on forever.
# Waking this often bounds that to HOLD_WAKE_S (seen once in 35 trials, under load).
HOLD_WAKE_S = 0.5


def stack(
    pool: Annotated[
        list[str] | None,
        typer.Option("--pool", "-p", help=f"Pool to run, repeatable: {', '.join(POOLS)}."),
    ] = None,
    broker_url: BrokerOpt = None,
    out: Annotated[Path | None, typer.Option(help="Run directory for logs.")] = None,
    fixtures: Annotated[
        bool, typer.Option(help="Once up, send one signed 'fixtures' request per lane.")
    ] = False,
    parts: Annotated[int, typer.Option(min=1, max=1000, help="Message parts per reply.")] = 22,
    spacing: Annotated[float, typer.Option(min=0, help="Seconds between parts.")] = 2.0,
    api_latency: Annotated[
        float, typer.Option(min=0, max=60, help="Fixed latency of every Cloud API answer (s).")
    ] = 0.0,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=1000, help="Worker --concurrency (every lane).")
    ] = None,
    pool_in_settings: Annotated[
        bool,
        typer.Option(
            "--pool-in-settings",
            help="Set the pool only in CELERY_WORKER_POOL, not with --pool on the command line.",
        ),
    ] = False,
) -> None:
    """Bring up the local stack, one lane per pool, and hold it until Ctrl-C (manual work).

    To run the flow and judge it, use `harness run` or `harness matrix`.
    """
    pools = pool or list(DEFAULT_POOLS)
    unknown = [name for name in pools if name not in POOLS]
    if unknown:
        raise typer.BadParameter(f"unknown pool(s) {unknown}; allowed: {', '.join(POOLS)}")
    env = {"FIXTURES_PARTS": str(parts), "FIXTURES_SPACING_S": str(spacing)}
    latency = {"default": {"model": "fixed", "value_s": api_latency}} if api_latency else {}
    spec = StackSpec(  # a ValidationError here is the command line's: said by HarnessGroup
        lanes=[
            LaneSpec(
                name=name,
                pool=name,  # type: ignore[arg-type]
                concurrency=concurrency,
                pool_from_settings=pool_in_settings,
            )
            for name in dict.fromkeys(pools)
        ],
        broker_url=broker_url,
        bot_env=env,
        mock_behaviours={"latency": latency} if latency else {},
    )
    run_dir = new_run_dir(out, "stack")
    local = LocalStack(spec, run_dir)
    supervised(lambda: _hold(local, fixtures), run_dir, "stack")


def _hold(local: LocalStack, fixtures: bool) -> None:
    """Start the stack, show it, hold it until a signal; stop it however that ends."""
    try:
        with console.status("starting the stack..."):
            local.start()
        console.print(lanes_table(local))
        if fixtures:
            for error in send_fixtures(local):
                say(error, "red")
        say("The stack is up; Ctrl-C stops it.")
        while True:  # never a wait without an end: see HOLD_WAKE_S
            time.sleep(HOLD_WAKE_S)
    finally:
        local.stop()
