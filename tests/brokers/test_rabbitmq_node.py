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


class Gone(Exception):
    """The process exited while it was read."""


def epmd_port_of(proc: psutil.Process) -> str | None:
    """The port an epmd process serves: its `-port` argument, else `ERL_EPMD_PORT` in its
    environment (an `epmd -daemon` that `erl` starts inherits it), else None: the
    machine's default. An environment this user may not read is not a harness's."""
    argv = proc.info["cmdline"] or []
    if "-port" in argv[:-1]:
        return argv[argv.index("-port") + 1]
    try:
        return proc.environ().get("ERL_EPMD_PORT")
    except psutil.AccessDenied:
        return None
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        raise Gone from None


def epmds(older_than_s: float = 0.0) -> dict[int, str | None]:
    """Every epmd process on the machine started over `older_than_s` ago, and its port."""
    found: dict[int, str | None] = {}
    for proc in psutil.process_iter(["name", "cmdline", "create_time"]):
        if proc.info["name"] != "epmd" or proc.info["create_time"] > time.time() - older_than_s:
            continue
        try:
            found[proc.pid] = epmd_port_of(proc)
        except Gone:
            continue
    return found


def epmd_pids_on(port: str) -> set[int]:
    return {pid for pid, served in epmds().items() if served == port}


def machine_epmd_pids(older_than_s: float = 0.0) -> set[int]:
    """The epmd processes on the default port. Other tests' nodes (a runner runs another
    set beside this one) start and stop their own epmds meanwhile: they are not counted;
    nor, with `older_than_s`, the `epmd -daemon` a node's `erl` starts, which exits at
    once (its port is taken) but may not have read its environment yet."""
    return {pid for pid, served in epmds(older_than_s).items() if served in (None, "4369")}


def settled_epmd_pids_on(port: str, expected: set[int]) -> set[int]:
    """The epmd processes on `port` once they are `expected`, or as they are after 10 s.
    A node checks its epmd by running `erl`, which starts `epmd -daemon`: a process (and
    its fork) that exits at once when its port is taken, but that a loaded machine lets a
    snapshot catch."""
    try:
        return wait_for(
            lambda: epmd_pids_on(port), lambda pids: pids == expected, timeout_s=10.0, what="epmd"
        )
    except DeadlineExceeded:
        return epmd_pids_on(port)


def test_a_node_of_its_own_starts_answers_and_stops_by_pid(tmp_path: Path) -> None:
    machine = machine_epmd_pids(older_than_s=5.0)
    started = time.monotonic()
    node = rabbitmq.start_node(tmp_path, consumer_timeout_s=5.0, check_interval_s=1.0)
    port = node.env["ERL_EPMD_PORT"]
    try:
        start_s = time.monotonic() - started
        assert node.version.startswith("rabbitmq 3.")
        assert rabbitmq.probe(node.url) == node.version
        assert node.node.startswith("stagger-")
        assert port != "4369"
        assert (tmp_path / "rabbitmq" / "mnesia").is_dir()
        assert "consumer_timeout = 5000" in (tmp_path / "rabbitmq" / "rabbitmq.conf").read_text()
        own = settled_epmd_pids_on(port, {node.epmd.pid})
        assert own == {node.epmd.pid}, "its own epmd, and only that, on its port"
    finally:
        node.stop()
    assert not psutil.pid_exists(node.server.pid)
    assert not psutil.pid_exists(node.epmd.pid)
    assert settled_epmd_pids_on(port, set()) == set(), "nothing left on its port"
    assert machine <= machine_epmd_pids(), "the machine's epmd is left alone"
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
