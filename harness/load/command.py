"""`harness locust`: the project's Locust users against any bot, from wherever it is installed.

Everything after the command goes to Locust as it is (`--host`, `--mock-url`, `-u`,
`--headless`, `--master`, `--worker`, ...): the harness only names the shipped locustfile.
The harness process becomes Locust (exec), so Locust's own signal handling, exit status
and web UI are exactly Locust's, and nothing is left behind when it ends.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from ..resources import locustfile

# Options Typer does not know are Locust's: passed through untouched.
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def locust_command(*options: str) -> list[str]:
    """`python -m locust -f <the shipped locustfile> OPTIONS` for this interpreter."""
    return [sys.executable, "-m", "locust", "-f", str(locustfile()), *options]


def locust(
    ctx: typer.Context,
    path: Annotated[
        bool, typer.Option("--locustfile-path", help="Print the locustfile's path and exit.")
    ] = False,
) -> None:
    """Run the shipped Locust users against any bot; every other option is Locust's.

    `harness locust --help` is Locust's own help, the locustfile's options included.
    """
    if path:
        typer.echo(str(locustfile()))
        return
    argv = locust_command(*ctx.args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
