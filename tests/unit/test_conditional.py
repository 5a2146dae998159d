"""ETags and the If-Match / If-None-Match headers."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import Preconditions, Revision
from chalicelib.web.conditional import MAX_TAGS, etag, none_match_hits, parse_preconditions
from tests.unit.fakes import make_user


def parse_if_match(header: str | None) -> tuple[Revision, ...] | None:
    return parse_preconditions(header, None).if_match


USER = make_user(version=3, now="2024-01-01T00:00:00.000Z")
TAG = '"3-2024-01-01T00:00:00.000Z"'


def test_etag_is_a_strong_tag_of_version_and_creation_time() -> None:
    assert etag(USER) == TAG
    assert parse_if_match(etag(USER)) == (USER.revision,)


def test_a_user_created_again_under_the_same_id_gets_another_etag() -> None:
    again = make_user(version=3, now="2025-06-01T00:00:00.000Z")
    assert etag(again) != etag(USER)


def test_no_header_is_no_precondition() -> None:
    assert parse_preconditions(None, None) == Preconditions()
    assert not Preconditions().given


@pytest.mark.parametrize("header", ["*", "  *  ", "\t*"])
def test_star_asks_only_that_the_record_exists(header: str) -> None:
    conditions = parse_preconditions(header, None)
    assert conditions == Preconditions(if_match_any=True)
    assert conditions.given and conditions.allow(USER.revision)


@pytest.mark.parametrize("header", ["*", " * "])
def test_if_none_match_star_refuses_every_existing_revision(header: str) -> None:
    conditions = parse_preconditions(None, header)
    assert conditions == Preconditions(if_none_match_any=True)
    assert not conditions.allow(USER.revision)


def test_if_none_match_on_a_write_compares_weakly_and_refuses_only_the_tags_named() -> None:
    conditions = parse_preconditions(None, f'W/{TAG}, "9-x"')
    assert conditions.if_none_match == (USER.revision, Revision(9, "x"))
    assert not conditions.allow(USER.revision)
    assert conditions.allow(Revision(4, USER.created_at))


def test_both_headers_must_hold() -> None:
    conditions = parse_preconditions(TAG, TAG)
    assert not conditions.allow(USER.revision)
    assert parse_preconditions(TAG, '"9-x"').allow(USER.revision)


@pytest.mark.parametrize("header", ["", "3", '"3', '"3",,"4"', "W/3"])
def test_malformed_if_none_match_on_a_write_is_400(header: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_preconditions(None, header)
    assert caught.value.details[0]["field"] == "If-None-Match"


def test_a_list_of_tags_gives_every_strong_revision_and_drops_weak_and_foreign_ones() -> None:
    header = f'W/"4-2024-01-01T00:00:00.000Z", "abc", {TAG} ,"7-x"'
    assert parse_if_match(header) == (USER.revision, Revision(7, "x"))


@pytest.mark.parametrize("header", ['W/"3-2024"', '"nope"', '"0-2024"', '"-1-x"', '""'])
def test_tags_that_can_never_match_give_an_empty_precondition(header: str) -> None:
    assert parse_if_match(header) == ()


@pytest.mark.parametrize("header", ["", "3", '"3', '"3"x', '"3",,"4"', '"a b"', "W/3", '"é"'])
def test_malformed_if_match_is_400(header: str) -> None:
    with pytest.raises(ValidationError):
        parse_if_match(header)


def test_too_many_tags_are_refused() -> None:
    with pytest.raises(ValidationError):
        parse_if_match(",".join(f'"{n}-x"' for n in range(1, MAX_TAGS + 2)))
    assert len(parse_if_match(",".join(f'"{n}-x"' for n in range(1, MAX_TAGS + 1))) or ()) == MAX_TAGS


@pytest.mark.parametrize(
    ("header", "hit"),
    [
        (None, False),
        ("*", True),
        (TAG, True),
        ("W/" + TAG, True),  # If-None-Match compares weakly
        (f'"1-x", {TAG}', True),
        ('"2-2024-01-01T00:00:00.000Z"', False),
        ("garbage", False),  # ignored, so the client gets the full response
    ],
)
def test_if_none_match(header: str | None, hit: bool) -> None:
    assert none_match_hits(header, USER) is hit
