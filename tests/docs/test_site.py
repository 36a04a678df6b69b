"""The documentation site: built as CI builds it, then opened in a real browser.

`mkdocs build --strict` fails on a broken link or anchor, a page left out of the
navigation, or a generator that names what the code no longer has. The built pages are
then loaded in headless Chromium (`--dump-dom`: the document after its scripts ran), and
each must show the site's navigation and its own content. The generated reference must
name every option of every command and every field of the scenario and `results.json`
models, walked here from the code itself (click's parameters, pydantic's fields), not from
the generators' own walk.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import typing
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest
import typer.main
from pydantic import BaseModel

import harness.cli
import mock_meta_api.cli
from harness.bot.settings import BotSettings
from harness.results import Results
from harness.scenario import Scenario

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ["Home", "Getting started", "Findings", "How-to", "Reference", "Explanation"]
# Each page and what its own content must show: its title, and a line of its body.
PAGES = {
    "index.html": ("stagger-harness", "Solo alone does not lose messages"),
    "getting-started/reading-the-report/index.html": (
        "Reading report.html",
        "The incident reproduced",
    ),
    "findings/incident/index.html": (
        "The incident, settled by measurement",
        "solo alone does not lose messages",
    ),
    "how-to/load-test/index.html": ("Load test with Locust", "Distributed: past one machine"),
    "reference/cli/index.html": ("Command line", "harness matrix"),
    "reference/scenario/index.html": ("Scenario file", "Fault actions"),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built by `mkdocs build --strict` into a directory of its own."""
    out = tmp_path_factory.mktemp("site")
    try:
        import mkdocs  # noqa: F401  (the docs group: its absence is a setup error, said once)
    except ImportError:
        pytest.fail("mkdocs is not installed: `uv sync --group docs`")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return out


@cache
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    pytest.fail("no Chromium: `apt-get install chromium` (.ci/run installs it)")


def rendered(page: Path, profile: Path) -> str:
    """The page's DOM as headless Chromium has it once loaded."""
    shown = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    return shown.stdout


class Page(HTMLParser):
    """The texts a reader sees: the navigation's tabs, the article's title and its text."""

    def __init__(self, dom: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tabs: list[str] = []
        self.title = ""
        self.text: list[str] = []
        self._in: list[str] = []
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "nav" and "md-tabs" in classes:
            self._in.append("tabs")
        elif tag == "article":
            self._in.append("article")
        elif tag == "h1" and "article" in self._in:
            self._in.append("h1")

    def handle_endtag(self, tag: str) -> None:
        if self._in and (tag, self._in[-1]) in {
            ("nav", "tabs"),
            ("article", "article"),
            ("h1", "h1"),
        }:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if "tabs" in self._in and data.strip():
            self.tabs.append(data.strip())
        if "article" in self._in:
            self.text.append(data)
        if "h1" in self._in:
            self.title += data


@pytest.fixture(scope="module")
def pages(site: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Page]:
    profile = tmp_path_factory.mktemp("chromium")
    return {name: Page(rendered(site / name, profile)) for name in PAGES}


@pytest.mark.parametrize("name", list(PAGES))
def test_a_page_shows_its_navigation_and_its_content(pages: dict[str, Page], name: str) -> None:
    page = pages[name]
    title, line = PAGES[name]
    assert [tab for tab in SECTIONS if tab in page.tabs] == SECTIONS, page.tabs
    assert page.title.strip().rstrip("¶").strip() == title
    text = re.sub(r"\s+", " ", "".join(page.text))
    assert line.lower() in text.lower(), name


def test_the_report_sample_and_its_screenshot_are_served(site: Path) -> None:
    """The getting-started page shows a real report: the screenshot and the sample it links."""
    html = (site / "getting-started/reading-the-report/index.html").read_text(encoding="utf-8")
    for src in re.findall(r'<img[^>]* src="([^"]+)"', html):
        assert (site / "getting-started/reading-the-report" / src).resolve().is_file(), src
    assert (site / "reports/incident/report.html").is_file()
    assert (site / "reports/worker-killed/plots/timeline-solo.svg").is_file()


def commands(app: typer.Typer, prog: str) -> dict[str, list[str]]:
    """Each command's option and argument names, from click's own parameters."""
    found: dict[str, typing.Any] = {}

    def walk(name: str, command: typing.Any) -> None:  # a group's commands: harness zoo run
        found[name] = command
        for sub_name, sub in getattr(command, "commands", {}).items():
            walk(f"{name} {sub_name}", sub)

    walk(prog, typer.main.get_command(app))
    return {
        name: [
            param.opts[0] if param.param_type_name == "option" else param.name
            for param in command.params
            if not getattr(param, "hidden", False)
        ]
        for name, command in found.items()
    }


def section(html: str, heading_id: str) -> str:
    """The HTML from the heading with this id to the next heading of any level."""
    start = html.index(f'id="{heading_id}"')
    end = re.search(r"<h[1-4][ >]", html[start + 1 :])
    return html[start : start + 1 + end.start()] if end else html[start:]


def test_the_cli_reference_names_every_command_and_option(site: Path) -> None:
    html = (site / "reference/cli/index.html").read_text(encoding="utf-8")
    for app, prog in ((harness.cli.app, "harness"), (mock_meta_api.cli.cli, "mock-meta-api")):
        for command, names in commands(app, prog).items():
            anchor = re.sub(r"[^a-z0-9]+", "-", command.lower())
            shown = section(html, anchor)
            for name in names:
                assert re.search(rf"<code>[^<]*{re.escape(name)}\b", shown), (command, name)


def models(root: type[BaseModel]) -> dict[str, list[str]]:
    """Every model a model's fields reach, by class name, with its fields' names."""
    found: dict[str, list[str]] = {}
    todo = [root]
    while todo:
        model = todo.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = [info.alias or name for name, info in model.model_fields.items()]
        for info in model.model_fields.values():
            todo += [t for t in nested(info.annotation) if issubclass(t, BaseModel)]
    return found


def nested(annotation: object) -> list[type]:
    if isinstance(annotation, type):
        return [annotation]
    return [t for arg in typing.get_args(annotation) for t in nested(arg)]


@pytest.mark.parametrize(
    ("page", "root", "prefix"),
    [("reference/scenario", Scenario, ""), ("reference/results", Results, "")],
)
def test_the_reference_names_every_field_of_its_models(
    site: Path, page: str, root: type[BaseModel], prefix: str
) -> None:
    html = (site / page / "index.html").read_text(encoding="utf-8")
    for model, fields in models(root).items():
        shown = section(html, prefix + re.sub(r"[^a-z0-9]+", "-", model.lower()))
        for name in fields:
            assert f"<code>{name}</code>" in shown, (page, model, name)


def test_the_bot_page_names_every_setting(site: Path) -> None:
    """The bot reads its settings from the environment: each variable, by its name."""
    html = (site / "reference/bot/index.html").read_text(encoding="utf-8")
    for name in BotSettings.model_fields:
        assert f"<code>{name.upper()}</code>" in html, name
