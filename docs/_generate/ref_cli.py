"""Markdown for a Typer application: every command, its usage, arguments and options.

Typer builds a click command tree; each parameter's help record is what `--help` prints
(names, type, help, default and range), so the page says what the command line says.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import typer
import typer.main
from ref_schema import cell

# Rich markup escapes a literal `[` as `\[` in help texts; the page shows the text as read.
RICH_ESCAPE = re.compile(r"\\(\[)")


def plain(text: str | None) -> str:
    return RICH_ESCAPE.sub(r"\1", inspect.cleandoc(text or ""))


def parameters(command: Any, ctx: Any) -> list[tuple[str, str]]:
    """(names, help) per parameter, as `--help` shows them; hidden ones left out."""
    rows = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        rows.append((names, plain(help_text)))
    return rows


def commands(app: typer.Typer, prog: str) -> list[tuple[str, Any, Any]]:
    """(full name, command, its context) for the program and every subcommand, a group's
    own commands after it (`harness zoo`, then `harness zoo run`), in order."""
    root = typer.main.get_command(app)
    found: list[tuple[str, Any, Any]] = []

    def walk(full: str, command: Any, ctx: Any) -> None:
        found.append((full, command, ctx))
        for name, sub in getattr(command, "commands", {}).items():
            if not getattr(sub, "hidden", False):
                walk(f"{full} {name}", sub, sub.context_class(sub, info_name=name, parent=ctx))

    walk(prog, root, root.context_class(root, info_name=prog))
    return found


def option_names(app: typer.Typer, prog: str) -> list[tuple[str, str]]:
    """(command, option or argument name) for every parameter: what the page must show."""
    names = []
    for full, command, _ in commands(app, prog):
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            shown = param.opts[0] if param.param_type_name == "option" else param.name
            names.append((full, shown))
    return names


def cli_reference(app: typer.Typer, prog: str, *, level: int = 2) -> str:
    lines: list[str] = []
    for full, command, ctx in commands(app, prog):
        lines += [f"{'#' * level} `{full}`", ""]
        usage = " ".join(command.collect_usage_pieces(ctx))
        lines += ["```", f"{full} {usage}".rstrip(), "```", ""]
        if command.help:
            lines += [plain(command.help), ""]
        rows = parameters(command, ctx)
        if rows:
            lines += ["| option | meaning |", "|---|---|"]
            lines += [f"| `{cell(names)}` | {cell(text)} |" for names, text in rows]
            lines.append("")
    return "\n".join(lines)
