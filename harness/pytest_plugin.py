"""The harness as a pytest plugin: run a scenario on the local stack from any test suite.

Registered through the `pytest11` entry point, so it loads into every pytest run in an
environment that has stagger-harness installed. It therefore imports nothing heavy at
load time (Celery, matplotlib and gevent only when a run is asked for) and its hooks do
nothing unless a test uses its fixtures or its options are given.

- `stagger_run(scenario, time_scale=..., pools=..., broker_url=...)` (session fixture): a
  shipped name, a .toml path or a `Scenario` built in Python; runs once per session per
  (scenario, time scale, pools, broker) and returns the `RunOutcome`.
- `stagger_outcome`: the outcome of the test's `@pytest.mark.stagger(scenario=...,
  pools=[...], time_scale=...)`.
- Options: `--stagger-time-scale`, `--stagger-pools`, `--stagger-keep-runs`,
  `--stagger-runs-dir`.
- A failing test that used a run keeps its run directory, draws its reports, prints the
  path and attaches the paths as JUnit XML properties.
- From the first run on, SIGTERM stops the session as Ctrl-C does (pytest tears every
  fixture down), and a burst of either is taken once (`harness.signals`); the processes
  a run starts are tied to the session's life (`harness.reaper`), even if it is killed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .run import RunOutcome
    from .scenario import Scenario

MARKER = (
    "stagger(scenario, pools=None, time_scale=None, broker_url=None): the scenario "
    "`stagger_outcome` runs (a shipped name, a .toml path or a Scenario), on these pools only"
)
RUNS_KEY = pytest.StashKey["_Runs"]()


@dataclass
class _Runs:
    """The session's runs: outcomes by key, which test used which run directory."""

    root: Path | None
    keep_all: bool
    outcomes: dict[tuple[str, float | None, tuple[str, ...], str | None], Any] = field(
        default_factory=dict
    )
    failures: dict[tuple[str, float | None, tuple[str, ...], str | None], Exception] = field(
        default_factory=dict
    )
    dirs: list[Path] = field(default_factory=list)
    kept: dict[Path, list[str]] = field(default_factory=dict)  # run dir -> failed tests
    by_test: dict[str, set[Path]] = field(default_factory=dict)
    current: str | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stagger", "stagger-harness runs")
    group.addoption(
        "--stagger-time-scale",
        type=float,
        default=None,
        help="Run every scenario at this time scale (over markers' and calls'); "
        "default: each one's own.",
    )
    group.addoption(
        "--stagger-pools",
        default=None,
        help="Comma-separated pools (or lane names): other lanes are left out of runs, and "
        "tests parametrised with another `pool` are skipped.",
    )
    group.addoption(
        "--stagger-keep-runs",
        action="store_true",
        default=False,
        help="Keep every run directory, not only those of failing tests.",
    )
    group.addoption(
        "--stagger-runs-dir",
        default=None,
        help="Where run directories go (default: under pytest's temporary directory).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    root = config.getoption("--stagger-runs-dir")
    config.stash[RUNS_KEY] = _Runs(
        root=Path(root).resolve() if root else None,
        keep_all=config.getoption("--stagger-keep-runs"),
    )


def _option_pools(config: pytest.Config) -> tuple[str, ...] | None:
    raw = config.getoption("--stagger-pools")
    if not raw:
        return None
    return tuple(sorted({name.strip() for name in raw.split(",") if name.strip()}))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --stagger-pools, a test parametrised with another `pool` is skipped."""
    pools = _option_pools(config)
    if pools is None:
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        pool = callspec.params.get("pool") if callspec is not None else None
        if isinstance(pool, str) and pool not in pools:
            item.add_marker(pytest.mark.skip(reason=f"pool {pool} not in --stagger-pools"))


# -- running ---------------------------------------------------------------------------------


def _scenario_of(scenario: str | Path | Scenario) -> tuple[Scenario, str | None, str]:
    """The scenario, its file's text (None when built in Python) and a key naming it."""
    from .scenario import Scenario, load_scenario

    if isinstance(scenario, Scenario):
        return scenario, None, scenario.model_dump_json()
    loaded, text = load_scenario(str(scenario))
    return loaded, text, f"{scenario}\n{text}"


RunScenario = Callable[..., "RunOutcome"]


@pytest.fixture(scope="session")
def stagger_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> RunScenario:
    """Run a scenario on the local stack, once per session per (scenario, scale, pools)."""
    config = request.config
    runs = config.stash[RUNS_KEY]

    def run(
        scenario: str | Path | Scenario,
        *,
        time_scale: float | None = None,
        pools: list[str] | tuple[str, ...] | None = None,
        broker_url: str | None = None,
    ) -> RunOutcome:
        from .run import run_scenario
        from .signals import install

        install()  # SIGTERM, as Ctrl-C, stops the run; a burst of either, once
        loaded, text, name_key = _scenario_of(scenario)
        scale = config.getoption("--stagger-time-scale") or time_scale
        chosen = _chosen_pools(loaded, pools, _option_pools(config))
        key = (name_key, scale, chosen, broker_url)
        if key in runs.failures:  # a run that failed is not started again for the next test
            raise runs.failures[key]
        if key not in runs.outcomes:
            selected = loaded if chosen == () else loaded.only(list(chosen))
            scaled = selected.scaled(scale)  # a scale below the floors fails before any run
            run_dir = _new_run_dir(runs, tmp_path_factory, loaded.name)
            try:
                runs.outcomes[key] = run_scenario(
                    scaled, run_dir, broker_url=broker_url, source_text=text
                )
            except Exception as exc:
                runs.kept.setdefault(run_dir, []).append(runs.current or "(setup)")
                exc.add_note(f"stagger run directory: {run_dir}")
                runs.failures[key] = exc
                raise
        outcome = runs.outcomes[key]
        if runs.current is not None:
            runs.by_test.setdefault(runs.current, set()).add(outcome.run_dir)
        return outcome

    return run


def _chosen_pools(
    scenario: Scenario, asked: list[str] | tuple[str, ...] | None, option: tuple[str, ...] | None
) -> tuple[str, ...]:
    """The lanes (by name) a run keeps; () keeps all. Skips the test when none is left."""
    if asked is None and option is None:
        return ()
    if asked is not None:
        from .scenario import ScenarioError

        try:
            scenario.only(list(asked))  # refuses a lane or pool the scenario does not have
        except ScenarioError as exc:
            raise pytest.UsageError(str(exc)) from None
    kept = [
        lane.name
        for lane in scenario.lanes
        if (asked is None or lane.name in asked or lane.pool in asked)
        and (option is None or lane.name in option or lane.pool in option)
    ]
    if not kept:
        pytest.skip(f"no lane of scenario {scenario.name!r} on pools {list(option or ())}")
    return tuple(kept)


def _new_run_dir(runs: _Runs, factory: pytest.TempPathFactory, name: str) -> Path:
    if runs.root is None:
        run_dir = factory.mktemp(f"stagger-{name}", numbered=True)
    else:
        runs.root.mkdir(parents=True, exist_ok=True)
        n = sum(1 for d in runs.dirs if d.parent == runs.root)
        run_dir = runs.root / f"{name}-{n}"
        while run_dir.exists():
            n += 1
            run_dir = runs.root / f"{name}-{n}"
        run_dir.mkdir()
    runs.dirs.append(run_dir)
    return run_dir


@pytest.fixture
def stagger_outcome(request: pytest.FixtureRequest, stagger_run: RunScenario) -> RunOutcome:
    """The outcome of the scenario in the test's `@pytest.mark.stagger(...)`."""
    marker = request.node.get_closest_marker("stagger")
    if marker is None:
        raise pytest.UsageError(
            f"{request.node.nodeid}: stagger_outcome needs @pytest.mark.stagger(scenario=...)"
        )
    options = dict(marker.kwargs)
    scenario = options.pop("scenario", marker.args[0] if marker.args else None)
    if scenario is None:
        raise pytest.UsageError(f"{request.node.nodeid}: @pytest.mark.stagger needs a scenario")
    unknown = sorted(set(options) - {"pools", "time_scale", "broker_url"})
    if unknown:
        raise pytest.UsageError(
            f"{request.node.nodeid}: @pytest.mark.stagger has no option {unknown}; "
            "allowed: scenario, pools, time_scale, broker_url"
        )
    return stagger_run(scenario, **options)


# -- failures --------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    runs = item.config.stash.get(RUNS_KEY, None)
    if runs is not None:
        runs.current = item.nodeid
    yield
    if runs is not None:
        runs.current = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    runs = item.config.stash.get(RUNS_KEY, None)
    if runs is None or not report.failed:
        return
    used = set(runs.by_test.get(item.nodeid, set()))
    used |= {
        value.run_dir
        for value in getattr(item, "funcargs", {}).values()
        if type(value).__name__ == "RunOutcome"
        and isinstance(getattr(value, "run_dir", None), Path)
    }
    used |= {d for d, tests in runs.kept.items() if item.nodeid in tests}
    for run_dir in sorted(used):
        tests = runs.kept.setdefault(run_dir, [])
        if item.nodeid not in tests:
            tests.append(item.nodeid)
        properties = [p for p in _properties(run_dir) if p not in item.user_properties]
        report.user_properties.extend(properties)
        item.user_properties.extend(properties)  # the JUnit XML reads them from the teardown
        report.sections.append(("stagger run", f"run directory kept: {run_dir}"))


def _properties(run_dir: Path) -> list[tuple[str, str]]:
    """The run directory and its reports (drawn now, once), for the JUnit XML."""
    properties = [("stagger_run_dir", str(run_dir))]
    results = run_dir / "results.json"
    if results.is_file():
        properties.append(("stagger_results", str(results)))
        if not (run_dir / "report.html").is_file():
            try:  # matplotlib: imported only for a failed run's report
                from .report import write_reports

                write_reports(run_dir)
            except Exception as exc:
                properties.append(("stagger_report_error", f"{type(exc).__name__}: {exc}"))
        for name in ("report.html", "report.md"):
            if (run_dir / name).is_file():
                properties.append((f"stagger_{name.replace('.', '_')}", str(run_dir / name)))
    return properties


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Run directories no failing test used are removed, unless asked to keep them."""
    runs = session.config.stash.get(RUNS_KEY, None)
    if runs is None or runs.keep_all:
        return
    for run_dir in runs.dirs:
        if run_dir not in runs.kept:
            shutil.rmtree(run_dir, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runs = config.stash.get(RUNS_KEY, None)
    if runs is None or not (runs.kept or (runs.keep_all and runs.dirs)):
        return
    terminalreporter.section("stagger runs")
    for run_dir in runs.dirs if runs.keep_all else list(runs.kept):
        failed = runs.kept.get(run_dir)
        why = f" (failed: {', '.join(failed)})" if failed else ""
        terminalreporter.write_line(f"{run_dir}{why}")
