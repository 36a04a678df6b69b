"""`harness images` on the engine: a refusal is one line before anything is built, and a
build interrupted with Ctrl-C leaves no temporary directory, process, mount or tag."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from harness.waiting import wait_for

pytestmark = [pytest.mark.compose, pytest.mark.timeout(300)]

HARNESS_IMAGES = [sys.executable, "-m", "harness", "images"]
TAGS = {
    "BASE_IMAGE": "stagger/debian:images-test",
    "BROKER_IMAGE": "stagger/redis:images-test",
    "STAGGER_IMAGE": "stagger/harness:images-test",
}
INTERRUPT_S = 30.0  # from SIGINT to exit, debootstrap's group killed and its folder removed


def _tagged(client: docker.DockerClient) -> list[str]:
    found = []
    for tag in TAGS.values():
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.get(tag)
            found.append(tag)
    return found


def _processes_under(path: Path) -> list[str]:
    """Command lines of the processes that name `path` (debootstrap and its children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if str(path) in argv:
                found.append(argv)
    return found


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(str(path))]


def test_a_missing_debootstrap_is_one_line_and_builds_nothing(
    docker_engine: docker.DockerClient, tmp_path: Path
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    path = os.pathsep.join(
        part
        for part in os.environ["PATH"].split(os.pathsep)
        if not Path(part, "debootstrap").exists()
    )
    answer = subprocess.run(
        HARNESS_IMAGES,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **TAGS, "PATH": path, "TMPDIR": str(temp)},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    lines = [line for line in (answer.stdout + answer.stderr).splitlines() if line.strip()]
    assert answer.returncode == 2, lines
    assert lines == ["debootstrap is missing: apt-get install debootstrap"]
    assert _tagged(docker_engine) == []
    assert list(temp.iterdir()) == []


def test_ctrl_c_during_a_build_leaves_no_temp_dir_process_mount_or_tag(
    docker_engine: docker.DockerClient, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.fail("debootstrap needs root: run the compose set as root (CI does)")
    temp = tmp_path / "tmp"
    temp.mkdir()
    builder = subprocess.Popen(
        HARNESS_IMAGES,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **TAGS, "TMPDIR": str(temp)},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Interrupt once debootstrap is at work in its root file system.
        wait_for(
            lambda: (
                any(temp.glob("stagger-base-*/rootfs/debootstrap")) or builder.poll() is not None
            ),
            timeout_s=120,
            interval_s=0.1,
            what="debootstrap at work under the temporary directory",
        )
        assert builder.poll() is None, "the build ended before it could be interrupted"
        assert _processes_under(temp), "no debootstrap process seen"
        builder.send_signal(signal.SIGINT)
        started = time.monotonic()
        output, _ = builder.communicate(timeout=INTERRUPT_S)
        took = time.monotonic() - started
    finally:
        if builder.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(builder.pid, signal.SIGKILL)
            builder.wait()
        for tag in _tagged(docker_engine):
            docker_engine.images.remove(tag)
    assert builder.returncode == 130, output
    assert "Traceback" not in output
    assert took < INTERRUPT_S
    assert list(temp.iterdir()) == []
    assert _processes_under(temp) == []
    assert _mounts_under(temp) == []
    assert _tagged(docker_engine) == []
