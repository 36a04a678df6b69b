"""How a command ends: the one place an error becomes an exit status.

Exit status: 0 every lane as expected, 1 a lane differs, 2 bad input or a run that could
not be done (`HarnessError.exit_code`), 3 a process or container the command started was
still running at its end, 130 interrupted.

Two moments, one handler each. Before anything starts, an error is the input's or the
machine's: `HarnessGroup` catches every `HarnessError` (and a `ValidationError` of what
the command line gave) as the command returns, says it on one line and exits with its
code. Once processes run, `supervised` holds them: whatever ends the run (a verdict, a
signal, a part that failed) is said with where the logs are, and the last line is said
only once every process it started was checked gone.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from mock_meta_api.config import describe_validation_error

from .. import reaper
from ..bot.settings import SettingsError
from ..errors import HarnessError
from ..processes import ServerStartError
from ..signals import orderly_shutdown
from ..stack.backend import StackError
from ..stack.broker import BrokerError
from ..stack.external import ExternalLaneError
from ..stack.prepare import LaneError
from .output import say, say_error

EXIT_DIFFERS = 1
EXIT_INPUT = 2  # what `HarnessError.exit_code` says, for errors that are not the harness's
EXIT_LEFT = 3  # a process or container the command started was still running at its end
EXIT_INTERRUPTED = 130
# What keeps a stack from coming up: said as "the stack did not start", with its logs.
NOT_STARTED = (SettingsError, BrokerError, ServerStartError, StackError, ValidationError)

T = TypeVar("T")


class HarnessGroup(TyperGroup):
    """The `harness` command group: a command's `HarnessError` (or a `ValidationError` of
    the options it parsed) is said in red on one line, and the command exits with its code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            say_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except ValidationError as exc:
            name = ctx.invoked_subcommand or "input"
            say_error(f"invalid {name}: {describe_validation_error(exc, name)}")
            raise typer.Exit(EXIT_INPUT) from None


def supervised(
    body: Callable[[], T],
    run_dir: Path,
    name: str,
    on_interrupt: Callable[[], None] = lambda: None,
    stopped: str = "",
) -> T:
    """Run `body`, which starts processes, under one orderly stop; what it returns.

    `body` may end with `typer.Exit` (a verdict); Ctrl-C or a signal calls `on_interrupt`
    (to keep what was done so far); any other error is said (`_said`). Every way ends
    with `last_line`, which exits unless all went well."""
    since = reaper.mark()
    with orderly_shutdown():
        try:
            result = body()
        except typer.Exit as exc:
            code = exc.exit_code
        except KeyboardInterrupt:
            on_interrupt()
            code = EXIT_INTERRUPTED
        except Exception as exc:
            code = _said(exc, run_dir, name)
        else:
            code = 0
        last_line(code, since, stopped)
    return result


def _said(exc: Exception, run_dir: Path, name: str) -> int:
    """Say why the run of `name` could not be done, and where to look; its exit status."""
    code = exc.exit_code if isinstance(exc, HarnessError) else EXIT_INPUT
    if isinstance(exc, LaneError):  # found before anything started
        say(f"{name}: {exc}", "red")
        return code
    if isinstance(exc, NOT_STARTED):
        message = (
            describe_validation_error(exc, name) if isinstance(exc, ValidationError) else str(exc)
        )
        say(f"the stack did not start: {message}", "red")
    elif isinstance(exc, ExternalLaneError):  # it names the lane and quotes its last lines
        say(str(exc), "red")
    else:  # a part failed mid-run: exit 2, not 1 ("a lane differs"); the traceback kept
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
        say(f"the run failed: {type(exc).__name__}: {exc}", "red")
        say(f"traceback: {run_dir / 'error.txt'}; logs: {run_dir}")
        return code
    say(f"logs: {run_dir}")
    return code


def last_line(code: int, since: reaper.Mark, stopped: str = "") -> None:
    """End a command that started processes: each one it started since `since` (and each
    container) is checked gone first, so the last line never claims a stop that did not
    happen. Exits with `code`, or EXIT_LEFT naming what still runs."""
    left = reaper.left_running(since)
    if left:
        say(
            f"{'interrupted; ' if code == EXIT_INTERRUPTED else ''}NOT stopped, still running: "
            f"{', '.join(left)} (the harness's reaper kills them as it exits)",
            "red",
        )
        raise typer.Exit(EXIT_LEFT)
    if code == EXIT_INTERRUPTED:
        say(f"interrupted: every process was stopped{stopped}", "yellow")
    if code:
        raise typer.Exit(code)
