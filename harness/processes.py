"""Start a server subprocess, wait for its ready line, stop it by PID.

The one way the project runs processes (tests, benchmarks, the stack): no fixed
sleeps — wait on the process's own ready line with a deadline — and always stop
what was started: SIGTERM, wait, then SIGKILL. Each child leads its own session
and process group, so a terminal's Ctrl-C reaches only its owner, which then
stops it by PID, and whatever the child forked (prefork pool processes) is
killed with it through the group. Each group is also tied to the harness's life
through the reaper (`harness.reaper`): if the harness is SIGKILLed, it goes too.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import reaper
from .errors import RunError
from .waiting import DeadlineExceeded, wait_for

# Every process started here, so a session can check that none outlives it.
STARTED: list[subprocess.Popen[str]] = []
# Lines kept in memory per process (all of them also go to its log file, when it has one):
# a worker logs every send, and a long load test must not grow the harness without bound.
KEPT_LINES = 20_000
KILL_WAIT_S = 5.0  # how long a SIGKILLed process may take to be reaped
POLL_S = 0.1  # how often a start polls its `ready_check`


class ServerStartError(RunError):
    """The server exited, or printed no ready line before the deadline."""


@dataclass
class ServerProcess:
    """A running server subprocess and everything it printed so far (stdout and stderr).

    `url` is the ready line's `url` group, when the pattern has one; `lines`
    holds the last KEPT_LINES lines.
    """

    popen: subprocess.Popen[str]
    url: str = ""
    ready: bool = False
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=KEPT_LINES))
    log: IO[str] | None = field(default=None, repr=False)
    _pumps: list[threading.Thread] = field(default_factory=list, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL it and everything in its process group at once (no warm shutdown), reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # it leads its own process group
        self.stop(grace_s=0.0)  # reap it and close its log

    def stop(self, grace_s: float = 5.0) -> int:
        """Stop by PID: SIGTERM, wait up to `grace_s`, then SIGKILL; collect the last output.

        Anything left in the child's process group (its own children) is then
        killed too. Returns the exit code. Idempotent.
        """
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=KILL_WAIT_S)  # a grace of 0 still waits for the kill
        # The child led its own group (start_new_session), so the group id is its PID.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        for pump in self._pumps:  # the pipes hit EOF once the process is gone
            pump.join(timeout=max(grace_s, KILL_WAIT_S))
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
        if self.log is not None and not self.log.closed:
            self.log.close()
        return self.popen.returncode


def _pump(
    server: ServerProcess,
    stream: IO[str],
    ready: re.Pattern[str],
    signal_ready: threading.Event,
    lock: threading.Lock,
) -> None:
    """Keep every line of one pipe (and log it); on `ready`'s first match signal."""
    with contextlib.suppress(ValueError, OSError):  # the pipe or the log closed under us
        for raw in stream:
            line = raw.rstrip("\n")
            server.lines.append(line)
            if server.log is not None:
                with lock:
                    server.log.write(raw if raw.endswith("\n") else raw + "\n")
                    server.log.flush()
            if not server.ready and (match := ready.search(line)):
                server.url = match.groupdict().get("url") or ""
                server.ready = True
                signal_ready.set()
    signal_ready.set()  # EOF: the process is gone, ready or not


def start_server(
    argv: Sequence[str],
    ready: re.Pattern[str],
    timeout_s: float = 20.0,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    on_start: Callable[[ServerProcess], None] | None = None,
    ready_check: Callable[[], bool] | None = None,
    cwd: Path | None = None,
) -> ServerProcess:
    """Start `argv` and return once stdout or stderr prints a line matching `ready`, or
    `ready_check()` (polled while the process runs) says it is ready.

    Both pipes are drained by threads for the process's whole life, so a chatty
    server never blocks on a full pipe; with `log_path` every line also goes to
    that file. If the process exits or stays silent past the deadline it is
    stopped and ServerStartError carries what it printed. `on_start` gets the
    process as soon as it exists, so an owner can stop it before it is ready.
    """
    log = log_path.open("a", encoding="utf-8") if log_path is not None else None
    popen = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,
        cwd=cwd,
    )
    STARTED.append(popen)
    reaper.tie(popen.pid, log_path.stem if log_path else Path(argv[0]).name, _dir(log_path))
    server = ServerProcess(popen, log=log)
    if on_start is not None:
        on_start(server)
    signal_ready = threading.Event()
    lock = threading.Lock()
    for stream in (popen.stdout, popen.stderr):
        pump = threading.Thread(
            target=_pump, args=(server, stream, ready, signal_ready, lock), daemon=True
        )
        pump.start()
        server._pumps.append(pump)

    def ready_now() -> bool:
        """A ready line (or EOF) was seen, or the check says ready while the process runs."""
        if signal_ready.is_set():
            return True
        if ready_check is not None and popen.poll() is None and ready_check():
            server.ready = True
        return server.ready

    try:
        try:  # the ready line wakes the wait at once: it waits on the pumps' event
            wait_for(ready_now, timeout_s=timeout_s, interval_s=POLL_S, pause=signal_ready.wait)
        except DeadlineExceeded:
            what = "no ready line" if ready_check is None else "not ready"
            raise ServerStartError(f"{what} within {timeout_s:g} s:\n{server.output}") from None
        if not server.ready:
            code = popen.wait(timeout=timeout_s)
            raise ServerStartError(f"exited with {code} before it was ready:\n{server.output}")
    except BaseException:
        server.stop()
        raise
    return server


def _dir(log_path: Path | None) -> Path | None:
    return None if log_path is None else log_path.parent


@contextlib.contextmanager
def running_server(
    argv: Sequence[str], ready: re.Pattern[str], **options: object
) -> Iterator[ServerProcess]:
    """`start_server` as a context manager: the process is stopped however the block ends."""
    server = start_server(argv, ready, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def run_command(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: dict[str, str] | None = None,
    tie: str | None = None,
    merge_output: bool = False,
) -> subprocess.CompletedProcess[str] | None:
    """Run a command to its end in a session of its own; None if it took over `timeout_s`.

    If it times out or a signal comes, its whole process group is killed before this
    returns: a step of a build never writes into a folder being removed. With `tie` the
    command is also tied to the harness's life under that name (a killed harness's reaper
    kills it first: a compose command creates nothing after). With `merge_output` its
    stderr goes into its stdout.
    """
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    if tie is not None:
        reaper.tie(process.pid, tie, None)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    finally:
        if process.poll() is None:  # timed out, or a signal (the first) came
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return subprocess.CompletedProcess(list(argv), process.returncode, stdout, stderr or "")
