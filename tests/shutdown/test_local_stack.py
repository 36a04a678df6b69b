"""`uv run harness stack` signalled as CI runners, `timeout`, a terminal and an OOM killer do.

SIGTERM to the whole process group (uv forwards its own to the harness too: a burst) at
21 moments, during start-up, while running and while stopping; SIGINT to the group as
Ctrl-C does; SIGKILL to the harness alone. Each time: nothing the trial started is left
after a bounded wait, and "every process was stopped" is claimed only when true (and, for
SIGTERM and SIGINT, by the harness's own teardown: the reaper found nothing to kill).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from harness.reaper import LOG as REAPER_LOG
from harness.waiting import wait_for

from .trials import EXIT_S, NOT_STOPPED, STOPPED, Command, listed, log_has

pytestmark = [pytest.mark.integration, pytest.mark.shutdown]

NAMES = {"broker", "mock", "bot-gevent", "bot-solo", "worker-gevent", "worker-solo"}
UP = "The stack is up"


@dataclass(frozen=True)
class Moment:
    """When to signal: `ready` holds once the command is there; `then` sends the signals."""

    name: str
    ready: Callable[[Command, Path], bool]
    then: Callable[[Command, Path], None] | None = None
    fixtures: bool = False


def up(command: Command, _run_dir: Path) -> bool:
    return UP in command.output()


def sent(command: Command, run_dir: Path) -> bool:
    """Parts are being sent by both lanes: tasks in flight in both workers."""
    logs = [run_dir / "worker-gevent.log", run_dir / "worker-solo.log"]
    return up(command, run_dir) and all(log_has(log, "TASK SENT") for log in logs)


def ready_line(name: str, pattern: str) -> Callable[[Command, Path], bool]:
    return lambda _command, run_dir: log_has(run_dir / f"{name}.log", pattern)


def after(condition: Callable[[Path], bool], *signums: int) -> Callable[[Command, Path], None]:
    """Once `condition(run_dir)` holds (the stop under way), signal the group again (or,
    with no `signums`, only wait)."""

    def then(command: Command, run_dir: Path) -> None:
        wait_for(
            lambda: condition(run_dir) or command.process.popen.poll() is not None,
            timeout_s=EXIT_S,
            interval_s=0.01,
            what="the moment in the stop",
        )
        for signum in signums:
            command.signal_group(signum)

    return then


def warm(lane: str) -> Callable[[Path], bool]:
    return lambda run_dir: log_has(run_dir / f"worker-{lane}.log", "Warm shutdown")


def gone(name: str) -> Callable[[Path], bool]:
    def check(run_dir: Path) -> bool:
        pid = listed(run_dir).get(name)
        return pid is not None and not psutil.pid_exists(pid)

    return check


def by_name(command: Command, _run_dir: Path) -> None:
    """uv and the harness signalled one after the other, as `pkill -f harness` does."""
    harness = command.child("bin/harness")
    os.kill(command.group, signal.SIGTERM)
    if harness is not None:
        os.kill(harness.pid, signal.SIGTERM)


def again(*signums: int) -> Callable[[Command, Path], None]:
    return lambda command, _run_dir: [command.signal_group(signum) for signum in signums]


STARTING = [
    Moment("harness process exists", lambda c, _d: c.child("bin/harness") is not None),
    Moment("run directory made", lambda _c, d: d.exists()),
    Moment("broker ready", lambda _c, d: "broker" in listed(d)),
    Moment("every process launched", lambda _c, d: set(listed(d)) >= NAMES),
    Moment("mock ready", ready_line("mock", "mock-meta-api listening on")),
    Moment("a webhook ready", ready_line("bot-solo", "bot-webhook listening on")),
    Moment("a worker ready", ready_line("worker-solo", " ready.")),
]
RUNNING = [
    Moment("up, idle", up),
    Moment("up, idle, twice at once", up, again(signal.SIGTERM)),
    Moment("up, then SIGINT to the group too", up, again(signal.SIGINT)),
    Moment("up, uv and the harness by name", up, by_name),
    Moment("parts in flight", sent, fixtures=True),
    Moment("parts in flight, twice at once", sent, again(signal.SIGTERM), fixtures=True),
    Moment("parts in flight, five at once", sent, again(*[signal.SIGTERM] * 4), fixtures=True),
]
STOPPING = [
    Moment("stopping: gevent's warm shutdown", up, after(warm("gevent"), signal.SIGTERM)),
    Moment("stopping: solo's warm shutdown", up, after(warm("solo"), signal.SIGTERM)),
    Moment(
        "stopping: both warm shutdowns",
        up,
        after(lambda d: warm("gevent")(d) and warm("solo")(d), signal.SIGTERM),
    ),
    Moment("stopping: a worker gone", up, after(gone("worker-solo"), signal.SIGTERM)),
    Moment(
        "stopping: the broker shutting down",
        up,
        after(lambda d: log_has(d / "broker.log", "Received SIGTERM"), signal.SIGTERM),
    ),
    Moment(
        "stopping, parts in flight: three more",
        sent,
        after(warm("solo"), *[signal.SIGTERM] * 3),
        fixtures=True,
    ),
    Moment(
        "stopping, parts in flight: SIGINT too",
        sent,
        after(warm("gevent"), signal.SIGINT, signal.SIGTERM),
        fixtures=True,
    ),
]


def stack_argv(run_dir: Path, fixtures: bool) -> list[str]:
    argv = ["harness", "stack", "--pool", "gevent", "--pool", "solo", "--out", str(run_dir)]
    if fixtures:  # parts keep being sent for the whole trial
        argv += ["--fixtures", "--parts", "200", "--spacing", "0.3", "--concurrency", "4"]
    return argv


def signalled(
    tmp_path: Path, kind: str, moment: Moment, signum: int, *, to_harness: bool = False
) -> tuple[Command, Path]:
    """Start the stack under uv, signal it at `moment`, record the trial."""
    run_dir = tmp_path / "run"
    command = Command(stack_argv(run_dir, moment.fixtures))
    command.start(tmp_path / "uv.log", lambda: moment.ready(command, run_dir))
    if to_harness:
        harness = command.child("bin/harness")
        assert harness is not None, command.output()
        harness.send_signal(signum)
    else:
        command.signal_group(signum)
    if moment.then is not None:
        moment.then(command, run_dir)
    return command, run_dir


def assert_orderly(command: Command, run_dir: Path, kind: str, moment: Moment) -> None:
    """Nothing left; the claim true, last, and made whenever the stack had begun; the
    teardown the harness's own (the reaper found nothing to kill)."""
    trial = command.finish(kind, moment.name, run_dir=run_dir)
    output = command.output()
    assert trial.left == [], f"{trial.left}\n{output}"
    assert not trial.false_claim
    assert NOT_STOPPED not in output, output
    if listed(run_dir):  # the stack had begun: the harness stopped it, and said so last
        assert STOPPED in trial.last_line, output
        assert trial.exit_code == 130, output
    assert not (run_dir / REAPER_LOG).exists(), (run_dir / REAPER_LOG).read_text()


@pytest.mark.parametrize("moment", STARTING + RUNNING + STOPPING, ids=lambda m: m.name)
def test_sigterm_to_the_group(tmp_path: Path, moment: Moment) -> None:
    kind = "local stack, SIGTERM to the group"
    command, run_dir = signalled(tmp_path, kind, moment, signal.SIGTERM)
    assert_orderly(command, run_dir, kind, moment)


@pytest.mark.parametrize(
    "moment",
    [
        STARTING[3],
        RUNNING[4],
        Moment("stopping: a second Ctrl-C", up, after(warm("solo"), signal.SIGINT)),
    ],
    ids=lambda m: m.name,
)
def test_ctrl_c_to_the_group(tmp_path: Path, moment: Moment) -> None:
    """As a terminal's Ctrl-C: SIGINT to the foreground process group (uv and the harness)."""
    kind = "local stack, SIGINT to the group"
    command, run_dir = signalled(tmp_path, kind, moment, signal.SIGINT)
    assert_orderly(command, run_dir, kind, moment)


@pytest.mark.parametrize(
    "moment",
    [STARTING[3], RUNNING[4], Moment("stopping: solo's warm shutdown", up, after(warm("solo")))],
    ids=lambda m: m.name,
)
def test_sigkill_to_the_harness(tmp_path: Path, moment: Moment) -> None:
    """The OOM killer or a hard timeout: the reaper kills the stack the harness left."""
    kind = "local stack, SIGKILL to the harness"
    run_dir = tmp_path / "run"
    command = Command(stack_argv(run_dir, moment.fixtures))
    command.start(tmp_path / "uv.log", lambda: moment.ready(command, run_dir))
    harness = command.child("bin/harness")
    assert harness is not None, command.output()
    if moment.then is not None:  # killed in the middle of its stop
        command.signal_group(signal.SIGTERM)
        moment.then(command, run_dir)
    harness.kill()
    trial = command.finish(kind, moment.name, run_dir=run_dir)
    assert trial.left == [], f"{trial.left}\n{command.output()}"
    assert not trial.claimed_stopped, command.output()
    if moment.then is None:  # killed with the stack up: the reaper did the stopping
        killed = (run_dir / REAPER_LOG).read_text()
        assert f"the harness (PID {harness.pid}) ended with these running" in killed
        assert "worker-solo" in killed, killed
