"""The process helper itself: readiness, failure reports, and stopping by PID."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.processes import ServerStartError, running_server, start_server
from mock_meta_api.server import READY, command

pytestmark = pytest.mark.integration


def test_a_server_that_exits_early_is_reported_with_its_output(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ServerStartError, match="exited with 2") as caught:
        start_server(command("--config", str(missing)), READY)
    assert str(missing) in str(caught.value)


def test_a_silent_process_is_stopped_at_the_deadline() -> None:
    argv = [sys.executable, "-c", "import time; print('booting', flush=True); time.sleep(60)"]
    with pytest.raises(ServerStartError, match=r"no ready line within 0\.5 s") as caught:
        start_server(argv, READY, timeout_s=0.5)
    assert "booting" in str(caught.value)


def test_stop_ends_the_process_even_when_the_block_fails() -> None:
    started = []

    def failing_test() -> None:
        with running_server(command(), READY) as server:
            started.append(server)
            assert server.popen.poll() is None
            raise RuntimeError("test failed")

    with pytest.raises(RuntimeError, match="test failed"):
        failing_test()
    [server] = started
    assert server.popen.returncode is not None
    assert server.stop() == server.popen.returncode  # idempotent


IGNORES_SIGTERM = [
    sys.executable,
    "-c",
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('mock-meta-api listening on http://127.0.0.1:1', flush=True)\n"
    "time.sleep(60)",
]


@pytest.mark.parametrize("grace_s", [0.5, 0.0], ids=["grace", "no-grace"])
def test_a_process_ignoring_sigterm_is_killed(grace_s: float) -> None:
    """`docker stop -t 0` too: no grace at all still waits for the SIGKILL to land."""
    server = start_server(IGNORES_SIGTERM, READY)
    assert server.url == "http://127.0.0.1:1"
    assert server.stop(grace_s=grace_s) == -9
