"""Reports for people: report.md and report.html with their plots, drawn from a stored run.

Each run here is built in-process (a history, judged by the real checks, written as
run_scenario writes it), then drawn by `write_reports` or `harness report` as users do.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html import escape as escape_html
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.history import ApiRequest, MessageHistory
from harness.load.figures import LoadLaneResult, LoadResult
from harness.report import REPORT_HTML, REPORT_MD, Written, write_reports
from harness.report.data import LATENESS_PLOT, PALETTE, SYMBOLS, lane_styles, load_report
from harness.report.markdown import escape, render_markdown
from harness.report.text import LANE_ENV_COLUMNS, expected
from harness.results import (
    HISTORY,
    RESULTS,
    BrokerServer,
    Results,
    judge,
    lane_result,
    read_results,
)
from harness.scenario import Reason, Scenario, load_scenario

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).resolve().parents[2] / "reports"

SCENARIO = load_scenario("incident")[0].only(["solo", "gevent"]).scaled(0.25)
SPACING = SCENARIO.flow.spacing_s
PARTS = SCENARIO.flow.messages
TRIGGER = 1_700_000_000.0
LATE = (5, 6)  # gevent's parts that reach the API 1 s after their due time
LOST = (20, 21)  # gevent's parts received by the worker, never started


def part(lane: str, seq: int, delay_s: float = 0.01, answer_s: float = 0.1) -> MessageHistory:
    due = TRIGGER + 0.05 + seq * SPACING
    correlation = f"{lane:0>16}"
    return MessageHistory(
        lane=lane,
        message_id=f"{correlation}-{seq:03d}",
        correlation_id=correlation,
        seq=seq,
        queued_at=TRIGGER + 0.05,
        countdown_s=seq * SPACING,
        received=TRIGGER + 0.06,
        started=due,
        api_received_at=due + delay_s,
        api_responded_at=due + delay_s + answer_s,
        status="sent",
        attempts=1,
        accepted=1,
        api_requests=[
            ApiRequest(
                received_at=due + delay_s,
                responded_at=due + delay_s + answer_s,
                outcome="accepted",
                http_status=200,
            )
        ],
    )


def failing_history() -> list[MessageHistory]:
    """gevent: two parts late, part 9 answered after part 10, the last two never started."""
    parts = []
    for seq in range(PARTS):
        if seq in LOST:
            lost = part("gevent", seq)
            parts.append(
                lost.model_copy(
                    update={
                        "started": None,
                        "api_received_at": None,
                        "api_responded_at": None,
                        "status": "queued",
                        "accepted": 0,
                        "api_requests": [],
                    }
                )
            )
        elif seq in LATE:
            parts.append(part("gevent", seq, delay_s=1.0))
        else:
            parts.append(part("gevent", seq, delay_s=0.3 if seq == 9 else 0.01))
    return parts


KILL = {"action": "kill-worker", "lane": "gevent", "at_s": 1.5, "pid": 4242}
FAULT = KILL | {"scheduled_at": TRIGGER + 1.5, "begun_at": TRIGGER + 1.5, "done_at": TRIGGER + 1.6}


def store(
    run_dir: Path,
    history: dict[str, list[MessageHistory]],
    complete: bool = True,
    faults: tuple[dict[str, object], ...] = (),
    scenario: Scenario = SCENARIO,
) -> Results:
    """A run directory as run_scenario writes it (without the logs)."""
    verdicts = judge(scenario, history)
    lanes = [lane_result(v, scenario, 1 if n == "solo" else 20) for n, v in verdicts.items()]
    results = Results(
        scenario=SCENARIO.name,
        description=SCENARIO.description,
        time_scale=SCENARIO.time_scale,
        complete=complete,
        as_expected=complete and all(lane.as_expected for lane in lanes),
        started_at=TRIGGER - 8,
        finished_at=TRIGGER + 20,
        stack_start_s=7.5,
        trigger_at=TRIGGER,
        verdict_at=TRIGGER + 18,
        versions={"python": "3.11.7", "celery": "5.5.3", "broker": "valkey 9.0.0"},
        lanes=lanes,
        faults=list(faults),
        scenario_definition=scenario.model_dump(mode="json"),
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [m.model_dump_json() + "\n" for lane in history.values() for m in lane]
    (run_dir / HISTORY).write_text("".join(lines), encoding="utf-8")
    (run_dir / "scenario.toml").write_text(load_scenario("incident")[1], encoding="utf-8")
    (run_dir / RESULTS).write_text(results.model_dump_json(), encoding="utf-8")
    return results


@pytest.mark.parametrize(("or_because", "met"), [(["late"], True), (["unexpected"], False)])
def test_a_lane_with_a_second_outcome_is_as_expected_with_it(
    tmp_path: Path, or_because: list[Reason], met: bool
) -> None:
    """gevent fails (missing, late, out of order), never duplicated: as expected only where
    the second outcome's reasons are among its own."""
    lanes = [
        lane.model_copy(
            update={"expect": "fail", "because": ["duplicated"], "or_because": or_because}
        )
        if lane.name == "gevent"
        else lane
        for lane in SCENARIO.lanes
    ]
    either = SCENARIO.model_copy(update={"lanes": lanes})
    history = {"solo": [part("solo", seq) for seq in range(PARTS)], "gevent": failing_history()}
    store(tmp_path, history, scenario=either)
    gevent = next(lane for lane in load_report(tmp_path).lanes if lane.name == "gevent")
    assert gevent.result.as_expected is met
    assert expected(gevent) == f"fail (duplicated | {or_because[0]}) {'✓' if met else '✗'}"
    if not met:
        assert gevent.result.mismatch == (
            "expected fail (duplicated | unexpected), got fail (missing, out-of-order, late)"
        )


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Results, Written]:
    """solo passes; gevent fails (missing, late, out of order) where it should pass, and
    its worker was killed."""
    run_dir = tmp_path_factory.mktemp("run")
    history = {"solo": [part("solo", seq) for seq in range(PARTS)], "gevent": failing_history()}
    return store(run_dir, history, faults=(FAULT,)), write_reports(run_dir)


class Page(HTMLParser):
    """The parts of report.html the tests read: table rows, figures, and every id."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []  # the first table's body rows, cell text
        self.figures: dict[str, list[str]] = {}  # figure id -> the tags inside it
        self.ids: list[str] = []
        self.external: list[str] = []  # src / href values that leave the page
        self._table = 0
        self._row: list[str] | None = None
        self._figure: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        for name in ("src", "href", "xlink:href"):
            value = found.get(name)
            if value is not None and not value.startswith("#"):
                self.external.append(value)
        if tag == "table":
            self._table += 1
        elif tag == "tr" and self._table == 1:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._row.append("")
        elif tag == "figure":
            self._figure = str(found["id"])
            self.figures[self._figure] = []
        if self._figure is not None:
            self.figures[self._figure].append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row:
            self.rows.append(self._row)
            self._row = None
        elif tag == "figure":
            self._figure = None

    def handle_data(self, data: str) -> None:
        if self._row:
            self._row[-1] += data


def page(written: Written) -> Page:
    return Page(written.html.read_text(encoding="utf-8"))


def text_of(svg: Path) -> str:
    """Every label of a plot (text stays text in the SVG), and a check that it parses."""
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    return " ".join(node.text or "" for node in root.iter("{http://www.w3.org/2000/svg}text"))


# -- every lane and every plot --------------------------------------------------------------------


def test_every_lane_is_a_row_of_the_comparison_in_both_formats(
    drawn: tuple[Results, Written],
) -> None:
    results, written = drawn
    rows = {row[0].lstrip("".join(SYMBOLS)): row for row in page(written).rows}
    assert set(rows) == {"solo", "gevent"}
    # delivered, then the ledger (on time, late, duplicated, failed, lost), then inversions
    assert rows["solo"][5:12] == ["22/22", "22", "0", "0", "0", "0", "0"]
    assert rows["gevent"][5:12] == ["20/22", "18", "2", "0", "0", "2", "1"]
    assert rows["gevent"][-2:] == ["fail (missing, out-of-order, late)", "pass ✗"]

    markdown = written.markdown.read_text(encoding="utf-8")
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    for lane in results.lanes:
        assert any(line.startswith(f"| {lane.lane} | {lane.pool} |") for line in table), table
    assert "| 20/22 | 18 | 2 | 0 | 0 | 2 | 1 |" in markdown


def test_every_plot_is_drawn_linked_and_inlined(drawn: tuple[Results, Written]) -> None:
    _, written = drawn
    expected = [LATENESS_PLOT, "timeline-solo.svg", "timeline-gevent.svg"]
    assert [path.name for path in written.plots] == expected
    markdown = written.markdown.read_text(encoding="utf-8")
    figures = page(written).figures
    for name in expected:
        assert f"](plots/{name})" in markdown
        assert "svg" in figures[f"plot-{name.removesuffix('.svg')}"]
    for lane in ("solo", "gevent"):
        labels = text_of(written.markdown.parent / "plots" / f"timeline-{lane}.svg")
        assert "time since the first request (s, at time scale 0.25)" in labels
        assert "part (seq)" in labels
        assert f"{lane} ({lane} pool, concurrency" in labels
    assert "lateness (s, at time scale 0.25)" in text_of(written.plots[0])


def test_the_failing_lanes_timeline_marks_late_missing_and_overtaken_parts(
    drawn: tuple[Results, Written],
) -> None:
    _, written = drawn
    gevent = text_of(written.markdown.parent / "plots" / "timeline-gevent.svg")
    assert f"late: more than 0.5 s after due ({len(LATE)})" in gevent
    assert f"missing: never accepted ({len(LOST)})" in gevent
    assert "out of order: a later part was received first (1)" in gevent
    assert "kill-worker at 1.5 s" in gevent
    solo = text_of(written.markdown.parent / "plots" / "timeline-solo.svg")
    for mark in ("late:", "missing:", "out of order:", "kill-worker"):
        assert mark not in solo


def test_each_lane_keeps_one_colour_in_every_plot(drawn: tuple[Results, Written]) -> None:
    _, written = drawn
    plots = written.markdown.parent / "plots"
    styles = lane_styles(["solo", "gevent"])
    assert styles["solo"].colour != styles["gevent"].colour
    assert styles["solo"].marker != styles["gevent"].marker
    lateness = (plots / LATENESS_PLOT).read_text().lower()
    for lane, style in styles.items():
        own = (plots / f"timeline-{lane}.svg").read_text().lower()
        assert style.colour.lower() in own
        assert style.colour.lower() in lateness
        others = [s.colour.lower() for n, s in styles.items() if n != lane]
        assert not any(colour in own for colour in others), f"{lane} drawn in another's colour"
    assert len(lane_styles([f"lane-{n}" for n in range(len(PALETTE))])) == len(PALETTE)


# -- a failing lane: its reasons in both formats --------------------------------------------------


def test_a_failing_lane_shows_its_reasons_and_mismatch_in_both_formats(
    drawn: tuple[Results, Written],
) -> None:
    results, written = drawn
    gevent = next(lane for lane in results.lanes if lane.lane == "gevent")
    assert len(gevent.reasons) == 3, gevent.reasons
    markdown = written.markdown.read_text(encoding="utf-8")
    html = written.html.read_text(encoding="utf-8")
    for reason in gevent.reasons:
        assert f"- {escape(reason)}" in markdown
        assert f"<li>{reason}</li>" in html  # no character in these needs escaping in HTML
    mismatch = "NOT AS EXPECTED: expected pass, got fail (missing, out-of-order, late)"
    assert mismatch in html
    assert escape(mismatch) in markdown
    assert markdown.startswith("# incident: NOT as expected: gevent\n")
    assert '<p class="status bad">NOT as expected: gevent</p>' in html
    assert (
        "- **fault**: kill-worker gevent (pid 4242) at 1.50-1.60 s, scheduled 1.50 s\n" in markdown
    )
    assert (
        "<dt>fault</dt><dd>kill-worker gevent (pid 4242) at 1.50-1.60 s, scheduled 1.50 s</dd>"
        in html
    )


def test_the_html_is_one_self_contained_page(drawn: tuple[Results, Written]) -> None:
    _, written = drawn
    html = written.html.read_text(encoding="utf-8")
    found = page(written)
    assert found.external == [], "no file, font, style sheet or script from elsewhere"
    assert "<script" not in html
    assert "<link" not in html
    duplicated = {i for i in found.ids if found.ids.count(i) > 1}
    assert duplicated == set(), "inlined plots must not share element ids"
    referenced = set(re.findall(r'href="#([^"]+)"|url\(#([^)]+)\)', html))
    assert {name for pair in referenced for name in pair if name} <= set(found.ids)
    for version in ("3.11.7", "5.5.3", "valkey 9.0.0"):
        assert version in html
    assert "scenario.toml, as written" in html
    assert "spacing_s = 2.0" in html  # the file verbatim
    assert escape_html('"spacing_s": 0.5') in html  # and as run, scaled


def test_drawing_twice_gives_the_same_files(drawn: tuple[Results, Written], tmp_path: Path) -> None:
    """A regenerated sample differs only where the run does."""
    _, written = drawn
    again = write_reports(written.markdown.parent, tmp_path / "again")
    for first, second in zip(
        [written.markdown, written.html, *written.plots],
        [again.markdown, again.html, *again.plots],
        strict=True,
    ):
        assert first.read_bytes() == second.read_bytes(), first.name


def test_an_interrupted_run_says_so_in_both_formats(tmp_path: Path) -> None:
    """Cut short after part 3: the rest counts as missing, and the page must not look final."""
    history = {"solo": [part("solo", seq) for seq in range(4)]}
    failed = FAULT | {"lane": "solo", "error": "ProcessLookupError: gone"}
    store(tmp_path, history, complete=False, faults=(failed,))

    written = write_reports(tmp_path)

    headline = "INTERRUPTED: the run was cut short, figures are partial"
    assert headline in written.markdown.read_text(encoding="utf-8").splitlines()[0]
    html = written.html.read_text(encoding="utf-8")
    assert f'<p class="status warn">{headline}</p>' in html
    assert "NOT AS EXPECTED" not in html, "an unfinished lane is not judged against expectations"
    assert (
        "kill-worker solo (pid 4242) at 1.50-1.60 s, scheduled 1.50 s: "
        "FAILED: ProcessLookupError: gone" in html
    )
    assert "missing: never accepted (18)" in text_of(tmp_path / "plots" / "timeline-solo.svg")


@pytest.mark.parametrize(
    "sample",
    [
        "incident",
        "slow-api",
        "jittery-api",
        "worker-killed",
        "brokers",
        "brokers-long-eta",
        "releases",
        "api-outage",
        "broker-restart",
        "load-steady",
        "load-spike",
    ],
)
def test_the_committed_sample_is_drawn_again_from_its_own_files(
    sample: str, tmp_path: Path
) -> None:
    """reports/<sample> holds real full-length runs; they must stay readable and drawable."""
    stored = SAMPLES / sample
    results = read_results(stored)
    assert results.complete
    assert results.time_scale == 1

    written = write_reports(stored, tmp_path)

    rows = [row[0].lstrip("".join(SYMBOLS)) for row in page(written).rows]
    assert rows == [lane.lane for lane in results.lanes]
    committed = {path.name for path in (stored / "plots").iterdir()}
    assert {path.name for path in written.plots} == committed
    # Drawing is deterministic: a sample that differs was not redrawn after a report change.
    for drawn in [written.markdown, written.html, *written.plots]:
        kept = stored / drawn.relative_to(tmp_path)
        assert drawn.read_bytes() == kept.read_bytes(), f"redraw {stored}: {kept.name} is stale"


# -- where a lane ran, and old runs' ledgers ------------------------------------------------------


def test_each_lanes_environment_says_where_it_ran_and_what_answered(tmp_path: Path) -> None:
    """A compose lane the scenario calls valkey, on Debian's Redis 7: both formats say redis."""
    results = store(tmp_path, {"solo": [part("solo", seq) for seq in range(PARTS)]})
    lanes = [
        lane.model_copy(
            update={
                "backend": "compose",
                "broker_version": "redis 7.0.15",
                "broker_server": BrokerServer(name="redis", version="7.0.15"),
            }
        )
        for lane in results.lanes
    ]
    made = results.model_copy(
        update={"lanes": lanes, "harness_version": "0.1.0", "command": "harness run incident"}
    )
    (tmp_path / RESULTS).write_text(made.model_dump_json(), encoding="utf-8")

    written = write_reports(tmp_path)

    markdown = written.markdown.read_text(encoding="utf-8")
    assert "| " + " | ".join(LANE_ENV_COLUMNS) + " |" in markdown
    assert "| solo | compose | valkey | redis 7.0.15 | 3.11" not in markdown  # no worker versions
    assert "| solo | compose | valkey | redis 7.0.15 | - |" in markdown
    assert "- **command**: harness run incident" in markdown
    assert "- **harness**: 0.1.0" in markdown
    html = written.html.read_text(encoding="utf-8")
    assert "<td>solo</td><td>compose</td><td>valkey</td><td>redis 7.0.15</td>" in html
    assert page(written).rows[0][2] == "redis 7.0.15"  # the comparison's broker column


LOAD_SPEC = load_scenario("load-steady")[0].model_dump(mode="json")["load"]


def load_run(run_dir: Path, correlations: dict[str, list[str]]) -> Results:
    """A load run written before the ledger: three requests on solo, every part on time;
    `correlations` is what its load section recorded per lane."""
    requests = [f"{n:0>16}" for n in range(3)]
    history = [
        part("solo", seq).model_copy(
            update={"correlation_id": request, "message_id": f"{request}-{seq:03d}"}
        )
        for request in requests
        for seq in range(PARTS)
    ]
    verdicts = judge(SCENARIO.only(["solo"]), {"solo": history}, {"solo": requests})
    lanes = [
        lane_result(v, SCENARIO, 1).model_copy(update={"ledger": None}) for v in verdicts.values()
    ]
    load = LoadResult(
        load=LOAD_SPEC,
        exit_code=0,
        lanes=[
            LoadLaneResult(lane=lane, fixtures_requests=3, fixtures_accepted=3, correlations=ids)
            for lane, ids in correlations.items()
        ],
    )
    store(run_dir, {"solo": history})
    results = read_results(run_dir).model_copy(update={"lanes": lanes, "load": load})
    (run_dir / RESULTS).write_text(results.model_dump_json(), encoding="utf-8")
    return results


def test_an_old_load_runs_ledger_counts_every_requests_parts(tmp_path: Path) -> None:
    """Before the fix, the two later requests' 44 parts were counted "never queued"."""
    requests = [f"{n:0>16}" for n in range(3)]
    load_run(tmp_path, {"solo": requests})

    markdown = render_markdown(load_report(tmp_path), "plots")  # no plots: fast

    assert f"| {3 * PARTS}/{3 * PARTS} | {3 * PARTS} | 0 | 0 | 0 | 0 |" in markdown
    assert f"- ledger: {3 * PARTS} on time, 0 late, 0 duplicated, 0 failed, 0 lost" in markdown
    assert "solo: not recorded in results.json (written before the ledger): judged again" in (
        " ".join(markdown.split())
    )
    assert "never queued" not in markdown


def test_an_old_ledger_that_cannot_be_judged_is_shown_as_not_recorded(tmp_path: Path) -> None:
    """Its load recorded no requests for the lane: no ledger is invented."""
    load_run(tmp_path, {"gevent": []})

    markdown = render_markdown(load_report(tmp_path), "plots")

    assert f"| {3 * PARTS}/{3 * PARTS} | - | - | - | - | - |" in markdown
    assert "- ledger: not recorded in results.json" in markdown
    assert " lost" not in markdown.split("## Verdicts")[1].split("## Load")[0]


# -- harness report -------------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, ["report", *argv], env={"COLUMNS": "200"})
    return done.exit_code, " ".join(done.output.split())


def test_harness_report_redraws_a_stored_run_and_copies_it_with_out(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    results = store(run_dir, {"solo": [part("solo", seq) for seq in range(PARTS)]})
    (run_dir / "processes.json").write_text("{}")  # a real run directory has one

    code, output = run_cli(str(run_dir))

    assert code == 0, output
    assert f"report: {run_dir / REPORT_MD} and {run_dir / REPORT_HTML}" in output
    assert (run_dir / "plots" / "timeline-solo.svg").is_file()

    sample = tmp_path / "sample"
    code, output = run_cli(str(run_dir / RESULTS), "--out", str(sample))
    assert code == 0, output
    assert sorted(path.name for path in sample.iterdir()) == sorted(
        [HISTORY, RESULTS, "scenario.toml", REPORT_MD, REPORT_HTML, "plots"]
    )
    assert read_results(sample) == results
    assert (sample / REPORT_MD).read_text() == (run_dir / REPORT_MD).read_text()
    assert load_report(sample).lanes[0].parts == load_report(run_dir).lanes[0].parts

    # The copy is a run of its own: it redraws in place, and drops plots of lanes gone.
    (sample / "plots" / "timeline-gone.svg").write_text("<svg/>")
    code, output = run_cli(str(sample))
    assert code == 0, output
    assert not (sample / "plots" / "timeline-gone.svg").exists()


def test_harness_report_refuses_what_it_cannot_draw(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    code, output = run_cli(str(missing))
    assert code == 2
    assert f"{missing}: cannot read results: No such file or directory" in output

    invalid = tmp_path / "invalid"
    invalid.mkdir()
    (invalid / RESULTS).write_text('{"scenario": "x"}')
    code, output = run_cli(str(invalid))
    assert code == 2
    assert f"{invalid / RESULTS}: " in output
    assert "lanes: Field required" in output

    no_history = tmp_path / "no-history"
    store(no_history, {"solo": [part("solo", 0)]})
    (no_history / HISTORY).unlink()
    code, output = run_cli(str(no_history))
    assert code == 2
    assert f"{no_history / HISTORY}: cannot read the history" in output
    assert not (no_history / REPORT_HTML).exists()

    binary = tmp_path / "binary"
    store(binary, {"solo": [part("solo", 0)]})
    (binary / HISTORY).write_bytes(b"\xff\xfe not text")
    code, output = run_cli(str(binary))
    assert code == 2
    assert f"{binary / HISTORY}: not UTF-8 text" in output

    for result in (missing, invalid, no_history, binary):
        assert "Traceback" not in run_cli(str(result))[1]


def test_harness_report_never_writes_over_a_file_or_another_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    store(run_dir, {"solo": [part("solo", seq) for seq in range(PARTS)]})
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")

    code, output = run_cli(str(run_dir), "--out", str(taken))
    assert code == 2
    assert f"{taken} is a file; give a directory for the report" in output
    assert taken.read_text() == "mine"

    other = tmp_path / "other"
    store(other, {"solo": [part("solo", 0)]})
    (other / "processes.json").write_text("{}")
    before = (other / RESULTS).read_text()
    code, output = run_cli(str(run_dir), "--out", str(other))
    assert code == 2
    assert f"{other} holds a run of its own" in output
    assert (other / RESULTS).read_text() == before
    assert not (other / REPORT_MD).exists()

    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    (unrelated / RESULTS).write_text("not a report's")
    code, output = run_cli(str(run_dir), "--out", str(unrelated))
    assert code == 2
    assert f"{unrelated} is not empty and holds no earlier report" in output
    assert (unrelated / RESULTS).read_text() == "not a report's"


def test_out_never_replaces_another_scenarios_report(tmp_path: Path) -> None:
    """`--out reports/incident` given the wrong run must not wipe the committed sample."""
    run_dir = tmp_path / "run"
    store(run_dir, {"solo": [part("solo", seq) for seq in range(PARTS)]})
    sample = tmp_path / "sample"
    assert run_cli(str(run_dir), "--out", str(sample))[0] == 0
    other = json.loads((sample / RESULTS).read_text()) | {"scenario": "slow-api"}
    (sample / RESULTS).write_text(json.dumps(other))

    code, output = run_cli(str(run_dir), "--out", str(sample))

    assert code == 2
    assert f"{sample} holds a report of scenario 'slow-api', not 'incident'" in output
    assert json.loads((sample / RESULTS).read_text())["scenario"] == "slow-api"


def test_out_drops_a_source_the_run_does_not_have(tmp_path: Path) -> None:
    """A scenario.toml left from an earlier report would be shown as this run's."""
    run_dir = tmp_path / "run"
    store(run_dir, {"solo": [part("solo", seq) for seq in range(PARTS)]})
    sample = tmp_path / "sample"
    assert run_cli(str(run_dir), "--out", str(sample))[0] == 0
    (run_dir / "scenario.toml").unlink(missing_ok=True)

    assert run_cli(str(run_dir), "--out", str(sample))[0] == 0

    assert not (sample / "scenario.toml").exists()
