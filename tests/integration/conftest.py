"""Fixtures that run the real mock server as a subprocess on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from harness.processes import ServerProcess, running_server
from mock_meta_api.server import READY, command

from .mockapi import MockAPI
from .receiver import WebhookReceiver, webhook_receiver


@pytest.fixture(scope="session")
def mock_server() -> Iterator[ServerProcess]:
    """One mock with default settings, shared by the tests that only need defaults."""
    with running_server(command(), READY) as server:
        yield server
    assert_no_traceback(server)


@pytest.fixture
def mock(mock_server: ServerProcess) -> Iterator[MockAPI]:
    """The shared mock, with default behaviours and an empty journal for this test."""
    api = MockAPI(mock_server.url)
    try:
        api.reset()
        yield api
    finally:
        api.close()
        assert mock_server.popen.poll() is None, f"the mock died:\n{mock_server.output}"


@pytest.fixture
def start_mock() -> Iterator[Callable[..., tuple[ServerProcess, MockAPI]]]:
    """Start a dedicated mock with extra CLI options; all are stopped after the test."""
    servers: list[ServerProcess] = []
    with ExitStack() as stack:

        def start(*options: str) -> tuple[ServerProcess, MockAPI]:
            server = stack.enter_context(running_server(command(*options), READY))
            servers.append(server)
            api = MockAPI(server.url)
            stack.callback(api.close)
            return server, api

        yield start
    for server in servers:
        assert_no_traceback(server)


def assert_no_traceback(server: ServerProcess) -> None:
    """A stopped server printed no Python traceback (a crash the answers might hide)."""
    assert "Traceback" not in server.output, server.output


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP server on 127.0.0.1 recording the webhooks posted to it."""
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def harness_run_dir(tmp_path: Path) -> Iterator[Path]:
    """The run directory of a harness started as a subprocess.

    After the test, however it ended, every process its stack listed in
    processes.json that is still running is killed by PID, with its group.
    """
    run_dir = tmp_path / "run"
    yield run_dir
    listing = run_dir / "processes.json"
    for pid in json.loads(listing.read_text()).values() if listing.exists() else ():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
