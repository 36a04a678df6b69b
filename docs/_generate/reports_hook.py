"""MkDocs hook: the committed report samples (reports/) go into the site as they are.

The findings pages link each sample's `report.html` (self-contained: plots inlined),
`results.json` and `scenario.toml`, and show its plots. The files are read from reports/
at build time, so a link to a sample that is not committed fails the build like any
broken link. Histories, logs and run directories stay out (tens of MB; no page needs them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FILES = ("report.html", "results.json", "scenario.toml", "plots/*.svg")


def sample_files(reports: Path) -> list[Path]:
    """Each committed sample's files the site serves, relative to the repository."""
    return sorted(
        path.relative_to(reports.parent)
        for sample in reports.iterdir()
        if sample.is_dir() and sample.name != "runs"
        for pattern in SAMPLE_FILES
        for path in sample.glob(pattern)
    )


def on_files(files: Files, config: Any, **_: Any) -> Files:
    for path in sample_files(ROOT / "reports"):
        files.append(
            File(
                path.as_posix(),
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
