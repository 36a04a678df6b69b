"""`mock-meta-api`: run the Cloud API mock as a server."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer

from .app import create_app
from .config import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_APP_SECRET,
    DEFAULT_PHONE_NUMBER_ID,
    ConfigError,
    build_config,
    load_config,
)
from .server import bind, serve

EXAMPLE_CONFIG = "example-config.toml"  # shipped in this package
cli = typer.Typer(add_completion=False, rich_markup_mode=None)


@cli.command()
def run(
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 8000,
    config: Annotated[
        Path | None, typer.Option(help="TOML or JSON config file (see README).", dir_okay=False)
    ] = None,
    access_token: Annotated[
        str | None,
        typer.Option(help=f"Bearer token clients must send [default: {DEFAULT_ACCESS_TOKEN}]"),
    ] = None,
    phone_number_id: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Business phone number ID served; repeatable [default: {DEFAULT_PHONE_NUMBER_ID}]"
        ),
    ] = None,
    app_secret: Annotated[
        str | None,
        typer.Option(help=f"Secret that signs status webhooks [default: {DEFAULT_APP_SECRET}]"),
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="Where status webhooks go [default: none, webhooks off]")
    ] = None,
    allow_remote_admin: Annotated[
        bool, typer.Option(help="Let non-loopback clients use the /_mock admin routes.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    print_openapi: Annotated[
        bool, typer.Option(help="Print the OpenAPI document and exit.")
    ] = False,
    print_example_config: Annotated[
        bool,
        typer.Option(help="Print an annotated example config file (TOML) and exit."),
    ] = False,
) -> None:
    """Serve the mock WhatsApp Cloud API. Flags override the config file."""
    if print_example_config:
        typer.echo(
            files(__package__).joinpath(EXAMPLE_CONFIG).read_text(encoding="utf-8"), nl=False
        )
        return
    try:
        settings = load_config(config) if config is not None else {}
        overrides = {
            "access_token": access_token,
            "phone_number_ids": phone_number_id or None,
            "app_secret": app_secret,
            "admin_allow_remote": allow_remote_admin or None,
        }
        settings |= {key: value for key, value in overrides.items() if value is not None}
        if webhook_url is not None:
            behaviours = settings.setdefault("behaviours", {})
            if isinstance(behaviours, dict):
                behaviours.setdefault("webhooks", {})["url"] = webhook_url
        mock_config = build_config(settings, str(config) if config else "command line")
    except ConfigError as exc:
        typer.echo(f"mock-meta-api: {exc}", err=True)
        raise typer.Exit(2) from None
    app = create_app(mock_config)
    if print_openapi:
        typer.echo(json.dumps(app.openapi(), indent=2))
        return
    try:
        sock = bind(host, port)
    except OSError as exc:
        typer.echo(f"mock-meta-api: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    serve(app, sock, log_level=log_level, access_log=access_log)


def main() -> None:
    cli()
