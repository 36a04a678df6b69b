"""Drawing a run's reports once its verdict is out: a failure to draw is said, never
turned into an exit status or a traceback.

The report package is imported only to draw: matplotlib takes about a second to import,
which every other command would pay at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .output import say


def draw_run_reports(run_dir: Path) -> None:
    """report.md and report.html of a run (`harness run`, `harness matrix`)."""

    def draw() -> tuple[Path, Path]:
        from ..report import write_reports  # matplotlib: only to draw (see above)

        written = write_reports(run_dir)
        return written.markdown, written.html

    _drawn(draw, f"to try again: harness report {run_dir}")


def draw_capacity_reports(run_dir: Path) -> bool:
    """report.md and report.html of a capacity run; whether they were drawn."""

    def draw() -> tuple[Path, Path]:
        from ..report.capacity import write_capacity_reports  # matplotlib: only to draw

        return write_capacity_reports(run_dir)

    return _drawn(draw)


def _drawn(draw: Callable[[], tuple[Path, Path]], again: str | None = None) -> bool:
    try:
        markdown, html = draw()
    except (Exception, KeyboardInterrupt) as exc:
        say(f"no report: {type(exc).__name__}: {exc}", "yellow")
        if again is not None:
            say(again)
        return False
    say(f"report: {markdown} and {html}")
    return True
