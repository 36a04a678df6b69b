"""A shutdown trial: a command under `uv run`, signalled as a CI runner would, then counted.

Each trial's command runs in a session of its own (its process group is uv's), with a
token in its environment that every process it starts inherits: after a bounded wait,
whatever still carries the token is left over, whoever started it (uv, the harness, the
reaper, the stack, a prefork worker's pool). The last line it printed is judged too:
claiming "every process was stopped" with anything left is a false claim.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness.processes import ServerProcess, start_server
from harness.waiting import DeadlineExceeded, wait_for

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "STAGGER_SHUTDOWN_TRIAL"
NEVER = re.compile(r"(?!)")
START_S = 90.0  # a command's start-up on a loaded 2-core machine, uv and imports included
EXIT_S = 60.0  # its orderly stop: workers' warm shutdown (10 s grace), then the rest
LEFT_S = 20.0  # then how long anything it started gets to be gone
STOPPED = "every process was stopped"
NOT_STOPPED = "NOT stopped"


@dataclass
class Trial:
    """One trial's outcome, as the set's summary counts it."""

    kind: str  # e.g. "local, SIGTERM to the group"
    moment: str
    left: list[str]
    last_line: str
    claimed_stopped: bool
    exit_code: int | None
    seconds: float

    @property
    def false_claim(self) -> bool:
        return self.claimed_stopped and bool(self.left)


TRIALS: list[Trial] = []  # every trial of the session, for the summary
COMMANDS: list[Command] = []  # the test's commands, cleaned up after it however it ended


def clean_up() -> None:
    """After each trial, however it ended: nothing of its commands is left."""
    while COMMANDS:
        COMMANDS.pop().cleanup()


def tagged(token: str) -> list[psutil.Process]:
    """Live processes whose environment carries this trial's token (zombies are gone)."""
    found = []
    for process in psutil.process_iter(["status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE or process.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if process.environ().get(TOKEN) == token:
                found.append(process)
    return found


def in_groups(groups: set[int]) -> list[psutil.Process]:
    """Live processes in these process groups (a trial's own, listed moments ago)."""
    found = []
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(process.pid) in groups and process.info["status"] != "zombie":
                found.append(process)
    return found


def describe(processes: list[psutil.Process]) -> list[str]:
    described = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            described.append(f"{process.pid} {' '.join(process.cmdline()[:4])}")
    return described


@dataclass
class Command:
    """A command under `uv run`, in a session of its own, tagged with a fresh token."""

    argv: list[str]
    cwd: Path = ROOT
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    process: ServerProcess | None = None
    began: float = 0.0
    groups: set[int] = field(default_factory=set)  # the process groups its run dir listed

    def start(self, log: Path, ready: Callable[[], bool]) -> ServerProcess:
        """Start it and return once `ready()` holds (the moment to signal it)."""
        self.began = time.monotonic()
        COMMANDS.append(self)

        def started(process: ServerProcess) -> None:
            self.process = process  # `ready()` reads its output while it starts

        return start_server(
            ["uv", "run", "--frozen", "--no-sync", *self.argv],
            NEVER,
            timeout_s=START_S,
            env={TOKEN: self.token, "COLUMNS": "200", "PYTHONFAULTHANDLER": "1"},
            log_path=log,
            ready_check=ready,
            cwd=self.cwd,
            on_start=started,
        )

    @property
    def group(self) -> int:
        assert self.process is not None
        return self.process.pid  # uv leads the session and the group

    def output(self) -> str:
        return "" if self.process is None else self.process.output

    def child(self, marker: str) -> psutil.Process | None:
        """A descendant of uv whose command line holds `marker` (the harness, pytest)."""
        assert self.process is not None
        with contextlib.suppress(psutil.Error):
            for process in psutil.Process(self.group).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if marker in " ".join(process.cmdline()):
                        return process
        return None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.group, signum)

    def _left(self) -> list[psutil.Process]:
        found = {process.pid: process for process in tagged(self.token)}
        found |= {process.pid: process for process in in_groups(self.groups)}
        return list(found.values())

    def _dump_if_stuck(self) -> None:
        """uv still waits: SIGABRT to its child, whose faulthandler prints every thread's
        stack into the output the failure shows (PYTHONFAULTHANDLER is set)."""
        assert self.process is not None
        if self.process.popen.poll() is not None:
            return
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.group).children():
                child.send_signal(signal.SIGABRT)
        with contextlib.suppress(Exception):
            self.process.popen.wait(timeout=10)

    def cleanup(self) -> None:
        """Kill whatever of this trial still runs (by PID: only processes carrying its
        token or in the groups its stack listed) and reap uv: a failed trial leaves nothing
        to the next one."""
        for process in self._left():
            with contextlib.suppress(psutil.Error):
                process.kill()
        if self.process is not None:
            self.process.stop(grace_s=5.0)

    def finish(
        self,
        kind: str,
        moment: str,
        containers: Callable[[], list[str]] = list,
        left_s: float = LEFT_S,
        run_dir: Path | None = None,
    ) -> Trial:
        """Wait for uv to exit, then up to `left_s` for everything tagged, in a group its
        run directory lists (Valkey writes its title over its environment: no token to
        read), and every container `containers` lists to be gone; kill what is left (by
        PID: only this trial's processes) and record the trial."""
        assert self.process is not None
        with contextlib.suppress(Exception):
            self.process.popen.wait(timeout=EXIT_S)
        self._dump_if_stuck()
        self.groups = set(listed(run_dir).values()) if run_dir is not None else set()
        try:
            left, boxes = wait_for(
                lambda: (self._left(), containers()),
                lambda found: not any(found),
                timeout_s=left_s,
                interval_s=0.2,
            )
        except DeadlineExceeded:
            left, boxes = self._left(), containers()
        described = describe(left) + [f"container {name}" for name in boxes]
        self.cleanup()
        lines = [line.strip() for line in self.output().splitlines() if line.strip()]
        trial = Trial(
            kind=kind,
            moment=moment,
            left=described,
            last_line=lines[-1] if lines else "",
            claimed_stopped=any(STOPPED in line for line in lines),
            exit_code=self.process.returncode,
            seconds=time.monotonic() - self.began,
        )
        TRIALS.append(trial)
        return trial


def listed(run_dir: Path) -> dict[str, int]:
    """processes.json: the processes the stack has launched so far, by name."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads((run_dir / "processes.json").read_text())
    return {}


def log_has(path: Path, text: str) -> bool:
    with contextlib.suppress(OSError):
        return text in path.read_text(errors="replace")
    return False


def summary(trials: list[Trial]) -> list[str]:
    """The set's counts, per kind of trial: trials, processes left, false claims."""
    kinds: dict[str, list[Trial]] = {}
    for trial in trials:
        kinds.setdefault(trial.kind, []).append(trial)
    lines = [f"{'trials':<44} {'n':>3} {'left':>5} {'false claims':>13} {'claims':>7} {'s':>6}"]
    for kind, group in kinds.items():
        lines.append(
            f"{kind:<44} {len(group):>3} {sum(len(t.left) for t in group):>5} "
            f"{sum(t.false_claim for t in group):>13} {sum(t.claimed_stopped for t in group):>7} "
            f"{sum(t.seconds for t in group):>6.0f}"
        )
    return lines


def signal_names(*signums: int) -> str:
    return "+".join(signal.Signals(signum).name for signum in signums)
