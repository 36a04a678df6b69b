"""The `harness` command line (Typer + Rich), one module per command group.

`harness matrix` and `harness run` run a scenario on the local stack, judge every lane
and write its reports (`runs`); `harness capacity` searches each lane's highest rate
kept on time (`capacity_search`); `harness scenarios` lists them and `harness schema`
prints the JSON Schema of their files (`scenario_files`); `harness check` judges a
stored run again and `harness report` redraws its reports (`stored`); `harness stack`
holds a stack up for manual work until Ctrl-C (`hold`); `harness zoo` lists, runs and
tabulates the bug zoo's entries (`zoo`).
Exit status: 0 every lane as expected, 1 a lane differs, 2 bad input or a run
that could not be done (the stack did not start, or a part of it failed),
3 a process or container it started was still running at its end (the last line names
each one), 130 interrupted (partial results are still written). Errors become exit
statuses in one place (`exits`). Any burst of SIGINT and SIGTERM leads to one orderly
stop (`harness.signals`); "every process was stopped" is said only once each one was
checked gone.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__, signals
from ..images import images
from ..init import init_command
from ..load.command import PASS_THROUGH, locust
from .capacity_search import capacity
from .exits import EXIT_DIFFERS, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_LEFT, HarnessGroup
from .hold import stack
from .output import say
from .runs import matrix, run
from .scenario_files import scenarios, schema
from .stored import check, report
from .zoo import zoo

__all__ = [
    "EXIT_DIFFERS",
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_LEFT",
    "app",
    "main",
]

app = typer.Typer(cls=HarnessGroup, add_completion=False, no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        say(f"stagger-harness {__version__}")
        raise typer.Exit()


@app.callback()
def harness(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Reproduce, measure and guard against Celery delivery bugs in the fixtures flow."""


for command in (stack, matrix, run, scenarios, schema, check, report, capacity):
    app.command()(command)
app.command("init")(init_command)
app.command(context_settings=PASS_THROUGH, add_help_option=False)(locust)  # --help: Locust's
app.command()(images)
app.add_typer(zoo, name="zoo")


def main() -> None:
    # For the process's whole life, not only a command's: a burst's later signals may come
    # after the command returned, while the reaper is awaited at exit.
    signals.install()
    app()
