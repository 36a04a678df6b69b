"""`harness images`' pure parts: the pinned requirements judged for the image's Python, the
build context put together from the installed packages, and the refusals that need no
engine (building the images for real: tests/compose)."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import pytest

from harness.resources import compose_dir
from harness.stack import images
from harness.stack.images import ImageError, ImageSettings, image_requirements, project_context


class FakeDist:
    def __init__(self, version: str, requires: list[str]) -> None:
        self.version = version
        self.requires = requires


@pytest.mark.unit
def test_every_distribution_of_the_closure_is_pinned_to_its_installed_version_for_the_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed = {
        "alpha": FakeDist("1.0", ["beta[fast]>=2", "gamma ; sys_platform == 'win32'"]),
        "beta": FakeDist("2.1", ["delta ; extra == 'fast'", "epsilon ; extra == 'slow'"]),
        "delta": FakeDist("4.0", ["zeta>=1 ; python_full_version < '3.11.3'"]),
        "eta": FakeDist("7.0", []),
        "flower": FakeDist("2.0.1", ["alpha"]),
    }

    def distribution(name: str) -> FakeDist:
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    fake = SimpleNamespace(
        requires=lambda _: ["alpha>=1", "eta ; python_version < '3.12'"],
        distribution=distribution,
        PackageNotFoundError=metadata.PackageNotFoundError,
    )
    monkeypatch.setattr(images, "metadata", fake)
    monkeypatch.setattr(images, "IMAGE_EXTRAS", ("flower>=2",))  # Django's apart
    # Bookworm's 3.11.2: zeta (not installed here) is needed, by pip's choice of version.
    assert image_requirements("3.11.2") == [
        "alpha==1.0", "beta==2.1", "delta==4.0", "eta==7.0", "flower==2.0.1", "zeta>=1",
    ]  # fmt: skip
    # Trixie's 3.13.5: neither zeta nor eta; never gamma (Windows) nor epsilon (not asked).
    assert image_requirements("3.13.5") == [
        "alpha==1.0",
        "beta==2.1",
        "delta==4.0",
        "flower==2.0.1",
    ]


@pytest.mark.unit
def test_the_real_closure_pins_what_is_installed_here() -> None:
    pinned = dict(line.split("==") for line in image_requirements("3.11.2") if "==" in line)
    assert pinned["celery"] == metadata.version("celery")
    assert pinned["kombu"] == metadata.version("kombu")  # celery's, not the harness's own
    assert "pytest-timeout" not in pinned  # a dev dependency, not the harness's
    assert "stagger-harness" not in pinned  # its packages go in as files


@pytest.mark.unit
def test_the_context_holds_the_installed_packages_without_bytecode(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "requirements.txt").write_text("alpha==1.0\n")
    (wheels / "alpha-1.0-py3-none-any.whl").write_bytes(b"not really a wheel")
    context = tmp_path / "context"
    context.mkdir()
    project_context(context, wheels)
    assert filecmp.cmp(context / "Dockerfile", compose_dir() / "Dockerfile", shallow=False)
    assert (context / "requirements.txt").read_text() == "alpha==1.0\n"
    assert (context / "wheels" / "alpha-1.0-py3-none-any.whl").exists()
    assert (context / "harness" / "shipped" / "compose" / "stack.yml").exists()
    assert (context / "mock_meta_api" / "app.py").exists()
    assert not list(context.rglob("__pycache__")), "bytecode of this host went in"
    assert not list(context.rglob("*.pyc"))


@pytest.mark.unit
def test_settings_come_from_the_environment_and_an_unknown_suite_needs_its_python() -> None:
    settings = ImageSettings.from_env({"STAGGER_IMAGE": "me/harness:1", "DEBIAN_SUITE": "trixie"})
    assert (settings.project, settings.python) == ("me/harness:1", "3.13.5")
    assert settings.broker == "stagger/redis:bookworm"
    with pytest.raises(ImageError, match="PYTHON_VERSION"):
        ImageSettings.from_env({"DEBIAN_SUITE": "forky"})


@pytest.mark.integration  # a real `harness images` process
def test_no_engine_is_one_line_and_exit_2(tmp_path: Path) -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "harness", "images"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}"},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    lines = [line for line in (answer.stdout + answer.stderr).splitlines() if line.strip()]
    assert answer.returncode == 2, lines
    assert len(lines) == 1, lines
    assert "dockerd" in lines[0]


def _no_image(tag: str) -> None:
    raise docker.errors.ImageNotFound(tag)


# An engine that has none of the images (check_host only asks `images.get`).
NO_IMAGES = SimpleNamespace(images=SimpleNamespace(get=_no_image))


@pytest.mark.unit
def test_a_missing_base_needs_debootstrap_and_root_before_anything_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ImageSettings()
    monkeypatch.setattr(images.shutil, "which", lambda _: None)
    with pytest.raises(ImageError, match=r"^debootstrap is missing: apt-get install debootstrap$"):
        images.check_host(settings, False, NO_IMAGES)  # type: ignore[arg-type]
    monkeypatch.setattr(images.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(images.os, "geteuid", lambda: 1000)
    with pytest.raises(ImageError, match="needs root"):
        images.check_host(settings, False, NO_IMAGES)  # type: ignore[arg-type]
    monkeypatch.setattr(images.os, "geteuid", lambda: 0)
    images.check_host(settings, False, NO_IMAGES)  # type: ignore[arg-type]
