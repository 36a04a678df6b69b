"""The fixtures reply: a deterministic, seedable fixtures list and the splitter that cuts it.

The generator writes one section (a round of a competition) per message part,
each sized so that the splitter puts exactly one section in each part; the
default settings therefore give the incident's 22 parts.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

TOWNS = (
    "Ashford", "Barrow", "Carlisle", "Dover", "Eastleigh", "Fleetwood", "Gateshead",
    "Harrogate", "Ilkeston", "Kendal", "Lincoln", "Maidstone", "Newport", "Oldham",
    "Peterhead", "Rochdale", "Stockport", "Telford", "Wrexham", "Yeovil",
)  # fmt: skip
SUFFIXES = ("Town", "United", "City", "Rovers", "Athletic", "Albion", "Wanderers")
COMPETITIONS = ("League One", "League Two", "National League", "Cup", "Trophy")
KICK_OFFS = ("12:30", "15:00", "17:30", "19:45", "20:00")
SEPARATOR = "\n\n"


def _team(rng: random.Random) -> str:
    return f"{rng.choice(TOWNS)} {rng.choice(SUFFIXES)}"


def _fixture(rng: random.Random, day: date) -> str:
    home, away = _team(rng), _team(rng)
    while away == home:
        away = _team(rng)
    return f"{day:%a %d %b} {rng.choice(KICK_OFFS)}  {home} v {away}"


def _section(rng: random.Random, number: int, first_day: date, limit: int) -> str:
    """One round, longer than half of `limit` and short enough to fit with its separator."""
    day = first_day + timedelta(days=7 * (number - 1))
    lines = [f"*Round {number}: {rng.choice(COMPETITIONS)}*"]
    target = rng.uniform(0.6, 0.95) * limit
    while True:
        line = _fixture(rng, day + timedelta(days=rng.randrange(3)))
        size = sum(map(len, lines)) + len(lines)  # the lines and the newlines between them
        if size + len(line) + len(SEPARATOR) > limit or size > target:
            break
        lines.append(line)
    return "\n".join(lines)


def fixtures_text(parts: int, part_chars: int, seed: int = 0) -> str:
    """A fixtures list that `split_message(text, part_chars)` cuts into exactly `parts` parts."""
    rng = random.Random(seed)
    first_day = date(2026, 8, 1) + timedelta(days=rng.randrange(28))
    sections = [_section(rng, number, first_day, part_chars) for number in range(1, parts + 1)]
    return SEPARATOR.join(sections)


def split_message(text: str, limit: int) -> list[str]:
    """Cut `text` into parts of at most `limit` characters that join back to `text`.

    Cuts after the last blank line that fits, else the last newline, else the last
    space, else at the limit; the separator stays at the end of its part.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        for separator in (SEPARATOR, "\n", " "):
            index = window.rfind(separator)
            if index > 0:
                cut = index + len(separator)
                break
        else:
            cut = limit
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest or not parts:
        parts.append(rest)
    return parts
