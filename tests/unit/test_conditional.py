"""ETags and the If-Match / If-None-Match headers."""

from __future__ import annotations

import pytest

from chalicelib.conditional import MAX_TAGS, etag, none_match_hits, parse_if_match
from chalicelib.errors import ValidationError
from chalicelib.models import Revision
from tests.unit.fakes import make_user

USER = make_user(version=3, now="2024-01-01T00:00:00.000Z")
TAG = '"3-2024-01-01T00:00:00.000Z"'


def test_etag_is_a_strong_tag_of_version_and_creation_time() -> None:
    assert etag(USER) == TAG
    assert parse_if_match(etag(USER)) == (USER.revision,)


def test_a_user_created_again_under_the_same_id_gets_another_etag() -> None:
    again = make_user(version=3, now="2025-06-01T00:00:00.000Z")
    assert etag(again) != etag(USER)


@pytest.mark.parametrize("header", [None, "*", "  *  "])
def test_no_header_or_star_is_no_precondition(header: str | None) -> None:
    assert parse_if_match(header) is None


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
