"""The upstream-ready reproduction in upstream/ still shows what its report says, on the
locked Celery: the solo, prefork and threads workers exit with the AttributeError when
Redis goes away while they hold ETA tasks. When a Celery release fixes it, this fails:
update the report (and the findings on faults in docs/) with the release that fixed it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPRO = (
    Path(__file__).resolve().parents[2]
    / "upstream"
    / "celery-5.7-worker-exits-on-lost-redis"
    / "repro.py"
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


@pytest.mark.parametrize("pool", ["solo", "prefork", "threads"])
def test_the_worker_exits_with_the_attribute_error(pool: str) -> None:
    assert shutil.which("redis-server"), "the reproduction needs redis-server on PATH"
    # In a session of its own, so that a timeout takes the worker and redis-server the
    # script started with it, not only the script.
    script = subprocess.Popen(
        [sys.executable, str(REPRO), pool],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        said, _ = script.communicate(timeout=100)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(script.pid, signal.SIGKILL)
        script.wait()
    assert script.returncode == 1, said
    assert "reproduced: the worker exited" in said
