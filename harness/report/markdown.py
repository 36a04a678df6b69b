"""report.md: a summary to paste into an issue or a pull request.

GitHub-flavoured Markdown (templates/run.md): the comparison table, each lane's verdict
and reasons, the plots as links to the SVG files beside it (`plots/`; GitHub renders
them, a pasted copy shows the text), the scenario as run and the versions, folded away.
"""

from __future__ import annotations

from .data import Report
from .render import markdown_escape as escape
from .render import render
from .run_view import run_view

__all__ = ["escape", "render_markdown"]


def render_markdown(report: Report, plots_dir: str) -> str:
    """The report, linking its plots as `plots_dir/<name>.svg` (relative to report.md)."""
    return render("run.md", **run_view(report), plots_dir=plots_dir)
