"""The reaper: a small process that outlives the harness and removes what it left.

Each child the harness starts leads a process group of its own (so Ctrl-C reaches only
the harness, which stops it by PID). Nothing then takes those groups down if the harness
itself is SIGKILLed (an out-of-memory killer, a runner's hard timeout). PR_SET_PDEATHSIG
does not fit: it fires when the *thread* that forked the child ends, and the stack starts
its processes from worker threads. So the harness starts one reaper, in a session of its
own, whose standard input is a pipe only the harness holds; it tells the reaper each
process group and compose project it starts. When the pipe closes, however the harness
ended, the reaper kills every group still running and removes every container still
labelled with a project, then exits. After a clean stop there is nothing left to do.

Groups are checked by their leader's start time before being signalled, so a PID the
system gave to someone else since is never touched.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from .waiting import DeadlineExceeded, wait_for

LOG = "reaper.log"  # in the run directory: what the reaper removed, if anything
GONE_S = 10.0  # how long killed processes and removed containers get to be gone
COMPOSE_SETTLE_S = 2.0  # a container the engine was creating as compose died shows up


@dataclass(frozen=True)
class Group:
    """A process group the harness started: its leader's PID (= the group's id)."""

    pgid: int
    name: str
    started: float | None  # the leader's create time; None if it was already gone


@dataclass(frozen=True)
class Project:
    """A compose project the harness brought up: its containers carry its label."""

    name: str


@dataclass(frozen=True)
class Mark:
    """How many groups and projects had been started at some point (a command's start)."""

    groups: int
    projects: int


# -- what is left ------------------------------------------------------------------------------


def _same_leader(group: Group) -> bool:
    """The group id still names this group (or only its members are left): not reused."""
    try:
        leader = psutil.Process(group.pgid)
        started = leader.create_time()
    except psutil.NoSuchProcess:
        return True  # its members (if any) keep the number: it cannot have been reused
    return group.started is not None and abs(started - group.started) < 0.05


def live_members(groups: list[Group]) -> dict[int, list[psutil.Process]]:
    """Per group, its processes still running (zombies are gone: only not yet reaped)."""
    wanted = {group.pgid: group for group in groups if _same_leader(group)}
    found: dict[int, list[psutil.Process]] = {}
    for process in psutil.process_iter(["status"]):
        try:
            pgid = os.getpgid(process.pid)
        except (ProcessLookupError, PermissionError):
            continue
        if pgid in wanted and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.setdefault(pgid, []).append(process)
    return found


def describe(groups: list[Group], members: dict[int, list[psutil.Process]]) -> list[str]:
    """'PID name' for each process left, by group."""
    names = {group.pgid: group.name for group in groups}
    return [
        f"{process.pid} {names[pgid]}" + ("" if process.pid == pgid else f" (group {pgid})")
        for pgid, processes in members.items()
        for process in processes
    ]


def project_containers(projects: list[Project]) -> list[str]:
    """Names of the containers the projects still have (the docker SDK: only if any)."""
    if not projects:
        return []
    import docker  # only for compose runs

    client = docker.from_env(timeout=30)
    try:
        return [
            container.name
            for project in projects
            for container in client.containers.list(
                all=True, filters={"label": f"com.docker.compose.project={project.name}"}
            )
        ]
    finally:
        client.close()


# -- the harness's side ----------------------------------------------------------------------


class _Client:
    """The harness's end: starts the reaper on first use, tells it what was started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipe: IO[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.groups: list[Group] = []
        self.projects: list[Project] = []

    def _send(self, message: dict[str, Any]) -> None:
        with self._lock:
            if self._pipe is None:
                self._start()
            assert self._pipe is not None
            with contextlib.suppress(OSError):  # the reaper was killed: tell nobody
                self._pipe.write(json.dumps(message) + "\n")
                self._pipe.flush()

    def _start(self) -> None:
        read, write = os.pipe()  # neither end is inherited by the stack's processes
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "harness.reaper", str(os.getpid())],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # never the harness's pipes: a reader would wait
                start_new_session=True,  # a signal to the harness's group spares it
                cwd=Path(__file__).resolve().parents[1],
            )
        finally:
            os.close(read)
        self._pipe = os.fdopen(write, "w", encoding="utf-8")
        atexit.register(self.close)

    def tie(self, pid: int, name: str, run_dir: Path | None) -> None:
        """Process group `pid` (a child that leads its own) is killed if the harness dies."""
        try:
            started: float | None = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            started = None
        group = Group(pid, name, started)
        self.groups.append(group)
        self._send({"group": [pid, name, started], "log": _log(run_dir)})

    def tie_project(self, project: str, run_dir: Path | None) -> None:
        """Compose project `project`'s containers are removed if the harness dies."""
        self.projects.append(Project(project))
        self._send({"project": project, "log": _log(run_dir)})

    def untie_project(self, project: str) -> None:
        """The project was taken down and checked gone: the reaper need not look at it."""
        self._send({"removed": project})

    def mark(self) -> Mark:
        """Where the record stands: `left(mark)` looks only at what was started since."""
        return Mark(len(self.groups), len(self.projects))

    def left(self, since: Mark) -> list[str]:
        """Every process and container started since `since` that is still there."""
        groups = self.groups[since.groups :]
        projects = self.projects[since.projects :]
        return describe(groups, live_members(groups)) + project_containers(projects)

    def close(self) -> None:
        """The harness ends: the reaper checks once more (nothing left after a clean stop)
        and exits; wait for it, so it does not outlive the harness either."""
        with self._lock:
            if self._pipe is None:
                return
            with contextlib.suppress(OSError):
                self._pipe.close()
            self._pipe = None
            assert self._process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=GONE_S + 30)


def _log(run_dir: Path | None) -> str | None:
    return None if run_dir is None else str(run_dir / LOG)


CLIENT = _Client()


def tie(pid: int, name: str, run_dir: Path | None = None) -> None:
    CLIENT.tie(pid, name, run_dir)


def tie_project(project: str, run_dir: Path | None = None) -> None:
    CLIENT.tie_project(project, run_dir)


def untie_project(project: str) -> None:
    CLIENT.untie_project(project)


def mark() -> Mark:
    return CLIENT.mark()


def left_running(since: Mark, timeout_s: float = GONE_S) -> list[str]:
    """What this harness started since `since` (a command's start) that is still there
    after up to `timeout_s` (SIGKILLed processes take a moment to go); empty when all is
    gone."""
    try:
        return wait_for(lambda: CLIENT.left(since), lambda left: not left, timeout_s=timeout_s)
    except DeadlineExceeded as exc:
        return exc.last


# -- the reaper's side -----------------------------------------------------------------------


def _note(logs: set[str], line: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for path in logs:
        with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as log:
            log.write(f"{stamp} {line}\n")


def _kill_groups(groups: list[Group], logs: set[str], owner: str) -> None:
    members = live_members(groups)
    if not members:
        return
    _note(logs, f"the harness (PID {owner}) ended with these running; killed: "
          + ", ".join(describe(groups, members)))  # fmt: skip

    def kill_live() -> list[int]:
        live = live_members(groups)
        for pgid in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        return live

    with contextlib.suppress(DeadlineExceeded):  # what will not die is past helping
        wait_for(kill_live, lambda live: not live, timeout_s=GONE_S, interval_s=0.1)


def remove_project_rest(client: Any, project: str) -> None:
    """A compose project's networks and volumes, once its containers are gone (the
    reaper's and the next compose run's cleanup alike)."""
    import docker.errors

    label = {"label": f"com.docker.compose.project={project}"}
    for network in client.networks.list(filters=label):
        with contextlib.suppress(docker.errors.APIError):
            network.remove()
    for volume in client.volumes.list(filters=label):
        with contextlib.suppress(docker.errors.APIError):
            volume.remove(force=True)


def _remove_projects(projects: list[Project], logs: set[str], owner: str) -> None:
    """Every container of each project, then its networks and volumes; again until none
    shows up for COMPOSE_SETTLE_S (compose, killed, may have left a create in flight)."""
    if not projects:
        return
    import docker
    import docker.errors

    client = docker.from_env(timeout=60)
    quiet_since = time.monotonic()

    def quiet_for() -> float:
        """Remove what each project still has; how long none of it has shown up."""
        nonlocal quiet_since
        for project in projects:
            label = {"label": f"com.docker.compose.project={project.name}"}
            for container in client.containers.list(all=True, filters=label):
                quiet_since = time.monotonic()
                _note(logs, f"the harness (PID {owner}) ended: removing {container.name}")
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True, v=True)
            remove_project_rest(client, project.name)
        return time.monotonic() - quiet_since

    with contextlib.suppress(DeadlineExceeded):  # gives up after two minutes
        wait_for(quiet_for, lambda quiet: quiet >= COMPOSE_SETTLE_S, timeout_s=120, interval_s=0.2)
    client.close()


def main(argv: list[str]) -> None:
    """Read what the harness tells (JSON lines) until EOF, then remove what is left."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # its job is to outlive the harness; EOF ends it
    owner = argv[0] if argv else "?"
    groups: list[Group] = []
    projects: list[Project] = []
    logs: set[str] = set()
    for line in sys.stdin:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            message = json.loads(line)
            if message.get("log"):
                logs.add(message["log"])
            if "group" in message:
                pgid, name, started = message["group"]
                groups.append(Group(int(pgid), str(name), started))
            if "project" in message:
                projects.append(Project(str(message["project"])))
            if "removed" in message:
                projects = [p for p in projects if p.name != message["removed"]]
    _kill_groups(groups, logs, owner)  # compose CLI processes first: no new containers
    _remove_projects(projects, logs, owner)


if __name__ == "__main__":
    main(sys.argv[1:])
