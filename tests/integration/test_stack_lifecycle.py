"""No process outlives the stack: after success, an exception, a failed test, Ctrl-C or SIGTERM.

Each check collects the PIDs the stack started (with everything they forked,
such as prefork pool processes) and asserts that none of them, nor anything
left in their process groups, is still running afterwards.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness.processes import ServerProcess, ServerStartError, start_server
from harness.stack import LaneSpec, LocalStack, StackSpec
from harness.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.lifecycle]

PREFORK = LaneSpec(name="prefork", pool="prefork", concurrency=2)
STOP_DEADLINE_S = 60


def survivors(pids: set[int]) -> list[str]:
    """Live processes among `pids` or in their process groups (zombies count as gone)."""
    found = []
    for process in psutil.process_iter(["pid", "name", "status"]):
        try:
            group = os.getpgid(process.pid)
        except ProcessLookupError:
            continue
        if (process.pid in pids or group in pids) and process.status() != psutil.STATUS_ZOMBIE:
            found.append(f"{process.pid} {process.name()} (group {group})")
    return found


def test_a_stack_stops_every_process_it_started(tmp_path: Path) -> None:
    with LocalStack(StackSpec(lanes=[PREFORK]), tmp_path) as stack:
        pids = stack.pids()
        names = set(stack.processes())
    assert names == {"broker", "mock", "bot-prefork", "worker-prefork"}
    assert len(pids) >= len(names) + 2, "the prefork worker's two pool processes are counted"
    assert survivors(pids) == []


def test_an_exception_inside_the_stack_stops_everything(tmp_path: Path) -> None:
    stack = LocalStack(StackSpec(lanes=[PREFORK]), tmp_path)
    pids: set[int] = set()

    def fail_inside() -> None:
        with stack:
            pids.update(stack.pids())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert len(pids) >= 4
    assert survivors(pids) == []


def test_a_failed_start_stops_what_had_started(tmp_path: Path) -> None:
    """A worker that never gets ready (its broker does not answer) fails the start, cleanly."""
    stuck = LaneSpec(name="stuck", pool="solo", env={"CELERY_BROKER_URL": "redis://127.0.0.1:1/0"})
    stack = LocalStack(StackSpec(lanes=[stuck], start_timeout_s=20), tmp_path)
    with pytest.raises(ServerStartError, match="no ready line within 20 s"):
        stack.start()
    started = stack.processes()
    assert set(started) == {"broker", "mock", "bot-stuck", "worker-stuck"}
    assert all(not process.alive() for process in started.values())
    assert survivors({process.pid for process in started.values()}) == []
    assert (
        "Cannot connect to redis://:**@127.0.0.1:1/0" in (tmp_path / "worker-stuck.log").read_text()
    )


FAILING_TEST = """
import json
from pathlib import Path

from harness.stack import LaneSpec, LocalStack, StackSpec


def test_fails_inside_the_stack(tmp_path):
    with LocalStack(StackSpec(lanes=[LaneSpec(name="prefork", pool="prefork", concurrency=2)]),
                    tmp_path) as stack:
        Path({pids_file!r}).write_text(json.dumps(sorted(stack.pids())))
        assert False, "a failing assertion inside the stack"
"""


def test_a_failed_test_leaves_no_process(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pids_file = tmp_path / "pids.json"
    pytester.makepyfile(FAILING_TEST.format(pids_file=str(pids_file)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=STOP_DEADLINE_S * 2)
    result.assert_outcomes(failed=1)
    pids = set(json.loads(pids_file.read_text()))
    assert len(pids) >= 4
    assert survivors(pids) == []


HOLD_STACK = """
import json, sys, threading
from pathlib import Path
from harness.stack import LaneSpec, LocalStack, StackSpec
from harness.signals import orderly_shutdown

spec = StackSpec(lanes=[LaneSpec(name="prefork", pool="prefork", concurrency=2)])
with orderly_shutdown(), LocalStack(spec, Path(sys.argv[1])) as stack:
    print("PIDS", json.dumps(sorted(stack.pids())), flush=True)
    print("STACK UP", flush=True)
    threading.Event().wait()
"""


def hold_stack(tmp_path: Path, run_dir: Path) -> tuple[ServerProcess, set[int]]:
    """A harness process holding a one-lane stack up, and the PIDs of that stack."""
    script = tmp_path / "hold_stack.py"
    script.write_text(HOLD_STACK)
    holder = start_server(
        [sys.executable, str(script), str(run_dir)],
        re.compile(r"^STACK UP$"),
        timeout_s=STOP_DEADLINE_S,
    )
    line = next(line for line in holder.lines if line.startswith("PIDS "))
    return holder, set(json.loads(line.removeprefix("PIDS ")))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_to_the_harness_stops_the_stack(
    tmp_path: Path, harness_run_dir: Path, signum: int
) -> None:
    run_dir = harness_run_dir
    holder, pids = hold_stack(tmp_path, run_dir)
    try:
        os.kill(holder.pid, signum)
        holder.popen.wait(timeout=STOP_DEADLINE_S)
    finally:
        holder.stop(grace_s=STOP_DEADLINE_S)
    assert "KeyboardInterrupt" in holder.output, holder.output
    assert survivors(pids) == []


def test_a_second_ctrl_c_while_stopping_still_stops_everything(
    tmp_path: Path, harness_run_dir: Path
) -> None:
    run_dir = harness_run_dir
    holder, pids = hold_stack(tmp_path, run_dir)
    try:
        os.kill(holder.pid, signal.SIGINT)
        worker_log = run_dir / "worker-prefork.log"
        wait_for(
            worker_log.read_text,
            lambda text: "Warm shutdown" in text,
            timeout_s=STOP_DEADLINE_S,
            interval_s=0.01,
            what="the stack stopping its worker",
        )
        os.kill(holder.pid, signal.SIGINT)
        holder.popen.wait(timeout=STOP_DEADLINE_S)
    finally:
        holder.stop(grace_s=STOP_DEADLINE_S)
    # The second is noted, not raised into the teardown (harness.signals): one interrupt.
    assert holder.output.count("KeyboardInterrupt: signal 2") == 1, holder.output
    assert survivors(pids) == []


HOLD_STARTING_STACK = """
import sys
from pathlib import Path
from harness.stack import LaneSpec, LocalStack, StackSpec

lanes = [LaneSpec(name=pool, pool=pool) for pool in ("solo", "prefork", "threads", "gevent")]
LocalStack(StackSpec(lanes=lanes), Path(sys.argv[1])).start()
"""


def test_ctrl_c_during_start_up_stops_everything_without_waiting(
    tmp_path: Path, harness_run_dir: Path
) -> None:
    """Interrupted while the workers are still starting: they are stopped, not waited for."""
    script = tmp_path / "start_stack.py"
    script.write_text(HOLD_STARTING_STACK)
    run_dir = harness_run_dir
    listing = run_dir / "processes.json"
    workers = {f"worker-{pool}" for pool in ("solo", "prefork", "threads", "gevent")}
    starter = subprocess.Popen(
        [sys.executable, str(script), str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: set(json.loads(listing.read_text())) if listing.exists() else set(),
            lambda names: workers <= names,
            timeout_s=STOP_DEADLINE_S,
            interval_s=0.01,
            what="every worker launched (listed in processes.json)",
        )
        starter.send_signal(signal.SIGINT)
        output, _ = starter.communicate(timeout=STOP_DEADLINE_S)
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
    assert "KeyboardInterrupt" in output, output
    not_ready = [w for w in workers if " ready." not in (run_dir / f"{w}.log").read_text()]
    assert not_ready, "interrupted too late: every worker was already ready"
    pids = set(json.loads(listing.read_text()).values())
    assert survivors(pids) == []


HELD_BY_A_TEST = """
from pathlib import Path

from harness.stack import LaneSpec, LocalStack, StackSpec
from harness.waiting import wait_for


def test_holds_a_stack(tmp_path):
    run_dir = Path(RUN_DIR)
    with LocalStack(StackSpec(lanes=[LaneSpec(name="solo", pool="solo")]), run_dir):
        (run_dir / "UP").write_text("up")
        wait_for(lambda: False, timeout_s=STOP_DEADLINE_S, what="SIGTERM")
"""


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_a_test_run_terminated_from_outside_leaves_no_stack(
    tmp_path: Path, harness_run_dir: Path, sigint: str
) -> None:
    """As a CI time limit does: SIGTERM to pytest, started in a terminal or in the background
    (SIGINT ignored there); the stack a test holds is stopped with the session."""
    test_file = tmp_path / "test_held.py"
    held = HELD_BY_A_TEST.replace("RUN_DIR", repr(str(harness_run_dir)))
    test_file.write_text(held.replace("STOP_DEADLINE_S", str(STOP_DEADLINE_S)))
    ignore = sigint == "ignored"
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(test_file), "-p", "tests.signals", "-q"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore else None,
    )
    try:
        wait_for(
            lambda: session.poll() is not None or (harness_run_dir / "UP").exists(),
            timeout_s=STOP_DEADLINE_S,
            what="the test's stack to be up",
        )
        assert session.poll() is None, session.communicate()[0]
        pids = set(json.loads((harness_run_dir / "processes.json").read_text()).values())
        session.send_signal(signal.SIGTERM)
        output = session.communicate(timeout=STOP_DEADLINE_S)[0]
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)
            session.wait()
    assert "KeyboardInterrupt" in output or "Interrupted" in output, output
    assert survivors(pids) == []
