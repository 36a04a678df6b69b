"""report.html: one self-contained page, for reading on screen or on paper.

Plain string building with `html.escape` (no template engine for one page). The plots
are inlined as SVG elements and the style sheet is in the page, so it opens offline,
from a mail attachment or a CI artefact, and prints with each plot on one page.
"""

from __future__ import annotations

import json
from html import escape

from .data import LATENESS_PLOT, LOAD_PLOT, Lane, Report
from .load import LOAD_COLUMNS, LOAD_NOTE, load_facts, load_rows
from .text import (
    COLUMNS,
    EXPECTED_COLUMN,
    LANE_ENV_COLUMNS,
    LANE_ENV_NOTE,
    PLOTS_NOTE,
    TABLE_NOTE,
    VERDICT_COLUMN,
    cells,
    expected,
    facts,
    headline,
    lane_versions,
    ledger_line,
    verdict,
)

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       color: #222; max-width: 1240px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .3em; }
.status { font-weight: 600; padding: .4em .7em; border-radius: 4px; display: inline-block; }
.ok { background: #e3f2e8; color: #14532d; } .bad { background: #fde8e4; color: #7f1d1d; }
.warn { background: #fdf3d8; color: #713f12; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: .92em; }
th, td { padding: .3em .6em; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
td.r, th.r { text-align: right; }
.wide { overflow-x: auto; } .wide table { font-size: .86em; }
.wide td { white-space: nowrap; } .wide th, .wide td { padding: .3em .45em; }
td.pass { color: #14532d; } td.fail { color: #7f1d1d; font-weight: 600; }
td.unmet { background: #fde8e4; font-weight: 600; }
.swatch { font-size: 1.1em; margin-right: .3em; }
.note, .why { color: #555; font-size: .92em; }
.mismatch { color: #7f1d1d; font-weight: 600; }
figure { margin: 1.2em 0; } figure svg { width: 100%; height: auto; }
figcaption { color: #555; font-size: .9em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: .85em; }
@page { size: landscape; margin: 12mm; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  .wide { overflow: visible; } .wide table { font-size: 8.5pt; }
  h2, h3 { break-after: avoid; } figure svg { width: auto; max-width: 100%; max-height: 150mm; }
  figure, section.lane, table { break-inside: avoid; }
}
"""


def _lane_name(lane: Lane) -> str:
    """The lane's name behind its colour and marker, as the plots draw it."""
    style = lane.style
    swatch = f'<span class="swatch" style="color: {style.colour}">{style.symbol}</span>'
    return swatch + escape(lane.name)


def _comparison(report: Report) -> list[str]:
    head = "".join(f'<th class="{align}">{escape(name)}</th>' for name, align in COLUMNS)
    out = ['<div class="wide"><table>', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for lane in report.lanes:
        row = []
        for i, (cell, (_, align)) in enumerate(zip(cells(lane), COLUMNS, strict=True)):
            classes = [align]
            if i == VERDICT_COLUMN:
                classes.append(lane.result.verdict)
            if i == EXPECTED_COLUMN and not lane.result.as_expected:
                classes.append("unmet")
            text = _lane_name(lane) if i == 0 else escape(cell)
            row.append(f'<td class="{" ".join(classes)}">{text}</td>')
        out.append(f"<tr>{''.join(row)}</tr>")
    out += ["</tbody>", "</table></div>", f'<p class="note">{escape(TABLE_NOTE)}</p>']
    return out


def _verdicts(report: Report) -> list[str]:
    out = []
    for lane in report.lanes:
        result = lane.result
        out.append(f'<section class="lane" id="lane-{escape(lane.name)}">')
        out.append(
            f"<h3>{_lane_name(lane)}: {escape(verdict(lane))}, expected "
            f"{escape(expected(lane))}</h3>"
        )
        if lane.why:
            out.append(f'<p class="why">{escape(lane.why)}</p>')
        if result.mismatch and report.results.complete:
            out.append(f'<p class="mismatch">NOT AS EXPECTED: {escape(result.mismatch)}</p>')
        reasons = [ledger_line(lane), *(result.reasons or ["every check passed"])]
        out += ["<ul>", *(f"<li>{escape(reason)}</li>" for reason in reasons), "</ul>"]
        out.append("</section>")
    return out


def _figure(name: str, svg: str, caption: str = "") -> str:
    """A plot inlined; its title and legend are in the SVG, the caption says what else."""
    below = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure id="plot-{escape(name.removesuffix(".svg"))}">{svg}{below}</figure>'


def render_html(report: Report, plots: dict[str, str]) -> str:
    """The page; `plots` maps each of `report.plots` to its SVG text."""
    results, lanes, versions = report.results, report.lanes, report.results.versions.items()
    status = "warn" if not results.complete else "ok" if results.as_expected else "bad"
    out = [
        "<!doctype html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(results.scenario)}: {escape(headline(report))}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(results.scenario)}</h1>",
        f'<p class="status {status}">{escape(headline(report))}</p>',
        '<dl class="facts">',
        *(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts(report)),
        "</dl>",
        "<h2>Comparison</h2>",
        *_comparison(report),
        "<h2>Verdicts</h2>",
        *_verdicts(report),
        *_load_section(report, plots),
        "<h2>Lateness across lanes</h2>",
        _figure(
            LATENESS_PLOT,
            plots[LATENESS_PLOT],
            "Each point a delivered part; boxes span the middle half, the line is the median.",
        ),
        "<h2>Timelines</h2>",
        f'<p class="note">{escape(PLOTS_NOTE)}</p>',
        *(_figure(lane.plot, plots[lane.plot]) for lane in lanes),
        "<h2>Scenario as run</h2>",
    ]
    if report.scenario_text is not None:
        out.append(
            "<details open><summary>scenario.toml, as written</summary>"
            f"<pre>{escape(report.scenario_text)}</pre></details>"
        )
    as_run = json.dumps(results.scenario_definition, indent=2)
    out += [
        "<details><summary>as run: lanes picked, durations scaled</summary>"
        f"<pre>{escape(as_run)}</pre></details>",
        "<h2>Versions</h2>",
        "<table><thead><tr><th>component</th><th>version</th></tr></thead><tbody>",
        *(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in versions),
        "</tbody></table>",
        f"<p>{escape(LANE_ENV_NOTE)}</p>",
        "<table><thead><tr>"
        + "".join(f"<th>{escape(h)}</th>" for h in LANE_ENV_COLUMNS)
        + "</tr></thead><tbody>",
        *(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in lane_versions(lane)) + "</tr>"
            for lane in lanes
        ),
        "</tbody></table>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"


def _load_section(report: Report, plots: dict[str, str]) -> list[str]:
    load = report.results.load
    if load is None:
        return []
    head = "".join(f'<th class="{align}">{escape(name)}</th>' for name, align in LOAD_COLUMNS)
    rows = [
        "<tr>"
        + "".join(
            f'<td class="{align}">{escape(cell)}</td>'
            for cell, (_, align) in zip(row, LOAD_COLUMNS, strict=True)
        )
        + "</tr>"
        for row in load_rows(load)
    ]
    return [
        "<h2>Load</h2>",
        "<ul>",
        *(f"<li>{escape(fact)}</li>" for fact in load_facts(load)),
        "</ul>",
        f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>',
        *rows,
        "</tbody></table></div>",
        f'<p class="note">{escape(LOAD_NOTE)}</p>',
        _figure(LOAD_PLOT, plots[LOAD_PLOT], "Above: the load; below: what it did to delivery."),
    ]
