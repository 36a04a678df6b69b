"""What `harness init` writes: a scenario, a pytest test and a CI workflow, as text.

Every fact the detector could not find is written as a line marked `FILL IN` (with what
belongs there); the harness refuses to run a scenario that still holds such a mark, so
a guess never runs silently. Rendering is pure: `plan` returns the files, `apply`
writes them all or none.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..scenario import UNFILLED_MARK as MARK
from .detect import ROLES, Project

SCENARIO = Path("stagger") / "pools.toml"
COMPOSE_SCENARIO = Path("stagger") / "compose.toml"  # when the repository has a compose file
TEST = Path("tests") / "test_stagger.py"
WORKFLOW = Path(".github") / "workflows" / "stagger.yml"
WEBHOOK = "{python} manage.py runserver 127.0.0.1:{port} --noreload --skip-checks"
WORKER = "{python} -m celery -A %s worker --loglevel INFO -n {lane}@%%h -Q %s%s -c {concurrency}"
# Without these the bot would not use the harness's broker, its mock Cloud API (it would
# call Meta itself) or its signing secret: a missing one is marked, never guessed.
REQUIRED_ROLES = ("broker_url", "api_url", "app_secret")

# The four pools on the command line (the fix), then the incident's trap.
POOL_LANES = (
    ("solo", "solo", 1, "One process, one task at a time."),
    ("prefork", "prefork", 2, "Two processes."),
    ("threads", "threads", 8, "Eight threads."),
    ("gevent", "gevent", 20, "Twenty greenlets, the pool on argv so Celery monkey-patches."),
)


@dataclass(frozen=True)
class Planned:
    """A file to write, and the lines in it that a person must fill in."""

    path: Path  # relative to the project's root
    text: str
    to_fill: list[tuple[int, str]]  # (line, what belongs there)


class _Lines:
    """Text built line by line, remembering which lines are marked to fill in."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.marks: list[tuple[int, str]] = []

    def add(self, *lines: str) -> None:
        self.lines += lines

    def mark(self, what: str, line: str) -> None:
        self.lines.append(f"# {MARK}: {what}")
        self.marks.append((len(self.lines) + 1, what))
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _toml(value: str) -> str:
    return json.dumps(value)  # a TOML basic string is a JSON string for these values


def scenario_text(project: Project) -> tuple[str, list[tuple[int, str]]]:
    out = _Lines()
    out.add(
        f"# {project.name}'s fixtures flow on the four Celery pools, and the incident's trap",
        "# (the pool named only in settings). Written by `harness init`; the fields are",
        "# documented in the harness's scenario reference. The harness starts the webhook",
        "# and the worker from these commands, fills the {placeholders}, and judges every",
        "# part from the mock Cloud API's journal and Celery's task events.",
        f"name = {_toml(project.name + '-pools')}",
        'description = "The fixtures flow on solo, prefork, threads and gevent, and gevent '
        'named only in settings."',
    )
    for role in REQUIRED_ROLES:
        if role not in project.env:
            variable, what = ROLES[role]
            out.mark(
                f"no environment variable for {what} found in your settings: make them read "
                f'one (the harness sets {variable}), or add NAME = "{{{role}}}" to each '
                "lane's [lanes.external.env]",
                "",
            )
    out.add("", "[flow]")
    parts, spacing = project.env.get("parts"), project.env.get("spacing_s")
    if parts is None:
        out.mark("how many parts the bot sends for one fixtures request", 'messages = "?"')
    else:
        out.add(f"messages = 22  # your settings read {parts.value} ({parts.where}): set from this")
    if spacing is None:
        out.mark("the seconds between parts (the countdown step)", 'spacing_s = "?"')
    else:
        out.add(f"spacing_s = 2.0  # read from {spacing.value} ({spacing.where}): set from this")
    out.add(
        "",
        "[tolerances]",
        "on_time_s = 2.0  # a part later than its countdown by more than this is late",
        "missing_after_s = 20.0",
    )
    for name, pool, concurrency, why in POOL_LANES:
        _lane(out, project, name, pool, concurrency, why, settings=False)
    _lane(
        out,
        project,
        "gevent-settings",
        "gevent",
        20,
        "The incident: gevent only in CELERY_WORKER_POOL, so Celery never monkey-patches "
        "and the worker receives every part and runs none.",
        settings=True,
    )
    return out.text(), out.marks


def _lane(
    out: _Lines,
    project: Project,
    name: str,
    pool: str,
    concurrency: int,
    why: str,
    *,
    settings: bool,
) -> None:
    out.add("", "[[lanes]]", f'name = "{name}"', f'pool = "{pool}"', f"concurrency = {concurrency}")
    if settings:
        out.add('pool_set_by = "settings"', 'expect = "fail"', 'because = ["missing"]')
    out.add(f"why = {_toml(why)}", "", "[lanes.external]")
    if project.django:
        out.add(f"webhook = {_toml(WEBHOOK)}")
        if project.webhook_path is None:
            out.mark(
                "the URL path of the bot's WhatsApp webhook, e.g. /webhook/", 'webhook_path = "?"'
            )
        else:
            path = project.webhook_path
            out.add(f"webhook_path = {_toml(path.value)}  # {path.where}")
    else:
        out.mark(
            "the command that serves the bot's webhook on 127.0.0.1:{port}",
            'webhook = "?"',
        )
        out.mark("the URL path of the bot's WhatsApp webhook", 'webhook_path = "?"')
    pool_option = "" if settings else " -P {pool}"
    queue = project.queue
    queue_option = "?" if queue is None else queue.value[1:] if queue.value[0] == "=" else "{queue}"
    apps = project.celery_apps
    app = apps[0].argument if len(apps) == 1 else "?"
    line = f"worker = {_toml(WORKER % (app, queue_option, pool_option))}"
    if len(apps) != 1:
        out.mark("the Celery app for `celery -A` (no `Celery(...)` found)", line)
    elif queue is None:
        out.mark("the queue your tasks go to, for -Q (CELERY_TASK_DEFAULT_QUEUE)", line)
    else:
        out.add(f"{line}  # {apps[0].where}; queue: {queue.where}")
    out.add('cwd = ".."  # the repository, relative to this file')
    if settings:
        _needs_pool_variable(out, project)
    _env(out, project, queue=True)


def _env(out: _Lines, project: Project, *, queue: bool) -> None:
    """The lane's environment under the settings' own names for what the harness sets."""
    env = {
        found.value: "{" + role + "}"
        for role, found in sorted(project.env.items())
        if found.value != ROLES[role][0]
    }
    found = project.queue
    if queue and found is not None and found.value[0] != "=" and found.value != "CELERY_TASK_QUEUE":
        env[found.value] = "{queue}"
    if env:
        out.add("[lanes.external.env]  # your settings' own variable names")
        out.add(*(f'{name} = "{value}"' for name, value in env.items()))


def compose_scenario_text(project: Project) -> tuple[str, list[tuple[int, str]]]:
    """The same lanes on `--backend compose`, from the services of the team's compose file."""
    compose = project.compose
    assert compose is not None
    out = _Lines()
    out.add(
        f"# {project.name}'s fixtures flow on the four Celery pools and the incident's trap, in",
        f"# your own containers: the services of {compose.file}, run by",
        f"#   harness run {COMPOSE_SCENARIO.as_posix()} --backend compose",
        "# The harness builds their images with no registry (a Dockerfile's FROM taken from a",
        "# build argument BASE, which it sets to its offline base), runs them beside its",
        "# broker and mock, and gives the first worker each lane's pool and concurrency.",
        f"name = {_toml(project.name + '-compose')}",
        "description = \"The fixtures flow in the team's own containers, on the four pools and "
        'gevent named only in settings."',
        "",
        "[flow]",
        "messages = 22  # as pools.toml",
        "spacing_s = 2.0",
        "",
        "[tolerances]",
        "on_time_s = 2.0",
        "missing_after_s = 20.0",
    )
    lanes = [(name, pool, concurrency, why, False) for name, pool, concurrency, why in POOL_LANES]
    lanes.append(("gevent-settings", "gevent", 20, "gevent only in CELERY_WORKER_POOL.", True))
    for name, pool, concurrency, why, settings in lanes:
        out.add("", "[[lanes]]", f'name = "{name}"', f'pool = "{pool}"')
        out.add(f"concurrency = {concurrency}")
        if settings:
            out.add('pool_set_by = "settings"', 'expect = "fail"', 'because = ["missing"]')
        out.add(f"why = {_toml(why)}", "", "[lanes.external]")
        webhook = compose.webhook or "?"
        workers = ", ".join(_toml(w) for w in compose.workers) or '"?"'
        line = (
            f"compose = {{ file = {_toml('../' + compose.file)}, webhook = {_toml(webhook)}, "
            f"workers = [{workers}] }}"
        )
        if compose.webhook is None or not compose.workers:
            out.mark(
                "the webhook's service and the Celery worker services (the lane's first)", line
            )
        else:
            out.add(line)
        if project.webhook_path is not None:
            out.add(f"webhook_path = {_toml(project.webhook_path.value)}")
        if settings:
            _needs_pool_variable(out, project)
        _env(out, project, queue=False)
    return out.text(), out.marks


def _needs_pool_variable(out: _Lines, project: Project) -> None:
    """The settings-only lane means something only where the settings read the pool from
    the environment; else it is marked, to fill in or delete."""
    if project.pool_variable is None or not _namespaced(project):
        out.mark(
            "this lane needs the settings to read the pool from the environment: add "
            'CELERY_WORKER_POOL = os.environ.get("CELERY_WORKER_POOL", "prefork") to '
            "your Celery settings (namespace CELERY), or delete this lane",
            "# (then delete these two lines)",
        )


def _namespaced(project: Project) -> bool:
    return len(project.celery_apps) == 1 and project.celery_apps[0].namespace == "CELERY"


def test_text(project: Project) -> str:
    lanes = [name for name, *_ in POOL_LANES] + ["gevent-settings"]
    return f'''"""{project.name}'s Celery delivery, judged by stagger-harness (from `harness init`).

Each lane runs the bot's own webhook and worker (stagger/pools.toml) beside an embedded
broker and a mock WhatsApp Cloud API; the pools on the command line must deliver every
part once, in order and on time; gevent named only in settings must fail as the incident
did. A failing test keeps its run directory and names it (`--stagger-runs-dir`).
"""

from pathlib import Path

import pytest

from harness.expect import assert_as_expected

SCENARIO = str(Path(__file__).resolve().parents[1] / "{SCENARIO.as_posix()}")


@pytest.mark.stagger(scenario=SCENARIO)
@pytest.mark.parametrize("lane", {lanes!r})
def test_each_lane_as_expected(stagger_outcome, lane: str) -> None:
    assert_as_expected(stagger_outcome, lane)
'''


def workflow_text(project: Project) -> tuple[str, list[tuple[int, str]]]:
    out = _Lines()
    out.add(
        "# stagger-harness in CI (written by `harness init`): the bot on the four Celery",
        "# pools, every run directory kept as an artifact when a test fails.",
        "name: stagger",
        "",
        "on:",
        "  push:",
        "  pull_request:",
        "",
        "jobs:",
        "  pools:",
        "    runs-on: ubuntu-latest",
        "    timeout-minutes: 30",
        "    steps:",
        "      - uses: actions/checkout@v4",
        "      - uses: actions/setup-python@v5",
        "        with:",
        '          python-version: "3.12"',
    )
    if project.installs is None:
        out.mark("the command that installs your bot's dependencies", "      - run: ?")
    else:
        out.add(f"      - run: {project.installs}")
    out.mark(
        "where CI installs the harness from (a wheel, a git URL or your package index), "
        "with pytest; add `-c requirements.txt` to keep your pinned Celery",
        "      - run: pip install stagger-harness pytest",
    )
    out.add(
        "      - run: >-",
        f"          pytest {TEST.as_posix()}",
        "          --stagger-runs-dir reports/stagger --junitxml reports/junit.xml",
        "      - if: ${{ !cancelled() }}",
        "        uses: actions/upload-artifact@v4",
        "        with:",
        "          name: stagger-reports",
        "          path: reports/",
        "          if-no-files-found: ignore",
    )
    return out.text(), out.marks


def plan(project: Project) -> list[Planned]:
    scenario, scenario_marks = scenario_text(project)
    workflow, workflow_marks = workflow_text(project)
    planned = [
        Planned(SCENARIO, scenario, scenario_marks),
        Planned(TEST, test_text(project), []),
        Planned(WORKFLOW, workflow, workflow_marks),
    ]
    if project.compose is not None:
        planned.insert(1, Planned(COMPOSE_SCENARIO, *compose_scenario_text(project)))
    return planned


def apply(root: Path, files: list[Planned]) -> None:
    """Write every file, each through a temporary file renamed into place (with the mode a
    new file gets); on a failure, put back what this call replaced and remove what it
    added, so init writes all of its files or none."""
    umask = os.umask(0)
    os.umask(umask)
    done: list[tuple[Path, bytes | None]] = []  # each target, and what it held before
    try:
        for planned in files:
            target = root / planned.path
            target.parent.mkdir(parents=True, exist_ok=True)
            before = target.read_bytes() if target.is_file() else None
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(planned.text)
            os.chmod(temporary, 0o666 & ~umask)
            os.replace(temporary, target)
            done.append((target, before))
    except BaseException:
        for path, before in reversed(done):
            if before is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(before)
        raise
