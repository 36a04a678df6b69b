"""The report templates (`templates/`) and the one Jinja environment that renders them.

Every report, a run's or a capacity search's, Markdown or HTML, is a template here, and
the writers only gather what it shows. HTML templates are escaped automatically, with the
standard library's entities (`html.escape`), so a page drawn again is byte for byte the
page drawn before; a Markdown template escapes text from files with its `md` filter.
"""

from __future__ import annotations

import html
import re
from typing import Any

from jinja2 import Environment, PackageLoader, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from markupsafe import Markup

_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def markdown_escape(text: str) -> str:
    """Text from files (descriptions, reasons) shown as written, never as markup."""
    return _SPECIAL.sub(r"\\\1", text)


def fenced(text: str, language: str) -> str:
    """A code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


@pass_eval_context
def _finalize(context: EvalContext, value: Any) -> Any:
    """In an HTML template, every value escaped as `html.escape` does (`&quot;`, not `&#34;`)."""
    if context.autoescape and not isinstance(value, Markup):
        return Markup(html.escape(str(value)))
    return value


ENVIRONMENT = Environment(
    loader=PackageLoader("harness.report", "templates"),
    autoescape=select_autoescape(["html"]),
    finalize=_finalize,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENVIRONMENT.filters["md"] = markdown_escape
ENVIRONMENT.filters["fenced"] = fenced


def render(template: str, **context: Any) -> str:
    """The template `templates/<template>` filled in with `context`."""
    return ENVIRONMENT.get_template(template).render(**context)
