"""The files, modules and names the pages quote still exist.

A page that says `harness/stack/local.py`, `harness.signals.orderly_shutdown` or
`from harness.run import run_scenario` sends a reader to the code: each such path must be
a file of the repository, each dotted name importable (a module, or a name in one), and
each import of a Python block must work. The generated reference cannot drift; this holds
the hand-written pages to the code the same way.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PATH = re.compile(
    r"`((?:harness|mock_meta_api|tests|examples|benchmarks|reports|compose)/[\w./-]*)"
)
DOTTED = re.compile(r"`((?:harness|mock_meta_api)(?:\.[A-Za-z_]\w*)+)")
PYTHON = re.compile(r"```python\n(.*?)```", re.DOTALL)
IMPORT = re.compile(r"^from ((?:harness|mock_meta_api)[\w.]*) import ([\w, ]+)$", re.MULTILINE)


def quoted(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    return sorted(
        {
            (page.relative_to(ROOT).as_posix(), found.rstrip("./"))
            for page in PAGES
            for found in pattern.findall(page.read_text(encoding="utf-8"))
        }
    )


def resolves(dotted: str) -> bool:
    """A module, or a name in the longest module that imports."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


@pytest.mark.parametrize(("page", "path"), quoted(PATH), ids=lambda v: v)
def test_a_quoted_path_is_a_file_of_the_repository(page: str, path: str) -> None:
    if path.startswith("reports/runs"):  # where runs write, never committed
        return
    if "<" in path or "*" in path:  # a pattern (`timeline-<lane>.svg`), not a file
        path = path.split("<", 1)[0].split("*", 1)[0].rsplit("/", 1)[0]
    assert (ROOT / path).exists(), (page, path)


@pytest.mark.parametrize(("page", "name"), quoted(DOTTED), ids=lambda v: v)
def test_a_quoted_name_is_importable(page: str, name: str) -> None:
    assert resolves(name), (page, name)


def test_every_import_of_a_python_block_works() -> None:
    checked = 0
    for page in PAGES:
        for block in PYTHON.findall(page.read_text(encoding="utf-8")):
            for module, names in IMPORT.findall(block):
                for name in (n.strip() for n in names.split(",")):
                    assert resolves(f"{module}.{name}"), (page.name, module, name)
                    checked += 1
    assert checked >= 10
