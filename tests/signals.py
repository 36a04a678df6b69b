"""How the test session takes signals, however it was started.

- SIGTERM (a CI job's time limit, `timeout`, a cancel) becomes KeyboardInterrupt, so
  pytest tears down every fixture and each run stops its stack: a killed test run leaves
  no broker, mock, webhook or worker behind.
- A session started with SIGINT ignored (a script's background job: the shell ignores
  SIGINT there, and children inherit it) gets Python's own SIGINT handler back, so the
  processes the tests start, and then interrupt on purpose, take Ctrl-C as users' do.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import pytest


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}: tearing the test session down")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
