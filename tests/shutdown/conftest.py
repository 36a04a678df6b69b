"""The shutdown set's summary: per kind of trial, how many, what was left, false claims."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .trials import TRIALS, clean_up, summary


@pytest.fixture(autouse=True)
def _nothing_left() -> Iterator[None]:
    yield
    clean_up()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TRIALS:
        return
    terminalreporter.section("shutdown trials: processes and containers left, false claims")
    for line in summary(TRIALS):
        terminalreporter.write_line(line)
