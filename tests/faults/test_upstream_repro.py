"""The upstream-ready reproduction in upstream/ still shows what its report says, on the
locked Celery: the solo, prefork and threads workers exit with the AttributeError when
Redis goes away while they hold ETA tasks. When a Celery release fixes it, this fails:
update the report (and the findings on faults in docs/) with the release that fixed it."""

from __future__ import annotations

import shutil
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
    done = subprocess.run(
        [sys.executable, str(REPRO), pool],
        capture_output=True,
        text=True,
        timeout=100,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "reproduced: the worker exited" in done.stdout
