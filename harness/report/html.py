"""report.html: one self-contained page, for reading on screen or on paper.

The page is templates/run.html. The plots are inlined as SVG elements and the style
sheet (templates/style.css) is in the page, so it opens offline, from a mail attachment
or a CI artefact, and prints with each plot on one page.
"""

from __future__ import annotations

from .data import Report
from .render import render
from .run_view import run_view


def render_html(report: Report, plots: dict[str, str]) -> str:
    """The page; `plots` maps each of `report.plots` to its SVG text."""
    return render("run.html", **run_view(report), plots=plots)
