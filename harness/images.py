"""`harness images`: the compose stacks' images with no registry, from this install.

Registered on the CLI by harness/cli/__init__.py (`app.command()(images)`); the build itself is
harness/stack/images.py.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from .signals import orderly_shutdown
from .stack.images import ImageSettings, build_images

console = Console(width=None if Console().is_terminal else 120)


def _say(message: str, style: str = "") -> None:
    """One line each, never wrapped: paths and tags stay whole in logs."""
    console.print(Text(message, style=style), soft_wrap=True)


def images(
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Build every image again, with no build cache.")
    ] = False,
) -> None:
    """Build the images of `--backend compose` from this install, with no registry.

    Base (debootstrap) and broker (Debian's redis-server) when missing, the broker also
    when this release's Dockerfile differs from the one it was built from; the project
    image always, from the build cache when nothing changed.
    Needs root, debootstrap and a running dockerd.

    Tags: STAGGER_IMAGE (stagger/harness:local), BROKER_IMAGE
    (stagger/redis:bookworm), BASE_IMAGE (stagger/debian:bookworm).
    """
    settings = ImageSettings.from_env(os.environ)  # an ImageError: the CLI says it, exit 2
    try:
        with orderly_shutdown():
            build_images(settings, rebuild, _say)
    except KeyboardInterrupt:
        _say("interrupted: no image was tagged by the step under way", "yellow")
        raise typer.Exit(130) from None
    _say(f"run on them: export STAGGER_IMAGE={settings.project} BROKER_IMAGE={settings.broker}")
