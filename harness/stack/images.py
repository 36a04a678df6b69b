"""The compose stacks' images with no registry, built from wherever the harness is installed.

Three images: a Debian base (debootstrap, `docker import`), the broker (Debian's
redis-server on it) and the project image. The project image's build context is put
together in a temporary directory from what is installed, never from a checkout: the
running harness's packages (`harness`, `mock_meta_api`), a requirements file pinning
every distribution of the harness's dependency closure to the version installed here
(markers judged for the image's Python on Linux x86_64), those wheels downloaded on this
host (builds here reach Debian's mirror, not the package index), and the shipped
Dockerfile. Wheels are kept under ~/.cache/stagger-harness/wheels/<python>/, one folder
per requirement set, renamed into place only once complete. Docker tags an image only
when its build succeeded, and every temporary file is removed however the build ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from importlib.resources import files
from pathlib import Path
from typing import TypeVar

import docker
import docker.errors
from docker.utils import parse_repository_tag
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from ..errors import RunError
from ..processes import run_command
from ..resources import compose_dir
from .envs import DISTRIBUTION, PACKAGES, cache_dir

DEFAULT_TAGS = {
    "BASE_IMAGE": "stagger/debian:bookworm",
    "BROKER_IMAGE": "stagger/redis:bookworm",
    "STAGGER_IMAGE": "stagger/harness:local",
}
# The python3 of each Debian release: the wheels are chosen for it.
SUITE_PYTHON = {"bookworm": "3.11.2", "trixie": "3.13.5"}
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# In the image, not harness dependencies: Flower, for the stacks' `observe` profile; Django,
# for a team's Django bot built FROM this image (the offline base of `own_services`).
IMAGE_EXTRAS = ("flower>=2", "django>=5.1")
VERSION_LABEL = "org.opencontainers.image.version"
SOURCE_LABEL = "io.stagger.harness.installed-at"  # the harness package the image came from
DOCKERFILE_LABEL = "io.stagger.harness.dockerfile-sha256"  # the broker image's, as built
STEP_TIMEOUT_S = 900.0  # debootstrap or a download on a slow mirror
KEEP_WHEEL_SETS = 3  # wheel folders kept per Python (each ~100 MB)
WHEELS_FORMAT = 1  # bump when the way the wheel folders are made changes
BASE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
]

Say = Callable[[str], None]
T = TypeVar("T")


class ImageError(RunError):
    """An image that could not be built; the message (one line) says why."""


@dataclass(frozen=True)
class ImageSettings:
    """The tags to build and what the base is made of."""

    base: str = DEFAULT_TAGS["BASE_IMAGE"]
    broker: str = DEFAULT_TAGS["BROKER_IMAGE"]
    project: str = DEFAULT_TAGS["STAGGER_IMAGE"]
    suite: str = "bookworm"
    python: str = SUITE_PYTHON["bookworm"]
    mirror: str = DEFAULT_MIRROR
    glibc_minor: int = 36  # the newest manylinux_2_N wheel the image's glibc runs

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ImageSettings:
        """BASE_IMAGE, BROKER_IMAGE, STAGGER_IMAGE, DEBIAN_SUITE, DEBIAN_MIRROR,
        PYTHON_VERSION and GLIBC_MINOR, as the compose files and the old script read them."""
        suite = environ.get("DEBIAN_SUITE") or "bookworm"
        python = environ.get("PYTHON_VERSION") or SUITE_PYTHON.get(suite)
        if python is None:
            raise ImageError(f"set PYTHON_VERSION to the python3 of Debian {suite}")
        glibc = environ.get("GLIBC_MINOR") or "36"
        if not glibc.isdigit():
            raise ImageError(f"GLIBC_MINOR must be a number (36 for bookworm), got {glibc!r}")
        return cls(
            base=environ.get("BASE_IMAGE") or DEFAULT_TAGS["BASE_IMAGE"],
            broker=environ.get("BROKER_IMAGE") or DEFAULT_TAGS["BROKER_IMAGE"],
            project=environ.get("STAGGER_IMAGE") or DEFAULT_TAGS["STAGGER_IMAGE"],
            suite=suite,
            python=python,
            mirror=environ.get("DEBIAN_MIRROR") or DEFAULT_MIRROR,
            glibc_minor=int(glibc),
        )


# -- the requirements ------------------------------------------------------------------------


def target_environment(python: str) -> dict[str, str]:
    """Environment markers as the image's Python on Linux x86_64 sees them."""
    return {
        "python_full_version": python,
        "python_version": ".".join(python.split(".")[:2]),
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def image_requirements(python: str) -> list[str]:
    """`name==version` for every distribution of the harness's closure (and the image's
    extras) installed here; a bare requirement for those the image needs and this
    environment lacks (another Python's backport, Flower), for pip to resolve."""
    target = target_environment(python)
    pinned: dict[str, str] = {}
    unpinned: list[str] = []
    seen: set[tuple[str, str]] = set()
    todo = [Requirement(text) for text in metadata.requires(DISTRIBUTION) or []]
    todo = [r for r in todo if r.marker is None or r.marker.evaluate(target)]
    todo += [Requirement(text) for text in IMAGE_EXTRAS]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            requirement.marker = None
            unpinned.append(str(requirement))
            continue
        pinned[name] = dist.version
        for extra in ("", *sorted(requirement.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for text in dist.requires or []:
                needed = Requirement(text)
                if needed.marker is None or needed.marker.evaluate(target | {"extra": extra}):
                    todo.append(needed)
    unpinned = [
        text for text in unpinned if canonicalize_name(Requirement(text).name) not in pinned
    ]
    return sorted(f"{name}=={version}" for name, version in pinned.items()) + sorted(set(unpinned))


def _pip() -> list[str]:
    """pip of this environment, else pip run by uv (a uv-made venv has no pip)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise ImageError("downloading the wheels needs pip or uv here: install one of them")
    return [uv, "tool", "run", "--quiet", "--from", "pip", "pip"]


def wheels(settings: ImageSettings, say: Say) -> Path:
    """A folder of wheels for the image's Python, with `requirements.txt` pinning each."""
    requirements = image_requirements(settings.python)
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(settings.glibc_minor, 4, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    identity = {"format": WHEELS_FORMAT, "requirements": requirements, "platforms": platforms}
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    root = cache_dir().parent / "wheels" / settings.python
    final = root / key
    if (final / "requirements.txt").exists():
        os.utime(final)  # recently used: kept by _prune
        say(f"wheels: present in {final}")
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _temporary_dir(root, f".{key}.", ".building") as building:
        (building / "requirements.in").write_text("\n".join(requirements) + "\n")
        python = settings.python.split(".")
        argv = [*_pip(), "download", "--quiet", "--disable-pip-version-check"]
        argv += ["--only-binary=:all:", "--python-version", settings.python, "--implementation"]
        argv += ["cp", "--abi", f"cp{python[0]}{python[1]}"]
        argv += [arg for platform in platforms for arg in ("--platform", platform)]
        argv += ["--dest", str(building), "--requirement", str(building / "requirements.in")]
        _run(argv, "pip download")
        found = sorted(parse_wheel_filename(path.name)[:2] for path in building.glob("*.whl"))
        pins = [f"{name}=={version}" for name, version in found]
        (building / "requirements.txt").write_text("\n".join(pins) + "\n")
        with contextlib.suppress(OSError):  # a rival build that finished first: keep its
            building.rename(final)
    if not (final / "requirements.txt").exists():
        raise ImageError(f"the wheels could not be put in {final}")
    _prune(root, keep=final)
    say(f"wheels: downloaded into {final}")
    return final


def _prune(root: Path, keep: Path) -> None:
    """The newest few wheel folders stay (another install's build may be using one)."""
    complete = [path for path in root.iterdir() if (path / "requirements.txt").exists()]
    complete.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    for path in complete[KEEP_WHEEL_SETS:]:
        if path != keep:
            shutil.rmtree(path, ignore_errors=True)


# -- processes and temporary files -----------------------------------------------------------


@contextlib.contextmanager
def _temporary_dir(parent: Path | None, prefix: str, suffix: str = "") -> Iterator[Path]:
    """A new directory, removed on the way out (any mount left inside it undone first)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    try:
        yield path
    finally:
        if path.exists():
            _unmount_below(path)
            shutil.rmtree(path, ignore_errors=True)


def _unmount_below(path: Path) -> None:
    """debootstrap mounts /proc and /sys in its target; an interrupted one leaves them."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)


def _run(argv: list[str], what: str) -> None:
    """Run a step in a process group of its own: on failure, timeout or Ctrl-C the whole
    group dies before this returns, so nothing writes into a folder being removed."""
    answer = run_command(argv, timeout_s=STEP_TIMEOUT_S, merge_output=True)
    if answer is None:
        raise ImageError(f"{what} took over {STEP_TIMEOUT_S:g} s")
    if answer.returncode != 0:
        lines = [line.strip() for line in answer.stdout.splitlines() if line.strip()]
        telling = [line for line in lines if "error" in line.lower()] or lines or ["no output"]
        raise ImageError(f"{what} failed (exit {answer.returncode}): {telling[-1]}")


# -- the images ------------------------------------------------------------------------------


def engine() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise ImageError(
            f"no Docker engine answers at {where} ({type(exc).__name__}): start dockerd "
            "(Debian: apt-get install docker.io) or set DOCKER_HOST"
        ) from None
    return client


def present(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def base_image(client: docker.DockerClient, settings: ImageSettings) -> None:
    """`debootstrap --variant=minbase`, imported as one layer."""
    with _temporary_dir(None, "stagger-base-") as work:
        rootfs = work / "rootfs"
        argv = ["debootstrap", "--variant=minbase", "--include=ca-certificates"]
        _run([*argv, settings.suite, str(rootfs), settings.mirror], "debootstrap")
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        _run(["tar", "-C", str(rootfs), "-c", "-f", str(work / "rootfs.tar"), "."], "tar")
        repository, tag = parse_repository_tag(settings.base)
        try:
            client.api.import_image_from_file(
                str(work / "rootfs.tar"), repository=repository, tag=tag, changes=BASE_CHANGES
            )
        except docker.errors.APIError as exc:
            raise ImageError(f"docker import failed: {exc.explanation or exc}") from None
    if not present(client, settings.base):
        raise ImageError(f"docker import did not make {settings.base}")


def _build(client: docker.DockerClient, tag: str, rebuild: bool, **kwargs: object) -> None:
    """A build that tags only when it succeeds; its intermediate containers removed."""
    try:
        client.images.build(tag=tag, nocache=rebuild, rm=True, forcerm=True, pull=False, **kwargs)
    except docker.errors.BuildError as exc:
        said = [str(entry.get("stream", "")).strip() for entry in exc.build_log]
        said = [line for line in said if line and not line.startswith(("Step ", "---> "))]
        cause = f" ({said[-1]})" if said else ""
        raise ImageError(f"building {tag} failed: {exc.msg.strip()}{cause}") from None
    except docker.errors.APIError as exc:
        raise ImageError(f"building {tag} failed: {exc.explanation or exc}") from None


def broker_dockerfile() -> tuple[bytes, str]:
    """The broker image's Dockerfile and its SHA-256 (the image is labelled with it)."""
    dockerfile = (compose_dir() / "broker.Dockerfile").read_bytes()
    return dockerfile, hashlib.sha256(dockerfile).hexdigest()


def broker_current(client: docker.DockerClient, tag: str) -> bool:
    """The broker image is there and was built from this release's Dockerfile."""
    try:
        labels = client.images.get(tag).labels or {}
    except docker.errors.ImageNotFound:
        return False
    return labels.get(DOCKERFILE_LABEL) == broker_dockerfile()[1]


def broker_image(client: docker.DockerClient, settings: ImageSettings, rebuild: bool) -> None:
    dockerfile, digest = broker_dockerfile()
    _build(
        client,
        settings.broker,
        rebuild,
        fileobj=io.BytesIO(dockerfile),
        buildargs={"BASE_IMAGE": settings.base},
        labels={DOCKERFILE_LABEL: digest},
    )


def project_context(destination: Path, wheel_dir: Path) -> None:
    """The project image's build context: Dockerfile, requirements, wheels, packages."""
    shutil.copy2(compose_dir() / "Dockerfile", destination / "Dockerfile")
    shutil.copy2(wheel_dir / "requirements.txt", destination / "requirements.txt")
    (destination / "wheels").mkdir()
    for wheel in wheel_dir.glob("*.whl"):
        try:
            os.link(wheel, destination / "wheels" / wheel.name)
        except OSError:  # another file system
            shutil.copy2(wheel, destination / "wheels" / wheel.name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(Path(str(files(package))), destination / package, ignore=ignore)


def source_labels() -> dict[str, str]:
    """Which install an image was built from: its version and where its packages live."""
    return {
        VERSION_LABEL: metadata.version(DISTRIBUTION),
        SOURCE_LABEL: str(Path(str(files("harness"))).resolve()),
    }


def project_image(
    client: docker.DockerClient, settings: ImageSettings, rebuild: bool, wheel_dir: Path
) -> None:
    with _temporary_dir(None, "stagger-context-") as context:
        project_context(context, wheel_dir)
        _build(client, settings.project, rebuild, path=str(context), labels=source_labels())


def check_host(settings: ImageSettings, rebuild: bool, client: docker.DockerClient) -> None:
    """What the steps to come need, checked before any starts."""
    if rebuild or not present(client, settings.base):
        if shutil.which("debootstrap") is None:
            raise ImageError("debootstrap is missing: apt-get install debootstrap")
        if os.geteuid() != 0:
            raise ImageError(f"debootstrap (the base image {settings.base}) needs root: use sudo")


def build_images(settings: ImageSettings, rebuild: bool, say: Say) -> None:
    """Base and broker when missing (or `rebuild`; the broker also when it was built from
    another release's Dockerfile, which its label tells); the project image always, from
    the build cache when its context did not change."""
    client = engine()
    try:
        check_host(settings, rebuild, client)
        if not rebuild and present(client, settings.base):
            say(f"base image {settings.base}: present")
        else:
            _timed(f"base image {settings.base}", lambda: base_image(client, settings), say)
        if not rebuild and broker_current(client, settings.broker):
            say(f"broker image {settings.broker}: present")
        else:
            _timed(
                f"broker image {settings.broker}",
                lambda: broker_image(client, settings, rebuild),
                say,
            )
        wheel_dir = _timed(
            f"wheels for Python {settings.python}", lambda: wheels(settings, say), say
        )
        _timed(
            f"project image {settings.project}",
            lambda: project_image(client, settings, rebuild, wheel_dir),
            say,
        )
    finally:
        client.close()


def _timed(name: str, step: Callable[[], T], say: Say) -> T:
    started = time.monotonic()
    say(f"==> {name}")
    value = step()
    say(f"==> {name}: {time.monotonic() - started:.0f} s")
    return value
