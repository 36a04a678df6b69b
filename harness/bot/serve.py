"""Serve the bot's webhook with uvicorn on a socket bound first, so port 0 reports a real port."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer
import uvicorn

from mock_meta_api.server import bind, url_of

from .app import create_bot
from .settings import SettingsError, load_settings
from .webhook import create_webhook_app

# The line printed once the socket is bound; whoever starts the bot waits for it.
READY = re.compile(r"bot-webhook listening on (?P<url>http://\S+)")

cli = typer.Typer(add_completion=False, no_args_is_help=False)


def command(host: str = "127.0.0.1", python: str = sys.executable) -> list[str]:
    """The command line of the bot's webhook on a free port, with this (or that) interpreter."""
    return [python, "-m", "harness.bot", "--host", host, "--port", "0"]


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 8001,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the bot's webhook (GET/POST /webhook); all other settings come from the environment."""
    try:
        bot = create_bot(load_settings())
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        sock = bind(host, port)
    except OSError as exc:
        typer.echo(f"cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    config = uvicorn.Config(
        create_webhook_app(bot), log_level=log_level, access_log=False, lifespan="off"
    )
    print(f"bot-webhook listening on {url_of(sock)}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    cli()
