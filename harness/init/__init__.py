"""`harness init`: set the harness up in a team's own bot repository.

It reads the repository (`detect`), writes a scenario with external lanes on the four
pools plus the incident's settings-only pool trap, a pytest test that uses the plugin,
and a CI workflow (`write`), then prints the commands to run next. It never asks a
question: what it cannot tell is written as a marked line, and said.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from .detect import InitError, detect
from .write import COMPOSE_SCENARIO, MARK, SCENARIO, TEST, WORKFLOW, apply, plan

__all__ = ["MARK", "InitError", "init_command"]


def init_command(
    directory: Annotated[
        Path, typer.Argument(help="The bot's repository (default: here).", file_okay=False)
    ] = Path("."),
    celery_app: Annotated[
        str | None,
        typer.Option(help="The Celery app's module when the repository has several."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite files init wrote before.")] = False,
) -> None:
    """Write a scenario, a pytest test and a CI workflow for your own Django/Celery bot."""
    console = Console(highlight=False, soft_wrap=True)
    root = directory.resolve()
    project = detect(root)
    apps = project.celery_apps
    if celery_app is not None:
        chosen = [app for app in apps if app.module == celery_app]
        if not chosen:
            found = ", ".join(app.module for app in apps) or "none"
            raise InitError(f"--celery-app {celery_app}: no Celery app there; found: {found}")
        project.celery_apps = chosen
    elif len(apps) > 1:
        listed = ", ".join(f"{app.module} ({app.where})" for app in apps)
        raise InitError(
            f"{len(apps)} Celery apps found: {listed}; choose the bot's with --celery-app MODULE"
        )
    files = plan(project)
    existing = [str(f.path) for f in files if (root / f.path).exists()]
    if existing and not force:
        raise InitError(
            f"{', '.join(existing)} already exist(s) in {root}; nothing was written "
            "(--force overwrites them)"
        )
    try:
        apply(root, files)
    except OSError as exc:
        raise InitError(
            f"cannot write {exc.filename}: {exc.strerror}; nothing was changed"
        ) from None
    for planned in files:
        console.print(Text(f"wrote {planned.path}"))
        for line, what in planned.to_fill:
            console.print(Text(f"  fill in {planned.path}:{line}: {what}", style="yellow"))
    if any(planned.to_fill for planned in files):
        console.print(
            Text(
                f"Fill in each line marked '{MARK}' and delete the mark (the harness "
                "refuses a scenario that still holds one, naming its lines).",
                style="yellow",
            )
        )
    console.print(Text("Next:"))
    compose = [f"harness run {COMPOSE_SCENARIO.as_posix()} --backend compose"]
    for command in (
        f"harness run {SCENARIO.as_posix()}",
        *(compose if project.compose is not None else []),
        f"pytest {TEST.as_posix()}",
        f"git add {SCENARIO.parent.as_posix()} {TEST.as_posix()} {WORKFLOW.as_posix()}",
    ):
        console.print(Text(f"  {command}"))
