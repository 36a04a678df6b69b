"""Smaller generated references: the error classes and their exit codes, the test markers
from pyproject.toml, the pytest plugin's options and marker, and the fault actions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from ref_schema import anchor, cell, first_paragraph, ref_name


def error_tree(root: type[BaseException]) -> str:
    """Every class beneath `root` the loaded modules define, with its exit code."""
    rows = ["| class | defined in | exit code | raised when |", "|---|---|---|---|"]

    def visit(cls: type[BaseException], depth: int) -> None:
        indent = "&nbsp;&nbsp;&nbsp;&nbsp;" * depth
        code = getattr(cls, "exit_code", "")
        doc = first_paragraph(cls.__doc__)
        rows.append(f"| {indent}`{cls.__name__}` | `{cls.__module__}` | {code} | {cell(doc)} |")
        for sub in sorted(cls.__subclasses__(), key=lambda c: (c.__module__, c.__name__)):
            visit(sub, depth + 1)

    visit(root, 0)
    return "\n".join(rows)


def pyproject(root: Path) -> dict[str, Any]:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def default_selection(root: Path) -> str:
    """The `-m` expression of pytest's addopts: what `uv run pytest` runs."""
    options = pyproject(root)["tool"]["pytest"]["ini_options"]["addopts"]
    return options[options.index("-m") + 1]


def markers(root: Path) -> list[tuple[str, str]]:
    found = []
    for line in pyproject(root)["tool"]["pytest"]["ini_options"]["markers"]:
        name, _, meaning = line.partition(":")
        found.append((name.strip(), meaning.strip()))
    return found


def markers_table(root: Path, timings: str) -> str:
    """Each marker, and what `uv run pytest` does with the tests that carry it."""
    selection = default_selection(root)
    kept = set(re.findall(r"\w+", selection.split("not", 1)[0])) - {"or", "and"}
    left_out = set(re.findall(r"\w+", selection.split("not", 1)[-1])) - {"or", "and"}
    rows = ["| marker | in `uv run pytest` | what it holds |", "|---|---|---|"]
    for name, meaning in markers(root):
        if name in left_out:
            default = f"left out: `uv run pytest -m {name}`"
        elif name in kept:
            default = "run, even in a set left out"
        else:
            default = "run, unless a test also carries a marker left out"
        rows.append(f"| `{name}` | {default} | {cell(meaning)} |")
    return "\n".join(
        [
            f'The default selection is `-m "{selection}"` (pyproject\'s `addopts`); any `-m`',
            f"replaces it. How long each set takes: [Test sets and timings]({timings}).",
            "",
            *rows,
        ]
    )


class OptionRecorder:
    """Stands in for pytest's parser: records what a plugin's `pytest_addoption` adds."""

    def __init__(self) -> None:
        self.options: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def getgroup(self, *_: Any, **__: Any) -> OptionRecorder:
        return self

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.options.append((names, kwargs))

    def addini(self, *_: Any, **__: Any) -> None:
        return None


def plugin_options(addoption: Any) -> list[tuple[str, str, str]]:
    """(names, default, help) per option a plugin adds."""
    recorder = OptionRecorder()
    addoption(recorder)
    rows = []
    for names, kwargs in recorder.options:
        default = kwargs.get("default")
        shown = "off" if kwargs.get("action") == "store_true" else repr(default)
        rows.append((", ".join(names), shown, kwargs.get("help", "")))
    return rows


def plugin_options_table(addoption: Any) -> str:
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for names, default, text in plugin_options(addoption):
        rows.append(f"| `{names}` | `{default}` | {cell(text)} |")
    return "\n".join(rows)


TRIGGER_FIELDS = ("at_s", "after_received", "after_sent", "action", "lane")


def fault_variants(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, model name, model schema) per fault action, in the order the code lists
    them: the `faults` items are a union discriminated by `action`."""
    defs = schema["$defs"]
    variants = []
    for option in schema["properties"]["faults"]["items"]["oneOf"]:
        name = ref_name(option["$ref"])
        variants.append((defs[name]["properties"]["action"]["const"], name, defs[name]))
    return variants


def fault_actions_table(schema: dict[str, Any]) -> str:
    """Which fields each action takes beside its trigger and `action` (and `lane`, for a
    lane's fault), the required ones in bold, each action linked to its own table."""
    rows = [
        "| action | strikes | a window (`duration_s`) | other fields it takes |",
        "|---|---|---|---|",
    ]
    for action, name, model in fault_variants(schema):
        fields = model.get("properties", {})
        required = set(model.get("required", []))
        where = "a lane" if "lane" in fields else "the whole stack (`at_s` only)"
        window = "yes" if "duration_s" in fields else "no"
        others = [
            f"**`{field}`**" if field in required else f"`{field}`"
            for field in fields
            if field not in (*TRIGGER_FIELDS, "duration_s")
        ]
        shown = ", ".join(others) or "none"
        rows.append(f"| [`{action}`](#{anchor(name)}) | {where} | {window} | {shown} |")
    return "\n".join(rows)
