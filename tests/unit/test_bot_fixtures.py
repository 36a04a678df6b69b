"""Property tests of the fixtures reply: `split_message` for any text, `fixtures_text` for any size.

`split_message` must never lose, reorder or overfill a part, and must cut at the
best boundary in each window (blank line, else newline, else space, else the
limit). `fixtures_text` must be cut by it into exactly the requested parts.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.bot.fixtures import SEPARATOR, fixtures_text, split_message
from harness.bot.settings import MAX_TEXT_CHARS, MIN_PART_CHARS, load_settings

pytestmark = pytest.mark.unit

# Texts rich in the splitter's boundaries: spaces, newlines and blank lines among any characters.
BOUNDARY_HEAVY = st.lists(
    st.one_of(st.sampled_from([" ", "\n", SEPARATOR, "a", "bb"]), st.text(max_size=3)),
    max_size=100,
).map("".join)
TEXTS = st.one_of(st.text(max_size=300), BOUNDARY_HEAVY)
LIMITS = st.integers(min_value=1, max_value=80)
# Small fixtures lists, cut at any limit (not only the one they were made for).
SMALL_FIXTURES = st.builds(
    fixtures_text,
    parts=st.integers(min_value=1, max_value=4),
    part_chars=st.integers(min_value=MIN_PART_CHARS, max_value=400),
    seed=st.integers(min_value=0, max_value=2**32),
)


def assert_valid_split(text: str, limit: int, parts: list[str]) -> None:
    """Every invariant of `split_message(text, limit) == parts`."""
    assert "".join(parts) == text
    assert all(len(part) <= limit for part in parts), [len(part) for part in parts]
    if text == "":
        assert parts == [""]
        return
    assert all(parts), "an empty part in the split of a non-empty text"
    if len(text) <= limit:
        assert parts == [text]
    offset = 0
    for part in parts[:-1]:
        rest = text[offset:]
        assert rest.startswith(part)  # seq order is the text's order
        assert_best_cut(rest[:limit], part)
        offset += len(part)
    assert text[offset:] == parts[-1]
    assert 0 < len(parts[-1]) <= limit


def assert_best_cut(window: str, part: str) -> None:
    """`part` (not the last) was cut at the best boundary of `window`, the next `limit` chars.

    A boundary at position 0 does not count, so no part is a bare separator of a
    window that has text after it; with none left the cut is at the limit.
    """
    cut = len(part)
    assert window.startswith(part)
    # The minimum the brief asks: a part not ending on a newline or space had no such boundary.
    if not part.endswith(("\n", " ")):
        assert "\n" not in window[1:], (window, part)
        assert " " not in window[1:], (window, part)
        assert cut == len(window)
    if window.find(SEPARATOR, 1) != -1:  # a blank line fits: cut after the last one
        assert part.endswith(SEPARATOR), (window, part)
        assert window.find(SEPARATOR, cut - 1) == -1, (window, part)
    elif "\n" in window[1:]:  # else after the last newline
        assert part.endswith("\n"), (window, part)
        assert "\n" not in window[cut:], (window, part)
    elif " " in window[1:]:  # else after the last space
        assert part.endswith(" "), (window, part)
        assert " " not in window[cut:], (window, part)
    else:  # else hard at the limit
        assert cut == len(window), (window, part)


@settings(max_examples=150, deadline=None)
@given(text=TEXTS, limit=LIMITS)
def test_split_of_any_text_keeps_every_invariant(text: str, limit: int) -> None:
    assert_valid_split(text, limit, split_message(text, limit))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=SMALL_FIXTURES, limit=st.integers(min_value=1, max_value=MAX_TEXT_CHARS))
def test_split_of_fixtures_text_at_any_limit_keeps_every_invariant(text: str, limit: int) -> None:
    assert_valid_split(text, limit, split_message(text, limit))


@pytest.mark.parametrize("limit", [1, 2, 160, MAX_TEXT_CHARS])
def test_empty_text_is_one_empty_part(limit: int) -> None:
    """Deliberately: the empty reply is one empty part, not no part at all."""
    assert split_message("", limit) == [""]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("aaaa bbbb\ncccc\n\ndddd", 18, ["aaaa bbbb\ncccc\n\n", "dddd"]),  # blank line wins
        ("aaaa\nbbbb cccc dddd", 16, ["aaaa\n", "bbbb cccc dddd"]),  # newline beats a later space
        ("aaaa bbbb cccc", 12, ["aaaa bbbb ", "cccc"]),  # the last space that fits
        ("abcdefghij", 4, ["abcd", "efgh", "ij"]),  # no boundary: hard cut at the limit
        (" abcdef", 4, [" abc", "def"]),  # a boundary at position 0 does not count
        ("ab\n\n\ncd", 4, ["ab\n\n", "\ncd"]),  # the separator stays with its part
    ],
)
def test_split_examples(text: str, limit: int, expected: list[str]) -> None:
    assert split_message(text, limit) == expected


@pytest.mark.parametrize("limit", [0, -1])
def test_split_rejects_a_limit_below_one(limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        split_message("text", limit)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.integers(min_value=1, max_value=60),
    part_chars=st.integers(min_value=MIN_PART_CHARS, max_value=MAX_TEXT_CHARS),
    seed=st.integers(min_value=-(2**63), max_value=2**63),
)
def test_fixtures_text_splits_into_exactly_the_requested_parts(
    parts: int, part_chars: int, seed: int
) -> None:
    text = fixtures_text(parts, part_chars, seed)

    split = split_message(text, part_chars)

    assert len(split) == parts
    assert all(0 < len(part) <= part_chars for part in split)
    assert text.isascii()
    assert fixtures_text(parts, part_chars, seed) == text  # deterministic per seed
    # One round per part, in order.
    assert [part.split(":", 1)[0] for part in split] == [
        f"*Round {number}" for number in range(1, parts + 1)
    ]


@pytest.mark.parametrize(("seed", "other"), [(0, 1), (1, 2), (42, 43), (0, 12345)])
def test_fixtures_text_differs_between_seeds(seed: int, other: int) -> None:
    assert fixtures_text(22, MAX_TEXT_CHARS, seed) != fixtures_text(22, MAX_TEXT_CHARS, other)


def test_default_settings_give_the_incidents_22_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FIXTURES_PARTS", "FIXTURES_PART_CHARS", "FIXTURES_SEED"):
        monkeypatch.delenv(name, raising=False)
    bot_settings = load_settings()

    text = fixtures_text(
        bot_settings.fixtures_parts, bot_settings.fixtures_part_chars, bot_settings.fixtures_seed
    )

    assert len(split_message(text, bot_settings.fixtures_part_chars)) == 22
