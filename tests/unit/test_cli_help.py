"""Every help text renders as written: Rich markup must not eat a bracketed name.

Typer renders help through Rich, where `[load.thresholds]` reads as a style tag and
vanishes unless escaped (`\\[`). Each command's rendered `--help` must show every
bracketed name its options' help and its docstring hold.
"""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from harness.cli import app

pytestmark = pytest.mark.unit

BRACKETED = re.compile(r"\[([a-z_.]+)\]")


def _commands() -> dict:
    """The app's commands as Typer builds them (its own click), by name."""
    return dict(typer.main.get_command(app).commands)


def _texts(command) -> list[str]:
    texts = [command.help or ""]
    texts += [getattr(param, "help", None) or "" for param in command.params]
    return [text.replace("\\[", "[") for text in texts]


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_bracketed_name_in_a_help_text_is_rendered(name: str) -> None:
    command = _commands()[name]
    names = {match for text in _texts(command) for match in BRACKETED.findall(text)}
    if name == "locust":  # its --help is Locust's own
        return
    rendered = CliRunner().invoke(app, [name, "--help"], terminal_width=200).output
    flat = " ".join(rendered.split())
    assert not [n for n in names if f"[{n}]" not in flat], flat


def test_the_run_commands_name_the_thresholds_table() -> None:
    """The case found: `--max-fail-ratio` said 'overrides .'."""
    rendered = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output
    assert "overrides [load.thresholds]" in " ".join(rendered.split())
