"""The `harness` command line (Typer + Rich).

`harness matrix` and `harness run` run a scenario on the local stack, judge
every lane and write its reports; `harness capacity` searches each lane's highest
rate kept on time; `harness scenarios` lists them; `harness check`
judges a stored run again and `harness report` redraws its reports. `harness stack`
holds a stack up for manual work until Ctrl-C.
Exit status: 0 every lane as expected, 1 a lane differs, 2 bad input or a run
that could not be done (the stack did not start, or a part of it failed),
3 a process or container it started was still running at its end (the last line names
each one), 130 interrupted (partial results are still written). Any burst of SIGINT and
SIGTERM leads to one orderly stop (`harness.signals`); "every process was stopped" is
said only once each one was checked gone.
"""

from __future__ import annotations

import shlex
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.text import Text

from mock_meta_api.config import describe_validation_error

from . import __version__, reaper, signals
from .bot.settings import DEFAULT_POOLS, POOLS, SettingsError
from .images import images
from .init import init_command
from .load.command import PASS_THROUGH, locust
from .processes import ServerStartError
from .results import RESULTS, ResultsError, read_results, recheck
from .run import check_broker, run_scenario, send_fixtures
from .scenario import Scenario, ScenarioError, load_scenario, shipped_names
from .signals import orderly_shutdown
from .stack import BACKENDS, Backend, LaneSpec, LocalStack, StackSpec
from .stack.backend import StackError
from .stack.broker import BrokerError
from .stack.external import ExternalLaneError
from .stack.prepare import LaneError
from .tables import comparison_table, lanes_table, progress_table, scenarios_table

if TYPE_CHECKING:
    from .capacity.results import CapacityResults
    from .capacity.runner import Capacity, RoundDone

app = typer.Typer(add_completion=False, no_args_is_help=True)
# Piped or in CI, Rich would assume 80 columns and squeeze the comparison table; logs are wide.
console = Console(width=None if Console().is_terminal else 120)
DEFAULT_RUNS = Path("reports/runs")
EXIT_INTERRUPTED = 130
EXIT_LEFT = 3  # a process or container the command started was still running at its end
# A signal that lands just as the main thread begins an endless wait (a lock with no
# timeout) is noted in C but its handler never runs: the harness would hold on forever.
# Waking this often bounds that to HOLD_WAKE_S (seen once in 35 trials, under load).
HOLD_WAKE_S = 0.5


def _say(message: str, style: str = "") -> None:
    """Print text as it is: values from files and paths may hold Rich markup such as `[x]`."""
    console.print(Text(message, style=style))


def _version(value: bool) -> None:
    if value:
        _say(f"stagger-harness {__version__}")
        raise typer.Exit()


@app.callback()
def harness(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Reproduce, measure and guard against Celery delivery bugs in the fixtures flow."""


def _run_dir(out: Path | None, kind: str) -> Path:
    """`out`, refused if it holds an earlier run; else a new directory under reports/runs/."""
    if out is not None:
        if out.exists() and not out.is_dir():
            _say(f"--out {out} is a file; give a directory (new, or without a run in it)", "red")
            raise typer.Exit(2)
        if (out / RESULTS).exists() or (out / "processes.json").exists():
            _say(f"{out} already holds a run; choose another --out or remove it first", "red")
            raise typer.Exit(2)
        return out
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = DEFAULT_RUNS / f"{kind}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = DEFAULT_RUNS / f"{kind}-{stamp}-{n}"
    return path


TIME_SCALE_HELP = (
    "Multiply every duration of the scenario (0.25 runs 4x faster; at most 100); default: "
    "the file's. Refused if the spacing would drop under 0.1 s or on_time_s under 0.5 s."
)
BROKER_HELP = "External Redis URL; default: an embedded Valkey."
ScenarioArg = Annotated[str, typer.Argument(help="A shipped scenario's name or a .toml file.")]
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


@app.command()
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
    try:
        spec = StackSpec(
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
    except ValidationError as exc:
        _say(f"invalid stack: {describe_validation_error(exc, 'stack')}", "red")
        raise typer.Exit(2) from None
    run_dir = _run_dir(out, "stack")
    local = LocalStack(spec, run_dir)
    since = reaper.mark()
    with orderly_shutdown():
        try:
            _hold(local, fixtures)
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
        except (SettingsError, BrokerError, ServerStartError) as exc:
            _say(f"the stack did not start: {exc}", "red")
            _say(f"logs: {run_dir}")
            code = 2
        _last_line(code, since)


def _hold(local: LocalStack, fixtures: bool) -> None:
    """Start the stack, show it, hold it until a signal; stop it however that ends."""
    try:
        with console.status("starting the stack..."):
            local.start()
        console.print(lanes_table(local))
        if fixtures:
            for error in send_fixtures(local):
                _say(error, "red")
        _say("The stack is up; Ctrl-C stops it.")
        while True:  # never a wait without an end: see HOLD_WAKE_S
            time.sleep(HOLD_WAKE_S)
    finally:
        local.stop()


def _last_line(code: int, since: reaper.Mark, stopped: str = "") -> None:
    """End a command that started processes: each one it started since `since` (and each
    container) is checked gone first, so the last line never claims a stop that did not
    happen. Exits with `code`, or EXIT_LEFT naming what still runs."""
    left = reaper.left_running(since)
    if left:
        _say(
            f"{'interrupted; ' if code == EXIT_INTERRUPTED else ''}NOT stopped, still running: "
            f"{', '.join(left)} (the harness's reaper kills them as it exits)",
            "red",
        )
        raise typer.Exit(EXIT_LEFT)
    if code == EXIT_INTERRUPTED:
        _say(f"interrupted: every process was stopped{stopped}", "yellow")
    if code:
        raise typer.Exit(code)


def _load(
    name: str,
    pools: list[str] | None,
    time_scale: float | None,
    load: dict[str, float | int | None] | None = None,
) -> tuple[Scenario, str]:
    """The scenario as it will run: lanes picked, load options applied, time scaled."""
    try:
        scenario, text = load_scenario(name)
        if pools:
            scenario = scenario.only(pools)
        if load and any(value is not None for value in load.values()):
            scenario = scenario.with_load_options(**load)
        return scenario.scaled(time_scale), text
    except ScenarioError as exc:
        _say(str(exc), "red")
        raise typer.Exit(2) from None


def _run(
    name: str,
    pools: list[str] | None,
    time_scale: float | None,
    out: Path | None,
    broker: str | None,
    load: dict[str, float | int | None] | None = None,
    backend: Backend = "local",
) -> None:
    """Run a scenario with live progress, print the comparison, exit with the verdict."""
    scenario, text = _load(name, pools, time_scale, load)
    if backend == "compose":
        _compose_ready(broker)
    try:
        check_broker(scenario, broker)
    except ScenarioError as exc:
        _say(str(exc), "red")
        raise typer.Exit(2) from None
    run_dir = _run_dir(out, scenario.name)
    since = reaper.mark()
    with orderly_shutdown():
        try:
            _judged_run(scenario, text, run_dir, broker, backend)
            code = 0
        except typer.Exit as exc:
            code = exc.exit_code
        except KeyboardInterrupt:
            _partial(run_dir)
            code = EXIT_INTERRUPTED
        _last_line(code, since)


def _judged_run(
    scenario: Scenario, text: str, run_dir: Path, broker: str | None, backend: Backend
) -> None:
    """The run with live progress, then the comparison and reports; typer.Exit(1) if a
    lane differs, 2 if the run could not be done."""
    live = Live(Text(f"starting the stack for {scenario.name}..."), console=console)
    try:
        with live:
            outcome = run_scenario(
                scenario,
                run_dir,
                broker_url=broker,
                source_text=text,
                backend=backend,
                command=shlex.join(["harness", *sys.argv[1:]]),
                on_started=lambda stack: live.update(Text(f"stack up; logs in {run_dir}")),
                on_progress=lambda progress: live.update(progress_table(progress)),
            )
    except LaneError as exc:  # found before anything started
        _say(f"{scenario.name}: {exc}", "red")
        raise typer.Exit(2) from None
    except (SettingsError, BrokerError, ServerStartError, ValidationError, StackError) as exc:
        message = (
            describe_validation_error(exc, scenario.name)
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        _say(f"the stack did not start: {message}", "red")
        _say(f"logs: {run_dir}")
        raise typer.Exit(2) from None
    except ExternalLaneError as exc:  # it names the lane and quotes the process's last lines
        _say(str(exc), "red")
        _say(f"logs: {run_dir}")
        raise typer.Exit(2) from None
    except Exception as exc:  # a part failed mid-run: exit 2, not 1 ("a lane differs")
        _failed(run_dir, exc)
    console.line()
    console.print(comparison_table(outcome.results))
    _say(f"results: {run_dir / RESULTS}")
    _report(run_dir)
    if not outcome.results.as_expected:
        raise typer.Exit(1)


def _partial(run_dir: Path) -> None:
    """An interrupted run: its partial results and reports, if it got that far."""
    console.line()
    if (run_dir / RESULTS).exists():
        console.print(comparison_table(read_results(run_dir)))
        _say(f"partial results: {run_dir / RESULTS}")
        _report(run_dir)


def _failed(run_dir: Path, exc: Exception) -> None:
    """A part failed mid-run: keep the traceback, say so, exit 2."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "error.txt").write_text(traceback.format_exc())
    _say(f"the run failed: {type(exc).__name__}: {exc}", "red")
    _say(f"traceback: {run_dir / 'error.txt'}; logs: {run_dir}")
    raise typer.Exit(2) from None


def _compose_ready(broker: str | None) -> None:
    """Engine, compose, images and ports, checked before anything starts: one line if not."""
    from .stack.compose import ComposeUnavailable, preflight, remove_orphans  # docker: here

    try:
        if broker is not None:
            raise ComposeUnavailable(
                "the compose backend runs its own broker: --broker-url is for the local backend"
            )
        client = preflight()
        try:
            for line in remove_orphans(client):  # a run killed with its reaper left them
                _say(line, "yellow")
        finally:
            client.close()
    except ComposeUnavailable as exc:
        console.print(Text(str(exc), style="red"), soft_wrap=True)  # one line, however wide
        raise typer.Exit(2) from None


def _report(run_dir: Path) -> None:
    """Draw the run's reports. The verdict is already out: failing to draw it is said,
    never turned into an exit status or a traceback."""
    try:
        from .report import write_reports  # matplotlib takes ~1 s to import: only to draw

        written = write_reports(run_dir)
    except (Exception, KeyboardInterrupt) as exc:
        _say(f"no report: {type(exc).__name__}: {exc}", "yellow")
        _say(f"to try again: harness report {run_dir}")
        return
    _say(f"report: {written.markdown} and {written.html}")


@app.command()
def matrix(
    scenario: ScenarioArg = "incident",
    time_scale: TimeScaleOpt = None,
    out: OutOpt = None,
    broker_url: BrokerOpt = None,
    max_fail_ratio: FailRatioOpt = None,
    max_lateness_p95: LatenessOpt = None,
    workers: WorkersOpt = None,
    backend: BackendOpt = "local",
) -> None:
    """Run every lane of a scenario side by side (default: the incident on all four pools)."""
    load = {"max_fail_ratio": max_fail_ratio, "max_lateness_p95_s": max_lateness_p95}
    _run(scenario, None, time_scale, out, broker_url, load | {"workers": workers}, backend)


@app.command()
def run(
    scenario: ScenarioArg,
    pool: Annotated[
        list[str] | None,
        typer.Option("--pool", "-p", help="Only these lanes (by lane name or pool); repeatable."),
    ] = None,
    time_scale: TimeScaleOpt = None,
    out: OutOpt = None,
    broker_url: BrokerOpt = None,
    max_fail_ratio: FailRatioOpt = None,
    max_lateness_p95: LatenessOpt = None,
    workers: WorkersOpt = None,
    backend: BackendOpt = "local",
) -> None:
    """Run one scenario, all its lanes or those picked with --pool."""
    load = {"max_fail_ratio": max_fail_ratio, "max_lateness_p95_s": max_lateness_p95}
    _run(scenario, pool, time_scale, out, broker_url, load | {"workers": workers}, backend)


@app.command()
def scenarios(
    files: Annotated[
        list[str] | None,
        typer.Argument(help="Scenario files or names to check; default: the shipped ones."),
    ] = None,
    time_scale: Annotated[
        float | None, typer.Option(help="Also check that this time scale is accepted.")
    ] = None,
) -> None:
    """List scenarios with their lanes; given files, check them without running anything."""
    found: list[Scenario] = []
    errors = 0
    for name in files or shipped_names():
        try:
            scenario = load_scenario(name)[0]
            scenario.scaled(time_scale)
            found.append(scenario)
        except ScenarioError as exc:
            _say(str(exc), "red")
            errors += 1
    if found:
        console.print(scenarios_table(found))
    if errors:
        raise typer.Exit(2)


@app.command()
def check(
    results: Annotated[Path, typer.Argument(help="A run directory or its results.json.")],
) -> None:
    """Judge a stored run again from its history; exit 1 if a lane is not as expected."""
    from .capacity.results import is_capacity

    if is_capacity(results):
        _say(
            f"{results} is a capacity run: each of its rounds is a run of its own, to check "
            f"with harness check {results if results.is_dir() else results.parent}/steps/round-N",
            "red",
        )
        raise typer.Exit(2)
    try:
        stored, again = recheck(results)
    except (ResultsError, ScenarioError) as exc:
        _say(str(exc), "red")
        raise typer.Exit(2) from None
    console.print(comparison_table(again))
    unrecorded = [lane.lane for lane in stored.lanes if lane.ledger is None]
    if unrecorded:
        _say(
            f"ledger not recorded in {RESULTS} (written before the ledger) for "
            f"{', '.join(unrecorded)}: judged again from the history, every request's parts "
            "counted, as a fresh run counts them",
            "yellow",
        )
    changed = [
        f"{a.lane}: stored {a.verdict}, now {b.verdict}"
        for a, b in zip(stored.lanes, again.lanes, strict=True)
        if (a.verdict, a.reason_codes) != (b.verdict, b.reason_codes)
    ]
    for line in changed:
        _say(f"verdict changed since the run: {line}", "yellow")
    if not again.as_expected:
        raise typer.Exit(1)


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="A run directory or its results.json.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the reports there, with a copy of the results, history and scenario "
            "file they are drawn from; default: the run directory."
        ),
    ] = None,
) -> None:
    """Write report.md and report.html (plots in plots/) again from a stored run."""
    from .capacity.results import is_capacity
    from .report import ReportError, write_reports  # matplotlib: ~1 s to import; only here

    if is_capacity(run):
        if out is not None:
            _say("a capacity run's reports are drawn in its own directory: leave out --out", "red")
            raise typer.Exit(2)
        if not _capacity_report(run if run.is_dir() else run.parent):
            raise typer.Exit(2)
        return
    try:
        written = write_reports(run, out)
    except (ResultsError, ReportError) as exc:
        _say(str(exc), "red")
        raise typer.Exit(2) from None
    except OSError as exc:
        _say(f"cannot draw the report: {exc.filename or out or run}: {exc.strerror}", "red")
        raise typer.Exit(2) from None
    _say(f"report: {written.markdown} and {written.html}")


@app.command()
def capacity(
    scenario: ScenarioArg = "incident",
    pool: Annotated[
        list[str] | None,
        typer.Option("--pool", "-p", help="Only these lanes (by lane name or pool); repeatable."),
    ] = None,
    concurrency: Annotated[
        list[int] | None,
        typer.Option(
            "--concurrency",
            "-c",
            help="The grid: every lane of a pool other than solo once per concurrency; "
            "repeatable. Overrides the capacity table's concurrencies.",
        ),
    ] = None,
    load_s: Annotated[
        float | None,
        typer.Option(help="Each step's load, in the scenario's seconds (default 70)."),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Steps per configuration, the repeat included (default 5).")
    ] = None,
    repeat: Annotated[
        bool | None, typer.Option(help="Run the knee's step again (its spread); default: yes.")
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Begin no round that would end past this many seconds (default 600)."),
    ] = None,
    time_scale: TimeScaleOpt = None,
    out: OutOpt = None,
) -> None:
    """Search each lane's highest rate of fixtures requests kept on time (the knee).

    Rounds of steady Locust loads on the local stack, every lane at a rate of its own,
    side by side: growing until a step is not kept on time, then bisecting; the knee's
    step repeated. Writes results.json and the reports (knees beside their theory).
    """
    from .capacity.runner import (
        Capacity,
        CapacityError,
        capacity_scenario,
        with_options,
    )

    try:  # unscaled until the grid is made: the time scale applies once, at the end
        loaded, text = load_scenario(scenario)
        if pool:
            loaded = loaded.only(pool)
        chosen = with_options(
            loaded,
            concurrencies=concurrency,
            load_s=load_s,
            max_steps=max_steps,
            repeat=repeat,
            budget_s=budget,
        )
        grid = capacity_scenario(chosen).scaled(time_scale if time_scale else loaded.time_scale)
    except (CapacityError, ScenarioError) as exc:
        _say(str(exc), "red")
        raise typer.Exit(2) from None
    run_dir = _run_dir(out, f"capacity-{grid.name}")
    search = Capacity(grid, run_dir, text)
    _say(f"capacity of {', '.join(search.configs)}; rounds in {run_dir}")

    def started(number: int, wanted: dict) -> None:
        rates = ", ".join(
            f"{name} {step.rate:.3g}/s" + (" (repeat)" if step.repeat else "")
            for name, step in wanted.items()
        )
        _say(f"round {number}: {rates}")

    def done(finished: RoundDone) -> None:
        for name, step in finished.steps.items():
            kept = "kept on time" if step.passed else "not kept"
            p95 = "-" if step.lateness_p95_s is None else f"{step.lateness_p95_s:.2f} s"
            _say(f"  {name}: {kept} (p95 {p95}, {step.lost} lost)")

    since = reaper.mark()
    with orderly_shutdown():
        try:
            results = _search(search, run_dir, started, done)
            code = 0
        except typer.Exit as exc:
            code = exc.exit_code
        except KeyboardInterrupt:
            console.line()
            _capacity_report(run_dir)
            code = EXIT_INTERRUPTED
        _last_line(code, since, "; the steps so far are kept")
    from .report.capacity import BUSY, summary

    if results.busy_before is not None and results.busy_before > BUSY:
        _say(
            f"the machine was {results.busy_before:.0%} busy before the first round: other "
            "work shared it, and every knee is lower than it allows",
            "yellow",
        )
    for config in results.configs:
        _say(summary(config, results.parts))
    _say(f"results: {run_dir / RESULTS}")
    _capacity_report(run_dir)


def _search(
    search: Capacity,
    run_dir: Path,
    started: Callable[[int, dict], None],
    done: Callable[[RoundDone], None],
) -> CapacityResults:
    """The capacity search; typer.Exit(2) if a round could not be done."""
    try:
        return search.run(on_start=started, on_round=done)
    except (SettingsError, BrokerError, ServerStartError, StackError, LaneError) as exc:
        _say(f"the stack did not start: {exc}", "red")
        _say(f"logs: {run_dir}")
        raise typer.Exit(2) from None
    except Exception as exc:
        _failed(run_dir, exc)
        raise  # _failed always exits


def _capacity_report(run_dir: Path) -> bool:
    """Draw a capacity run's reports; whether they were drawn (a failure is said)."""
    try:
        from .report.capacity import write_capacity_reports

        markdown, html = write_capacity_reports(run_dir)
    except (Exception, KeyboardInterrupt) as exc:
        _say(f"no report: {type(exc).__name__}: {exc}", "yellow")
        return False
    _say(f"report: {markdown} and {html}")
    return True


app.command("init")(init_command)
app.command(context_settings=PASS_THROUGH, add_help_option=False)(locust)  # --help: Locust's
app.command()(images)


def main() -> None:
    # For the process's whole life, not only a command's: a burst's later signals may come
    # after the command returned, while the reaper is awaited at exit.
    signals.install()
    app()
