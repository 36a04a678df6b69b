"""Start a server subprocess, wait for its "listening on URL" line, stop it by PID.

The one way the project runs processes (tests, benchmarks, the stack): no fixed
sleeps — wait on the process's own ready line with a deadline — and always stop
what was started: SIGTERM, wait, then SIGKILL. Each child gets its own session,
so a terminal's Ctrl-C reaches only its owner, which then stops it by PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

# Every process started here, so a session can check that none outlives it.
STARTED: list[subprocess.Popen[str]] = []


class ServerStartError(RuntimeError):
    """The server exited, or printed no ready line before the deadline."""


@dataclass
class ServerProcess:
    """A running server subprocess and everything it printed so far (stdout and stderr)."""

    popen: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    _pumps: list[threading.Thread] = field(default_factory=list, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, grace_s: float = 5.0) -> int:
        """Stop by PID: SIGTERM, wait up to `grace_s`, then SIGKILL; collect the last output.

        Returns the exit code. Idempotent.
        """
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=grace_s)
        for pump in self._pumps:  # the pipes hit EOF once the process is gone
            pump.join(timeout=grace_s)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
        return self.popen.returncode


def _pump(
    server: ServerProcess,
    stream: IO[str],
    ready: re.Pattern[str] | None,
    signal: threading.Event,
) -> None:
    """Keep every line of one pipe; on `ready`'s match record the URL and signal."""
    with contextlib.suppress(ValueError, OSError):  # the pipe closed under us
        for raw in stream:
            line = raw.rstrip("\n")
            server.lines.append(line)
            if ready is not None and not server.url and (match := ready.search(line)):
                server.url = match["url"]
                signal.set()
    if ready is not None:
        signal.set()  # EOF: the process is gone, ready or not


def start_server(
    argv: Sequence[str],
    ready: re.Pattern[str],
    timeout_s: float = 20.0,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Start `argv` and return once stdout prints a line matching `ready` (group "url").

    Both pipes are drained by threads for the process's whole life, so a chatty
    server never blocks on a full pipe. If the process exits or stays silent past
    the deadline it is stopped and ServerStartError carries what it printed.
    """
    popen = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,
    )
    STARTED.append(popen)
    server = ServerProcess(popen)
    signal = threading.Event()
    for stream, pattern in ((popen.stdout, ready), (popen.stderr, None)):
        pump = threading.Thread(target=_pump, args=(server, stream, pattern, signal), daemon=True)
        pump.start()
        server._pumps.append(pump)
    try:
        if not signal.wait(timeout_s):
            raise ServerStartError(f"no ready line within {timeout_s} s:\n{server.output}")
        if not server.url:
            code = popen.wait(timeout=timeout_s)
            raise ServerStartError(f"exited with {code} before it was ready:\n{server.output}")
    except BaseException:
        server.stop()
        raise
    return server


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
