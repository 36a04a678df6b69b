"""The commands the docs and the README tell a reader to type exist as written.

Every `harness ...` line of a shell block names a command the CLI has, with options that
command takes (`harness locust` passes its options on to Locust, so only its own are
checked), and every `pytest -m NAME` names a marker of pyproject.toml: a page cannot keep
telling readers to run what the code no longer has.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import typer.main

import harness.cli

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
COMMAND = typer.main.get_command(harness.cli.app)
PASS_THROUGH = {"locust"}  # every option after it is Locust's


def shell_lines(text: str) -> list[str]:
    """Each command of the page's shell blocks, continuation lines joined, comments cut."""
    lines = []
    for block in BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def harness_calls() -> list[tuple[str, list[str]]]:
    calls = []
    for page in PAGES:
        for line in shell_lines(page.read_text(encoding="utf-8")):
            words = shlex.split(line.replace("$PWD", "PWD"))
            for start, word in enumerate(words):
                if word == "harness" and (start == 0 or words[start - 1] in {"run", "uv"}):
                    calls.append((page.relative_to(ROOT).as_posix(), words[start + 1 :]))
                    break
    return calls


CALLS = harness_calls()


def options(command: object) -> set[str]:
    return {
        name
        for param in getattr(command, "params", [])
        for name in (*param.opts, *getattr(param, "secondary_opts", []))
        if name.startswith("-")
    }


def test_the_pages_show_harness_commands() -> None:
    assert len(CALLS) >= 30


@pytest.mark.parametrize(("page", "words"), CALLS, ids=[" ".join(w) for _, w in CALLS])
def test_each_harness_command_exists_with_its_options(page: str, words: list[str]) -> None:
    if not words or words[0].startswith("-"):
        assert set(w.split("=")[0] for w in words if w.startswith("-")) <= options(COMMAND)
        return
    assert words[0] in COMMAND.commands, (page, words)
    command = COMMAND.commands[words[0]]
    if words[0] in PASS_THROUGH:
        return
    given = {w.split("=", 1)[0] for w in words[1:] if w.startswith("-")}
    assert given <= options(command) | {"--help"}, (page, words, given - options(command))


def test_each_marker_named_exists() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    markers = {m.split(":")[0] for m in pyproject["tool"]["pytest"]["ini_options"]["markers"]}
    for page in PAGES:
        for line in shell_lines(page.read_text(encoding="utf-8")):
            for expression in re.findall(r"pytest -m (\S+|'[^']+')", line):
                named = set(re.findall(r"\w+", expression)) - {"and", "or", "not"}
                assert named <= markers, (page.name, line)
