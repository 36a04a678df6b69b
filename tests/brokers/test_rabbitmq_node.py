"""The RabbitMQ node the harness starts: its own ports, name, files and epmd; stopped by PID.

The machine's own node and epmd (if any) are never touched. A version that cannot be
installed is refused before anything starts, and leaves nothing in the cache.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from harness.stack import envs, rabbitmq
from harness.stack.broker import BrokerError
from harness.stack.prepare import LaneError, prepare
from harness.stack.spec import LaneSpec, StackSpec
from harness.waiting import DeadlineExceeded, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.brokers, pytest.mark.timeout(120)]


def epmd_pids() -> set[int]:
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "epmd"}


def settled_epmd_pids(expected: set[int]) -> set[int]:
    """The epmd processes once they are `expected`, or as they are after 10 s. A node
    checks its epmd by running `erl`, which starts `epmd -daemon`: a process (and its
    fork) that exits at once when its port is taken, but that a loaded machine lets a
    snapshot catch."""
    try:
        return wait_for(epmd_pids, lambda pids: pids == expected, timeout_s=10.0, what="epmd")
    except DeadlineExceeded:
        return epmd_pids()


def test_a_node_of_its_own_starts_answers_and_stops_by_pid(tmp_path: Path) -> None:
    before = epmd_pids()
    started = time.monotonic()
    node = rabbitmq.start_node(tmp_path, consumer_timeout_s=5.0, check_interval_s=1.0)
    try:
        start_s = time.monotonic() - started
        assert node.version.startswith("rabbitmq 3.")
        assert rabbitmq.probe(node.url) == node.version
        assert node.node.startswith("stagger-")
        assert (tmp_path / "rabbitmq" / "mnesia").is_dir()
        assert "consumer_timeout = 5000" in (tmp_path / "rabbitmq" / "rabbitmq.conf").read_text()
        own = settled_epmd_pids(before | {node.epmd.pid}) - before
        assert own == {node.epmd.pid}, "its own epmd, and only that"
    finally:
        node.stop()
    assert not psutil.pid_exists(node.server.pid)
    assert not psutil.pid_exists(node.epmd.pid)
    assert settled_epmd_pids(before) == before, "the machine's epmd is left alone"
    with pytest.raises(BrokerError):
        rabbitmq.probe(node.url, timeout_s=2.0)
    print(f"rabbitmq node started in {start_s:.1f} s")


def test_a_release_that_cannot_be_installed_is_refused_and_leaves_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(envs.CACHE_VARIABLE, str(tmp_path / "envs"))
    spec = StackSpec(lanes=[LaneSpec(name="ancient", pool="solo", pins={"celery": "0.0.1"})])

    with pytest.raises(LaneError) as raised:
        prepare(spec)

    assert str(raised.value).startswith("lane ancient: celery = '0.0.1' cannot be installed: ")
    assert "celery" in str(raised.value).split("cannot be installed: ", 1)[1]
    assert list((tmp_path / "envs").iterdir()) == []
