"""How every plot of the reports is drawn and written: one style, one SVG writer.

The run reports' plots (`plots`, `load`) and the capacity report's plot all draw with
`STYLE` and `INK` and write with `to_svg`, so every plot reads alike and is written the
same deterministic way.
"""

from __future__ import annotations

import io
import re

import matplotlib
from matplotlib.figure import Figure

STYLE = {
    # Text as <text>, not glyph outlines: a third smaller, and selectable in the HTML.
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial"],
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.fontsize": 8.5,
    "legend.framealpha": 0.92,
}
INK = "#222222"  # expected times, late rings, missing parts: black-ish, fine in print


def to_svg(figure: Figure, name: str) -> str:
    """The figure as one line of SVG, without the XML prolog (so HTML can inline it).

    Its element ids are salted with the plot's name: fixed, so a file changes only when
    its plot does, and distinct, so several plots inlined in one page do not share ids.

    Matplotlib writes coordinates to 6 decimals of a point and indents every element;
    0.1 pt (1/30 mm) is below what a screen or printer shows. It also names every group
    (`figure_1`, `axes_1`, ...): the same names in each plot, so they are dropped unless
    something refers to them, and a page holding several plots keeps its ids unique.
    """
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"stagger-harness {name}"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>|<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r'="[^"]*"', _round_attribute, text)
    text = re.sub(r' transform="rotate\(-0 [^"]*\)"', "", text)  # turns by nothing
    used = set(re.findall(r'href="#([^"]+)"|url\(#([^)]+)\)', text))
    used = {name for pair in used for name in pair if name}
    text = re.sub(r' id="([^"]*)"', lambda m: m.group() if m.group(1) in used else "", text)
    return re.sub(r">\s+<", "><", re.sub(r"\s*\n\s*", " ", text)) + "\n"


def _round_attribute(match: re.Match[str]) -> str:
    """Attribute values only: a label's text keeps every digit it has."""
    return re.sub(r"(\d+\.\d)\d+", r"\1", match.group())


def time_unit(time_scale: float) -> str:
    """The unit of a run's seconds, saying the time scale when it is not 1."""
    return "s" if time_scale == 1 else f"s, at time scale {time_scale:g}"
