"""The README fits on a screen and points only inside the repository.

It says what the harness is, the incident and its conclusion, the two commands and
where to read on; everything else is in docs/. Every link resolves to a file of the
checkout (a page of the site is its Markdown in docs/), and none leaves it: a clone, an
sdist or an offline reader has every page it names.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LINKS = re.findall(r"\]\(([^)\s]+)\)", README)


def test_the_readme_fits_on_a_screen() -> None:
    assert len(README.splitlines()) < 250


def test_every_link_resolves_inside_the_repository() -> None:
    assert len(LINKS) >= 10
    for link in LINKS:
        assert "://" not in link, link
        assert not link.startswith(("/", "mailto:")), link
        target = (ROOT / link.split("#", 1)[0]).resolve()
        assert target.is_relative_to(ROOT), link
        assert target.exists(), link


def test_it_names_no_other_host() -> None:
    """Bare addresses too: a renderer would link them."""
    for address in re.findall(r"\bhttps?://[^\s`)>]+", README):
        assert re.match(r"https?://(127\.0\.0\.1|localhost)\b", address), address


def test_the_two_commands_stand_as_they_are() -> None:
    commands = [line for line in README.splitlines() if line.startswith("uv run ")]
    assert commands[:2] == [
        "uv run harness matrix         # main job: the incident scenario on all four pools, "
        "side by side, with verdicts",
        "uv run pytest                 # the tests: unit, then integration against real "
        "processes on 127.0.0.1",
    ]
