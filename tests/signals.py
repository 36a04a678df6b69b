"""How the test session takes signals, however it was started.

- SIGTERM (a CI job's time limit, `timeout`, a cancel) becomes KeyboardInterrupt, so
  pytest tears down every fixture and each run stops its stack: a killed test run leaves
  no broker, mock, webhook or worker behind. Only the first signal is raised; a burst
  (a process group signalled, `uv run` forwarding) is noted, never raised into that
  teardown (`harness.signals`).
- A session started with SIGINT ignored (a script's background job: the shell ignores
  SIGINT there, and children inherit it) gets Python's own SIGINT handler back, so the
  processes the tests start, and then interrupt on purpose, take Ctrl-C as users' do.
"""

from __future__ import annotations

import signal
import threading

import pytest

from harness import signals


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signals.install()
