"""What several commands take alike: their options, and the run directory they write."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..results import RESULTS
from ..stack import BACKENDS, Backend

DEFAULT_RUNS = Path("reports/runs")
TIME_SCALE_HELP = (
    "Multiply every duration of the scenario (0.25 runs 4x faster; at most 100); default: "
    "the file's. Refused if the spacing would drop under 0.1 s or on_time_s under 0.5 s."
)
BROKER_HELP = "External Redis URL; default: an embedded Valkey."
ScenarioArg = Annotated[str, typer.Argument(help="A shipped scenario's name or a .toml file.")]
LanesOpt = Annotated[
    list[str] | None,
    typer.Option("--pool", "-p", help="Only these lanes (by lane name or pool); repeatable."),
]
TimeScaleOpt = Annotated[float | None, typer.Option(help=TIME_SCALE_HELP)]
OutOpt = Annotated[Path | None, typer.Option(help="Run directory; default under reports/runs/.")]
BrokerOpt = Annotated[str | None, typer.Option(help=BROKER_HELP)]
FailRatioOpt = Annotated[
    float | None,
    typer.Option(
        "--max-fail-ratio",
        help="Load scenarios: a lane's failure-ratio bound (0..1); overrides \\[load.thresholds].",
    ),
]
LatenessOpt = Annotated[
    float | None,
    typer.Option(
        "--max-lateness-p95",
        help="Load scenarios: a lane's delivery-lateness p95 bound, in the scenario's seconds "
        "(scaled with it); overrides \\[load.thresholds].",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers", help="Load scenarios: Locust worker processes under a master (0: one process)."
    ),
]
BackendOpt = Annotated[
    Backend,
    typer.Option(
        help=f"How the stack comes up: {' or '.join(BACKENDS)} (containers of compose/stack.yml, "
        "images from STAGGER_IMAGE and BROKER_IMAGE)."
    ),
]


def new_run_dir(out: Path | None, kind: str) -> Path:
    """`out`, refused if it holds an earlier run; else a new directory under reports/runs/."""
    if out is not None:
        if out.exists() and not out.is_dir():
            raise InputError(
                f"--out {out} is a file; give a directory (new, or without a run in it)"
            )
        if (out / RESULTS).exists() or (out / "processes.json").exists():
            raise InputError(f"{out} already holds a run; choose another --out or remove it first")
        return out
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = DEFAULT_RUNS / f"{kind}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = DEFAULT_RUNS / f"{kind}-{stamp}-{n}"
    return path
