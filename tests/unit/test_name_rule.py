"""What a stored text field (a name above all) may hold: no control characters, no invisible
format or text-direction characters, and at least one visible character.

The rule is models.text_problem, with its character classes published (CONTROL_CHARS,
FORMAT_CHARS, INVISIBLE_CHARS) for the OpenAPI document. The oracle here is stated from Unicode
itself: a character is refused if its category is Cc, Zl, Zp or Cf, or if Unicode calls it
default-ignorable (invisible wherever it is not supported), except the two joiners real names
need (ZWNJ, ZWJ) and the combining marks among the default-ignorables (variation selectors and
the like, which attach to a visible character); a name is empty unless some character is
neither whitespace nor invisible.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.domain import models
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import NAME_MAX
from chalicelib.web.inputs import parse_new_user, parse_profile_changes, parse_user_changes
from chalicelib.web.openapi import document

ZWNJ, ZWJ = "\u200c", "\u200d"
# Unicode 15.1's Default_Ignorable_Code_Point (DerivedCoreProperties.txt), as ranges.
DEFAULT_IGNORABLE = [
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
]  # fmt: skip
BRAILLE_BLANK = "\u2800"  # a braille cell with no dots: a character, but nothing to see
BIDI_CONTROLS = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
PARSERS: dict[str, Callable[[str], object]] = {
    "POST /users": lambda name: parse_new_user({"name": name, "email": "ada@example.com"}),
    "PUT /users/{id}": lambda name: parse_user_changes({"name": name}),
    "PUT /users/me": lambda name: parse_profile_changes({"name": name}),
}


# The ranges' code points as one set: refused_non_space() asks about each of 1.1 million code
# points, and a walk of the ranges per code point cost about 2 s of CPU in every process that asked.
DEFAULT_IGNORABLE_POINTS = frozenset(point for low, high in DEFAULT_IGNORABLE for point in range(low, high + 1))


def default_ignorable(char: str) -> bool:
    return ord(char) in DEFAULT_IGNORABLE_POINTS


def refused(char: str) -> bool:
    category = unicodedata.category(char)
    if char in (ZWNJ, ZWJ) or category == "Mn":
        return False
    return category in ("Cc", "Zl", "Zp", "Cf") or default_ignorable(char)


def visible(char: str) -> bool:
    return not (char.isspace() or refused(char) or default_ignorable(char) or char == BRAILLE_BLANK)


@cache  # a walk over all 1.1 million code points: once, not once per example
def refused_non_space() -> list[str]:
    """Every refused character that is not whitespace (which the server strips from the ends)."""
    return [char for char in map(chr, range(0x110000)) if refused(char) and not char.isspace()]


def oracle(name: str) -> bool:
    kept = name.strip()
    return 0 < len(kept) <= NAME_MAX and not any(map(refused, kept)) and any(map(visible, kept))


def name_problem(name: str) -> str | None:
    """The server's complaint about `name` (None: accepted), as POST /users gives it."""
    try:
        parse_new_user({"name": name, "email": "ada@example.com"})
    except ValidationError as exc:
        messages = [detail["message"] for detail in exc.details if detail["field"] == "name"]
        assert len(messages) == 1 and len(exc.details) == 1, exc.details  # names the field, only it
        return str(messages[0])
    return None


# Characters of every kind, the rare kinds that matter here as likely as the common ones.
SPECIAL = st.sampled_from(
    [
        *(ZWNJ, ZWJ, BRAILLE_BLANK, " ", "\u00a0", "\u3000", "\t", "\n", "\u0301", "\ufe0f", "\U000e0100", "\u034f"),
        *BIDI_CONTROLS,
        *("\u200b", "\u200e", "\u200f", "\u061c", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u3164", "\uffa0"),
        *("\U000e0001", "\U000e0041", "\U000e007f", "\U0001d173", "\U0001bca0", "\ufff9", "\u2065", "\x85", "\u2028"),
    ]
)
CHARS = st.one_of(st.characters(), SPECIAL, st.sampled_from("Ada Lovelace Zo\u00eb \u674e \u0634"))
NAMES = st.text(CHARS, max_size=12)


@settings(deadline=None, max_examples=400)
@given(NAMES)
@example("\u200b")
@example("\u2060\ufeff")
@example(f"{ZWJ}{ZWNJ}\ufe0f")
@example("\u3164")
@example(BRAILLE_BLANK)
@example("Ada\u202eecalevoL")
def test_a_name_is_accepted_exactly_when_unicode_says_it_should_be(name: str) -> None:
    assert (name_problem(name) is None) == oracle(name)


@settings(deadline=None)
@given(st.text(st.sampled_from("Ada Lovelace\u674e\u0634"), min_size=1, max_size=8).filter(str.strip), st.data())
def test_a_format_or_direction_character_anywhere_is_refused_and_named(name: str, data: Any) -> None:
    char = data.draw(st.sampled_from(refused_non_space()))
    at = data.draw(st.integers(0, len(name)))
    problem = name_problem(name[:at] + char + name[at:])
    assert problem is not None
    if unicodedata.category(char) != "Cc":
        assert problem.endswith(f"(U+{ord(char):04X})")


@settings(deadline=None)
@given(st.text(st.sampled_from([" ", "\u00a0", "\u3000", ZWNJ, ZWJ, "\ufe0f", "\U000e0100", "\u034f", BRAILLE_BLANK])))
def test_a_name_of_nothing_visible_is_refused(name: str) -> None:
    assert name_problem(name) in {"must not be empty", "must contain a visible character"}


@pytest.mark.parametrize("route", PARSERS)
@pytest.mark.parametrize(
    "name",
    ["\u200b", "\u2060", "\ufeff", "\u200b\u2060\ufeff", " \u200b ", *(f"Ada{c}Lovelace" for c in BIDI_CONTROLS)],
)
def test_the_issues_examples_are_400s_that_name_the_field_on_every_route(route: str, name: str) -> None:
    with pytest.raises(ValidationError) as refused_with:
        PARSERS[route](name)
    assert [detail["field"] for detail in refused_with.value.details] == ["name"]


@pytest.mark.parametrize(
    "name",
    [
        "\u0639\u0644\u06cc\u200c\u0631\u0636\u0627",  # Persian: ZWNJ keeps the two parts of Alireza unjoined
        "\u0d28\u0d3f\u0d24\u0d4d\u200d\u0d2f",  # Malayalam: ZWJ asks for the half form
        "Ada \U0001f469\u200d\U0001f4bb",  # an emoji ZWJ sequence (woman technologist)
        "\u845b\U000e0100\u98fe",  # a Japanese place-name kanji with its variation selector
        "Zoe\u0308",  # a combining diaeresis
        "\u2764\ufe0f Ada",  # an emoji with its presentation selector
        "\U0001f1f3\U0001f1f4",  # a flag made of regional indicators
        "\u05d3\u05e0\u05d4 Cohen",  # Hebrew and Latin, no direction controls needed
    ],
)
def test_real_names_that_need_joiners_or_marks_are_accepted(name: str) -> None:
    assert name_problem(name) is None
    assert parse_new_user({"name": name, "email": "ada@example.com"}).name == name


def test_every_format_character_python_knows_but_the_joiners_is_in_the_published_class() -> None:
    """FORMAT_CHARS is written out (the OpenAPI document states it): this test notices a Python
    whose Unicode has format characters it lacks."""
    format_re = re.compile(f"[{models.FORMAT_CHARS}]")
    missing = [
        f"U+{code:04X}"
        for code in range(0x110000)
        if unicodedata.category(chr(code)) == "Cf" and chr(code) not in (ZWNJ, ZWJ) and not format_re.match(chr(code))
    ]
    assert missing == []


@settings(deadline=None, max_examples=400)
@given(NAMES.filter(lambda name: name == name.strip()))
def test_the_documented_name_pattern_accepts_what_the_server_accepts(name: str) -> None:
    schema = document()["components"]["schemas"]["NewUser"]["properties"]["name"]
    documented = re.search(schema["pattern"], name) is not None and len(name) <= schema["maxLength"]
    assert documented == (name_problem(name) is None)
