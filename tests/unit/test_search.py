"""GET /users's query: its parameters read, refused with the name of each bad one, and the keys that
make names and emails searchable regardless of case (chalicelib/domain/search.py)."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import User
from chalicelib.domain.search import (
    NAME_KEY_MAX_BYTES,
    UserQuery,
    email_prefix_key,
    matched_key,
    name_key,
    parse_user_query,
    sort_key,
)
from chalicelib.web.openapi import document


def problems(params: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ValidationError) as exc:
        parse_user_query(params)
    return {detail["field"]: detail["message"] for detail in exc.value.details}


def user(name: str = "Ada", email: str = "ada@example.com", user_id: str = "u1") -> User:
    return User(user_id, name, email, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z", 1)


# --- parsing ---------------------------------------------------------------------------------------


def test_no_parameter_is_everyone_newest_first() -> None:
    assert parse_user_query({}) == UserQuery(sort="-createdAt")
    assert parse_user_query({"limit": "5", "cursor": "a.b"}) == UserQuery()


def test_each_filter_is_read_and_normalised() -> None:
    assert parse_user_query({"role": "admin", "enabled": "false", "sort": "name"}) == UserQuery(
        role="admin", enabled=False, sort="name"
    )
    assert parse_user_query({"q": "  e\u0301mi  "}).q == "émi"  # NFC, trimmed
    assert parse_user_query({"email": " \u212aate@Example.com "}).email == "Kate@Example.com"  # as on write


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "updatedAt"}, "sort"),
        ({"sort": "Name"}, "sort"),
        ({"role": "Admin"}, "role"),
        ({"enabled": "1"}, "enabled"),
        ({"enabled": ""}, "enabled"),
        ({"q": "a"}, "q"),
        ({"q": " a "}, "q"),
        ({"q": "e\u0301"}, "q"),  # one character once composed
        ({"q": "a\u0000b"}, "q"),
        ({"q": "a\u2028b"}, "q"),
        ({"q": "x" * 255}, "q"),
        ({"email": "a@b"}, "email"),
        ({"email": "\u017fam@example.com"}, "email"),  # the long s: not folded to s, refused
        ({"page": "2"}, "page"),
        ({"q": "ab", "email": "a@example.com"}, "q"),
        ({"q": "ab", "sort": "-createdAt"}, "sort"),
        ({"email": "a@example.com", "sort": "name"}, "sort"),
    ],
)
def test_a_bad_parameter_is_refused_by_name(params: dict[str, str], field: str) -> None:
    assert field in problems(params)


def test_every_problem_is_reported_at_once() -> None:
    assert set(problems({"sort": "x", "role": "y", "enabled": "z", "q": "a", "email": "b", "x": "1"})) == {
        "sort",
        "role",
        "enabled",
        "q",
        "email",
        "x",
    }


def test_the_fingerprint_tells_queries_apart_and_ignores_case_and_spelling() -> None:
    queries = [
        UserQuery(),
        UserQuery(sort="createdAt"),
        UserQuery(sort="name"),
        UserQuery(role="admin"),
        UserQuery(role="member"),
        UserQuery(enabled=True),
        UserQuery(enabled=False),
        UserQuery(q="ab"),
        UserQuery(q="abc"),
        UserQuery(email="a@example.com"),
    ]
    assert len({query.fingerprint() for query in queries}) == len(queries)
    assert UserQuery(q="STRASSE").fingerprint() == UserQuery(q="straße").fingerprint()
    assert UserQuery(email="A@Example.com").fingerprint() == UserQuery(email="a@example.com").fingerprint()


# --- keys ------------------------------------------------------------------------------------------


def test_names_fold_case_fully_and_keep_accents() -> None:
    assert name_key("Straße") == name_key("STRASSE") == "strasse"
    assert name_key("José") == name_key(unicodedata.normalize("NFD", "JOSÉ")) == "josé"
    assert name_key("Jose") != name_key("José")
    assert name_key("\u212a") == "k"  # the Kelvin sign is K


def test_emails_fold_ascii_only() -> None:
    assert email_prefix_key("ADA.L") == "ada.l"
    assert email_prefix_key("\u017fa") is None  # no email can start with the long s


def test_a_user_matching_by_name_and_email_is_found_once_under_the_smaller_key() -> None:
    ada = user("Ada Lovelace", "ada@example.com")
    assert matched_key("ada", ada) == "ada lovelace\x1fu1"  # " " sorts before "@"
    assert matched_key("ada@", ada) == "ada@example.com"
    assert matched_key("love", ada) is None  # a prefix, not a substring


def test_a_name_sorts_before_its_continuations_and_ties_break_on_the_id() -> None:
    keys = [
        sort_key(UserQuery(sort="name"), user(name, user_id=uid))
        for name, uid in (
            ("Ada Lovelace", "u1"),
            ("Ada", "u3"),
            ("ada", "u2"),
        )
    ]
    assert sorted(keys) == [keys[2], keys[1], keys[0]]


@given(st.text(min_size=1, max_size=100))
def test_a_name_key_always_fits_a_dynamodb_sort_key(name: str) -> None:
    key = sort_key(UserQuery(sort="name"), user(name, user_id="f" * 64))
    assert len(key.encode()) <= 1024
    assert len(name_key(name).encode()) <= NAME_KEY_MAX_BYTES


def test_the_longest_folding_names_are_cut_at_a_character() -> None:
    exotic = "\U0001d160" * 100  # each folds to 3 characters, 12 bytes
    assert len(name_key(exotic).encode()) <= NAME_KEY_MAX_BYTES
    assert name_key(exotic).startswith(name_key("\U0001d160" * 10))


# --- the document says what the parser does -------------------------------------------------------


def _schema(name: str) -> dict[str, object]:
    parameters = document()["paths"]["/users"]["get"]["parameters"]
    return dict(next(p for p in parameters if p["name"] == name)["schema"])


@pytest.mark.parametrize("q", ["ab", " ab ", "José", "a b", "ada@ex", "a", " a ", "", "ab\u0007", "\tab"])
def test_the_documented_q_accepts_what_the_api_accepts(q: str) -> None:
    schema = _schema("q")
    documented = bool(re.fullmatch(str(schema["pattern"]), q)) and len(q) >= 2
    try:
        parse_user_query({"q": q})
        accepted = True
    except ValidationError:
        accepted = False
    assert documented == accepted, q


def test_the_documented_enums_are_the_parsers() -> None:
    assert _schema("sort")["enum"] == ["createdAt", "-createdAt", "name"]
    assert _schema("sort")["default"] == "-createdAt"
    assert _schema("role")["enum"] == ["admin", "member"]
    assert _schema("enabled")["enum"] == ["true", "false"]
