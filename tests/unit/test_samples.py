"""The committed samples tell one story: each agrees with itself, its reports and the docs.

Every run sample in reports/ is read as it is committed (no run): its results.json must
carry every field the current model has, its ledger must account for every part, its
verdicts must follow from its reasons, its Markdown and HTML reports must say what its
results.json says, and the findings tables that cite it (the findings pages in
docs/findings/, and the incident table the README keeps) must hold its figures. A sample
that fails here was made by older code, or the findings were not updated after it was
made again.
"""

from __future__ import annotations

import json
import re
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.capacity.results import is_capacity
from harness.report.text import COLUMNS
from harness.results import (
    RESULTS,
    SCHEMA_VERSION,
    LaneResult,
    Results,
    harness_version,
    read_results,
    recheck,
    run_as_expected,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
README = ROOT / "README.md"
FINDINGS = ROOT / "docs" / "findings"
RUN_SAMPLES = sorted(
    path.name for path in REPORTS.iterdir() if (path / RESULTS).is_file() and not is_capacity(path)
)
HEADINGS = [heading for heading, _ in COLUMNS]


@cache
def sample(name: str) -> Results:
    return read_results(REPORTS / name)


@cache
def raw(name: str) -> dict[str, Any]:
    return json.loads((REPORTS / name / RESULTS).read_text(encoding="utf-8"))


def lane(name: str, lane_name: str) -> LaneResult:
    found = [lane for lane in sample(name).lanes if lane.lane == lane_name]
    assert found, f"reports/{name} has no lane {lane_name!r}"
    return found[0]


def test_every_run_sample_is_found() -> None:
    """The list the other tests run over: a sample moved away would silently drop out."""
    assert len(RUN_SAMPLES) >= 11
    assert {"incident", "load-steady", "load-spike", "brokers"} <= set(RUN_SAMPLES)


# -- results.json -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUN_SAMPLES)
def test_a_sample_carries_every_field_of_the_current_results(name: str) -> None:
    """Made by the current code from a full-length run, with the command that made it."""
    stored, results = raw(name), sample(name)
    assert set(Results.model_fields) - set(stored) == set()
    for entry in stored["lanes"]:
        assert set(LaneResult.model_fields) - set(entry) == set(), entry["lane"]
    assert results.schema_version == SCHEMA_VERSION
    assert results.harness_version == harness_version()
    assert results.complete
    assert results.time_scale == 1
    assert results.command is not None
    assert re.fullmatch(rf"harness (run {re.escape(name)}|matrix)( --out \S+)?", results.command)
    for one in results.lanes:
        assert one.ledger is not None, one.lane
        assert one.backend == "local", one.lane
        assert one.broker_server is not None, one.lane
        assert str(one.broker_server) == one.broker_version, one.lane


@pytest.mark.parametrize("name", RUN_SAMPLES)
def test_a_samples_ledger_accounts_for_every_part(name: str) -> None:
    for one in sample(name).lanes:
        book = one.ledger
        assert book is not None
        assert book.total == one.expected_messages, one.lane
        assert one.delivered + one.missing == one.expected_messages, one.lane
        assert book.on_time + book.late + book.duplicated == one.delivered, one.lane
        assert book.failed + book.lost == one.missing, one.lane  # lost only where not delivered
        assert sum(book.lost_at.values()) == book.lost, one.lane
        assert sum(book.failed_codes.values()) == book.failed, one.lane


@pytest.mark.parametrize("name", RUN_SAMPLES)
def test_a_samples_verdicts_follow_from_their_reasons(name: str) -> None:
    results = sample(name)
    for one in results.lanes:
        codes = set(one.reason_codes)
        assert one.verdict == ("fail" if one.reasons else "pass"), one.lane
        assert len(one.reasons) == len(one.reason_codes), one.lane
        assert ("missing" in codes) == (one.missing > 0), one.lane
        assert ("late" in codes) == (one.late > 0), one.lane
        assert ("early" in codes) == (one.early > 0), one.lane
        assert ("out-of-order" in codes) == (one.order_inversions > 0), one.lane
        assert ("duplicated" in codes) == (one.duplicated > 0), one.lane
        expected = one.verdict == one.expected_verdict and set(one.expected_reasons) <= codes
        assert one.as_expected == expected, one.lane
        assert (one.mismatch is None) == one.as_expected, one.lane
    assert results.as_expected == run_as_expected(
        results.complete, results.lanes, results.faults, results.load
    )


@pytest.mark.parametrize("name", RUN_SAMPLES)
def test_a_sample_is_judged_again_to_its_own_figures(name: str) -> None:
    """The stored figures are what the checks make of the stored history."""
    stored, again = recheck(REPORTS / name)
    assert again.lanes == stored.lanes
    assert again.as_expected == stored.as_expected


# -- report.md and report.html ------------------------------------------------------------------


def comparison_cells(one: LaneResult) -> dict[str, str]:
    """What the comparison table must show for a lane, by column heading."""
    book = one.ledger
    assert book is not None
    verdict = one.verdict + (f" ({', '.join(one.reason_codes)})" if one.reason_codes else "")
    return {
        "lane": one.lane,
        "broker": one.broker_label,
        "delivered": f"{one.delivered}/{one.expected_messages}",
        "on time": str(book.on_time),
        "late": str(book.late),
        "duplicated": str(book.duplicated),
        "failed": str(book.failed),
        "lost": str(book.lost),
        "order inversions": str(one.order_inversions),
        "verdict": verdict,
    }


def ledger_said(one: LaneResult) -> str:
    book = one.ledger
    assert book is not None
    return (
        f"ledger: {book.on_time} on time, {book.late} late, {book.duplicated} duplicated, "
        f"{book.failed} failed"
    )


def markdown_rows(text: str) -> dict[str, dict[str, str]]:
    """The comparison table of report.md: lane -> heading -> cell (unescaped)."""
    section = text.split("## Comparison", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    found = {}
    for row in rows:
        cells = [re.sub(r"\\(.)", r"\1", c.strip()) for c in row.strip("|").split(" | ")]
        found[cells[0]] = dict(zip(HEADINGS, cells, strict=True))
    return found


class Tables(HTMLParser):
    """The first table's rows (the comparison) as cell texts, and every list item."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.items: list[str] = []
        self._cell: list[str] | None = None
        self._item: list[str] | None = None
        self._swatch = False
        self._tables = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._tables += 1
        elif tag == "tr" and self._tables == 1:
            self.rows.append([])
        elif tag == "td" and self._tables == 1:
            self._cell = []
        elif tag == "li":
            self._item = []
        elif tag == "span" and ("class", "swatch") in attrs:
            self._swatch = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "li" and self._item is not None:
            self.items.append("".join(self._item))
            self._item = None
        elif tag == "span":
            self._swatch = False

    def handle_data(self, data: str) -> None:
        if self._swatch:  # the lane's marker, not its name
            return
        for open_ in (self._cell, self._item):
            if open_ is not None:
                open_.append(data)


@pytest.mark.parametrize("name", RUN_SAMPLES)
def test_a_samples_reports_say_what_its_results_say(name: str) -> None:
    results = sample(name)
    markdown = (REPORTS / name / "report.md").read_text(encoding="utf-8")
    html = Tables((REPORTS / name / "report.html").read_text(encoding="utf-8"))
    md_rows = markdown_rows(markdown)
    html_rows = {row[0]: dict(zip(HEADINGS, row, strict=True)) for row in html.rows if row}
    assert list(md_rows) == [one.lane for one in results.lanes]
    for one in results.lanes:
        wanted = comparison_cells(one)
        for shown in (md_rows[one.lane], html_rows[one.lane]):
            assert {k: shown[k] for k in wanted} == wanted, one.lane
        said = [line for line in markdown.splitlines() if line.startswith("- ledger: ")]
        items = [item for item in html.items if item.startswith("ledger: ")]
        index = [o.lane for o in results.lanes].index(one.lane)
        for line in (said[index].removeprefix("- ").replace("\\", ""), items[index]):
            assert line.startswith(ledger_said(one)), (one.lane, line)
            assert (" lost (" in line) == (one.ledger is not None and one.ledger.lost > 0), line
    assert f"- **command**: {results.command}" in markdown.replace("\\", "")
    assert f"- **harness**: {results.harness_version}" in markdown


# -- reports/README.md and the findings --------------------------------------------------------


MADE_BY = r"^uv run (?P<command>harness (?:run|matrix)[^\n#]*?--out /tmp/samples/(?P<name>[\w-]+))"


def test_reports_readme_lists_every_sample_with_the_command_that_made_it() -> None:
    text = (REPORTS / "README.md").read_text(encoding="utf-8")
    commands = {
        match["name"]: match["command"] for match in re.finditer(MADE_BY, text, re.MULTILINE)
    }
    assert set(commands) == set(RUN_SAMPLES)
    for name in RUN_SAMPLES:
        assert f"[`{name}/`]({name}/report.md)" in text, name
        assert sample(name).command == commands[name].strip(), name


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The rows (cells, stripped) of the first Markdown table after `heading`."""
    start = text.index(heading)
    lines = text[start:].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [row for row in rows[2:]]  # the header and the rule left out


def check_cell(cell: str, lanes: list[LaneResult], where: str) -> int:
    """The claims a findings cell makes, checked against the lanes it speaks for: its
    verdict word, `N/M` delivered, `N late`, `N lost`, `N received`, `none lost`, `all sent`,
    `in order`, `p95 X s`, `max X s`, `up to X s` (the worst of its lanes). What is in
    parentheses speaks of one lane among several, and is left to the caller. Returns how
    many claims it checked."""
    text = re.sub(r"\([^)]*\)", "", cell.replace("*", ""))
    label = re.split(r"[:,;]", text, maxsplit=1)[0].strip()
    checked = 0
    for one in lanes:
        book = one.ledger
        assert book is not None
        codes = set(one.reason_codes)
        at = f"{where}: {one.lane}: {cell!r}"
        if re.match(r"pass\b", label):
            assert one.verdict == "pass", at
            checked += 1
        elif label.startswith(("late", "out of order")):
            assert one.verdict == "fail", at
            assert ("late" in label) == ("late" in codes), at
            assert ("out of order" in label) == ("out-of-order" in codes), at
            assert ("cut off" in label) == ("missing" in codes), at
            checked += 1
        if m := re.search(r"\b(\d+)/(\d+)\b", text):
            assert (one.delivered, one.expected_messages) == (int(m[1]), int(m[2])), at
            checked += 1
        for pattern, figure in (
            (r"\b(\d+) late\b", book.late),
            (r"\b(\d+) lost\b", book.lost),
            (r"\b(\d+) received\b", book.lost_at.get("received", 0)),
        ):
            if m := re.search(pattern, text):
                assert int(m[1]) == figure, at
                checked += 1
        if "none lost" in text:
            assert book.lost == book.failed == 0, at
            checked += 1
        if "all sent" in text:
            assert one.delivered == one.expected_messages, at
            checked += 1
        if "in order" in text and "out of order" not in text:
            assert one.order_inversions == 0, at
            checked += 1
        for pattern, value in (
            (r"p95 ([\d.]+) s", one.lateness_p95_s),
            (r"max ([\d.]+) s", one.lateness_max_s),
        ):
            if m := re.search(pattern, text):
                assert value is not None, at
                assert f"{value:.{decimals(m[1])}f}" == m[1], at
                checked += 1
    if m := re.search(r"up to ([\d.]+) s", text):
        worst = max(one.lateness_max_s or 0.0 for one in lanes)
        assert f"{worst:.{decimals(m[1])}f}" == m[1], f"{where}: {cell!r}"
        checked += 1
    return checked


def decimals(number: str) -> int:
    return len(number.split(".")[1]) if "." in number else 0


def sample_of(cell: str) -> str | None:
    """The sample a row cites: its scenario cell, `name`, when reports/name exists."""
    m = re.fullmatch(r"`([\w-]+)`.*", cell)
    return m[1] if m and m[1] in RUN_SAMPLES else None


POOLS = ("solo", "prefork", "threads", "gevent")


INCIDENT_TABLES = [  # where the incident's table stands: (file, the heading it follows)
    (README, "## What it found: the incident"),
    (FINDINGS / "incident.md", "# The incident"),
]


@pytest.mark.parametrize(
    ("path", "heading"),
    INCIDENT_TABLES,
    ids=[p.relative_to(ROOT).as_posix() for p, _ in INCIDENT_TABLES],
)
def test_the_incident_findings_hold_the_samples_they_cite(path: Path, heading: str) -> None:
    """The incident's table: each pool's cell, for the scenarios with a sample."""
    text = path.read_text(encoding="utf-8")
    checked = 0
    for row in table_rows(text, heading):
        name = sample_of(row[1])
        if name is None:
            continue
        if row[0].startswith("…fix"):  # the fix lanes side by side, under solo's column
            fixes = [one for one in sample(name).lanes if one.lane not in POOLS]
            checked += check_cell(row[2], fixes, f"{path.name} {name} fix row")
            continue
        for pool, cell in zip(POOLS, row[2:6], strict=True):
            checked += check_cell(cell, [lane(name, pool)], f"{path.name} {name}")
    assert checked >= 20


def test_the_load_findings_hold_the_samples_they_cite() -> None:
    text = (FINDINGS / "load.md").read_text(encoding="utf-8")
    checked = 0
    for row in table_rows(text, "# Load"):
        name = sample_of(row[0])
        assert name is not None, row
        for pool, cell in zip(POOLS, row[2:6], strict=True):
            checked += check_cell(cell, [lane(name, pool)], f"load.md {name}")
    assert checked >= 30


def test_the_fault_findings_hold_the_samples_they_cite() -> None:
    """The faults table's rows of scenarios with a committed sample are that sample's."""
    text = (FINDINGS / "faults.md").read_text(encoding="utf-8")
    rows = [
        row
        for row in table_rows(text, "# Faults a deployment meets")
        if sample_of(row[0]) is not None
    ]
    for name in {sample_of(row[0]) for row in rows}:
        assert name is not None
        cited = [row[1] for row in rows if sample_of(row[0]) == name]
        assert cited == [one.lane for one in sample(name).lanes], name
    for row in rows:
        name = sample_of(row[0])
        assert name is not None
        one = lane(name, row[1])
        book = one.ledger
        assert book is not None
        failed = str(book.failed) + "".join(
            f" ({n}x {code})" for code, n in book.failed_codes.items()
        )
        lost = str(book.lost) + "".join(f" ({n} {stage})" for stage, n in book.lost_at.items() if n)
        verdict = one.verdict + (f" ({', '.join(one.reason_codes)})" if one.reason_codes else "")
        shown = [str(book.on_time), str(book.late), str(book.duplicated), failed, lost, verdict]
        assert row[2:] == [one.pool, *shown], (name, row)
    assert len(rows) >= 10


BROKER_CLAIMS = [  # the brokers table's cells: (sample, question starts, column, lanes)
    ("brokers", "does the incident", 2, ["incident-valkey"]),
    ("brokers", "does the incident", 3, ["incident-rabbitmq", "incident-rabbitmq-gevent"]),
    ("brokers", "**a worker SIGKILLed", 2, ["killed-valkey"]),
    ("brokers", "**a worker SIGKILLed", 3, ["killed-rabbitmq", "killed-rabbitmq-gevent"]),
]


def test_the_broker_findings_hold_the_samples_they_cite() -> None:
    text = (FINDINGS / "brokers-and-releases.md").read_text(encoding="utf-8")
    rows = table_rows(text, "# Brokers and releases: is it the pool, the broker or the release?")
    checked = 0
    for name, question, column, lanes in BROKER_CLAIMS:
        row = next(row for row in rows if row[0].startswith(question))
        checked += check_cell(
            row[column], [lane(name, n) for n in lanes], f"brokers-and-releases.md {name}"
        )
    killed = next(row for row in rows if row[0].startswith("**a worker SIGKILLed"))[3]
    for pool, one in (("solo", "killed-rabbitmq"), ("gevent", "killed-rabbitmq-gevent")):
        m = re.search(rf"{pool}: (?:(\d+) parts?, )?up to ([\d.]+) s", killed)
        assert m is not None, pool
        result = lane("brokers", one)
        assert result.ledger is not None
        assert result.lateness_max_s is not None
        if m[1] is not None:
            assert int(m[1]) == result.ledger.late, pool
        assert f"{result.lateness_max_s:.{decimals(m[2])}f}" == m[2], pool
    inversions = re.search(r"(\d+) order inversions", killed)
    assert inversions is not None
    assert int(inversions[1]) == lane("brokers", "killed-rabbitmq-gevent").order_inversions
    long_eta = next(row for row in rows if "`brokers-long-eta`" in row[1])
    twice = re.search(r"\(parts (\d+)\u2013(\d+), due from", long_eta[2])
    assert twice is not None
    short = lane("brokers-long-eta", "valkey-short-visibility")
    assert short.ledger is not None
    assert short.ledger.duplicated == int(twice[2]) - int(twice[1]) + 1
    assert lane("brokers-long-eta", "valkey").verdict == "pass"
    lost = re.search(r"parts (\d+) and (\d+) were lost", text)
    rabbit = lane("brokers-long-eta", "rabbitmq")
    assert lost is not None
    assert rabbit.ledger is not None
    assert rabbit.ledger.lost == 2
    assert rabbit.delivered == int(lost[1])  # the parts before them were all sent
    releases = next(row for row in rows if "`releases`" in row[1])[2]
    lost = re.search(r"a SIGKILLed worker loses (\d+)/(\d+) on each", releases)
    assert lost is not None
    for one in sample("releases").lanes:
        if one.lane.startswith("killed"):
            assert one.ledger is not None
            assert (one.ledger.lost, one.expected_messages) == (int(lost[1]), int(lost[2]))
        else:
            assert one.verdict == "pass", one.lane
    assert checked >= 8
