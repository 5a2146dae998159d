"""Conditional requests: a user's ETag, and what If-Match and If-None-Match ask for (RFC 9110)."""

from __future__ import annotations

import re

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import Preconditions, Revision, User

# A header naming more tags than this is refused rather than turned into a huge condition.
MAX_TAGS = 16
MAX_TAG_CHARS = 128
_TAG_RE = re.compile(rf'[ \t]*(W/)?"([\x21\x23-\x7e]{{0,{MAX_TAG_CHARS}}})"[ \t]*(?:,|$)')
# RFC 9110 allows only spaces and tabs around a field value.
_OWS = " \t"
_VERSION_RE = re.compile(r"[1-9][0-9]{0,17}")


def etag(user: User) -> str:
    """A strong ETag; opaque to clients, it names exactly one revision of the record."""
    return f'"{user.version}-{user.created_at}"'


def _tags(header: str) -> list[tuple[bool, str]] | None:
    """(weak, opaque-tag) pairs of an entity-tag list, or None when the header is malformed."""
    tags: list[tuple[bool, str]] = []
    position = 0
    while position < len(header):
        match = _TAG_RE.match(header, position)
        if match is None or match.end() == position:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    return tags or None


def _revision(opaque: str) -> Revision | None:
    version, _, created_at = opaque.partition("-")
    if not _VERSION_RE.fullmatch(version) or not created_at:
        return None
    return Revision(int(version), created_at)


def _listed(name: str, header: str) -> list[tuple[bool, str]]:
    tags = _tags(header)
    if tags is None or len(tags) > MAX_TAGS:
        raise ValidationError(
            f"Invalid {name} header",
            details=[{"field": name, "message": f'must be * or up to {MAX_TAGS} ETags such as "3-..."'}],
        )
    return tags


def _revisions(tags: list[tuple[bool, str]], weak_too: bool) -> tuple[Revision, ...]:
    revisions = (_revision(opaque) for weak, opaque in tags if weak_too or not weak)
    return tuple(revision for revision in revisions if revision is not None)


def parse_preconditions(if_match: str | None, if_none_match: str | None) -> Preconditions:
    """What a write's If-Match and If-None-Match ask for; 400 when either is malformed.

    If-Match compares strongly (a weak tag never matches, so only weak or foreign tags leave
    nothing that can match: the write fails with 412 without being tried); If-None-Match
    compares weakly, as RFC 9110 requires.
    """
    match: tuple[Revision, ...] | None = None
    match_any = none_match_any = False
    none_match: tuple[Revision, ...] = ()
    if if_match is not None:
        if if_match.strip(_OWS) == "*":
            match_any = True
        else:
            match = _revisions(_listed("If-Match", if_match), weak_too=False)
    if if_none_match is not None:
        if if_none_match.strip(_OWS) == "*":
            none_match_any = True
        else:
            none_match = _revisions(_listed("If-None-Match", if_none_match), weak_too=True)
    return Preconditions(match, match_any, none_match, none_match_any)


def none_match_hits(header: str | None, user: User) -> bool:
    """Whether If-None-Match names the current revision (so a GET answers 304).

    Weak comparison, as RFC 9110 requires for If-None-Match; a malformed header is ignored.
    """
    if header is None:
        return False
    if header.strip(_OWS) == "*":
        return True
    current = etag(user).strip('"')
    tags = _tags(header)
    return tags is not None and any(opaque == current for _, opaque in tags)
