"""Where the command line writes: one Rich console, and text said as it is."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

# Piped or in CI, Rich would assume 80 columns and squeeze the comparison table; logs are wide.
console = Console(width=None if Console().is_terminal else 120)


def say(message: str, style: str = "") -> None:
    """Print text as it is: values from files and paths may hold Rich markup such as `[x]`."""
    console.print(Text(message, style=style))


def say_error(message: str) -> None:
    """An error on one line however wide (the terminal wraps it, Rich does not), in red."""
    console.print(Text(message, style="red"), soft_wrap=True)
