"""Finding users: what `GET /users` may ask (a query), how it is read from its parameters, and the
keys that make names and emails searchable without regard to case.

Case-folding. An email's key is the lower-cased address (emails are ASCII, chalicelib/domain/models.py),
exactly the key its reservation has. A name's key is its Unicode full case-folding (`str.casefold`)
between two NFC normalisations: "Straße", "STRASSE" and "strasse" share the key "strasse", and
"José" typed in NFC or NFD is the same name. Folding is not accent removal: "jose" does not find
"José" (which letters are "the same" depends on the language). Names sort by their key in code
point order (UTF-8 byte order, which is DynamoDB's), not by a locale's collation: "Zoë" sorts
before "Émile", whose folded first letter is above every ASCII letter.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import CONTROL_CHARS, EMAIL_MAX, ROLES, User, email_key, parse_email

# Sort orders: by creation time (oldest or newest first) or by name key. Newest first by default.
SORT_CREATED, SORT_NEWEST, SORT_NAME = "createdAt", "-createdAt", "name"
SORTS = (SORT_CREATED, SORT_NEWEST, SORT_NAME)
DEFAULT_SORT = SORT_NEWEST
# q: a prefix of the name or of the email, after folding. One character would match a large part
# of any directory (and its pages would cost as much as an unfiltered listing's): at least two.
Q_MIN, Q_MAX = 2, EMAIL_MAX
# The parameters GET /users takes; any other is refused, so a typo never silently lists everyone.
PARAMETERS = ("limit", "cursor", "email", "q", "role", "enabled", "sort")
BOOLEANS = {"true": True, "false": False}
# A sort key of a DynamoDB index holds at most 1,024 bytes: a name key is cut to this many bytes of
# UTF-8 (at a character), leaving room for the separator and the user id. Folding can multiply a
# name's size (one character may fold to 12 bytes), so only exotic 100-character names are cut,
# and such a name is found by the prefixes of its first 900 bytes.
NAME_KEY_MAX_BYTES = 900
_CONTROL_RE = re.compile(f"[{CONTROL_CHARS}]")


def _cut(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode(errors="ignore")


def name_key(name: str) -> str:
    """The case-insensitive key of a name, or of a prefix of one (module docstring)."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
    return _cut(folded, NAME_KEY_MAX_BYTES)


def email_prefix_key(q: str) -> str | None:
    """The email key a search text is a prefix of, or None when no email can start with it (emails
    are ASCII, and no Unicode folding is applied to them: the long s, U+017F, finds no "s")."""
    text = unicodedata.normalize("NFC", q)
    return text.lower() if text.isascii() else None


@dataclass(frozen=True)
class UserQuery:
    """What a page of users is chosen and ordered by. None: no condition on that field."""

    email: str | None = None  # exact, as given (normalised); see email_key
    q: str | None = None  # a prefix of the name or the email (normalised, stripped)
    role: str | None = None
    enabled: bool | None = None
    sort: str = DEFAULT_SORT

    def fingerprint(self) -> str:
        """One string per distinct query: a cursor is bound to it (chalicelib/domain/cursor.py)."""
        parts = (
            email_key(self.email) if self.email is not None else "",
            name_key(self.q) if self.q is not None else "",
            self.role or "",
            "" if self.enabled is None else str(self.enabled).lower(),
            self.sort,
        )
        # Unit separators: no part can contain one (controls are refused in every part).
        return "\x1f".join(("users", *parts))

    def states(self) -> list[tuple[str, bool]]:
        """The (role, enabled) states a matching user may be in."""
        roles = [self.role] if self.role is not None else list(ROLES)
        flags = [self.enabled] if self.enabled is not None else [True, False]
        return [(role, flag) for role in roles for flag in flags]

    def matches(self, user: User) -> bool:
        """Whether `user` is one this query finds (the email lookup filters by it; the in-memory
        repository searches by it)."""
        if self.role is not None and user.role != self.role:
            return False
        if self.enabled is not None and user.enabled != self.enabled:
            return False
        if self.email is not None and email_key(user.email) != email_key(self.email):
            return False
        if self.q is not None:
            return matched_key(self.q, user) is not None
        return True


def user_name_key(user: User) -> str:
    """The name sort key of a user: the name key, a separator below any character a name may hold
    (names refuse controls), and the id, so that keys are unique and a name sorts before its
    longer continuations ("Ada" before "Ada Lovelace")."""
    return name_sort_key(user.name, user.user_id)


def name_sort_key(name: str, user_id: str) -> str:
    return f"{name_key(name)}\x1f{user_id}"


def user_created_key(user: User) -> str:
    return f"{user.created_at}#{user.user_id}"


def matched_key(q: str, user: User) -> str | None:
    """The key under which a `q` search finds `user`: its name key or its email key, whichever
    starts with the folded `q` (the smaller when both do), or None when neither does. Results of
    a `q` search come in the order of these keys, each user once."""
    keys = []
    name = user_name_key(user)
    if name.startswith(name_key(q)):
        keys.append(name)
    prefix = email_prefix_key(q)
    if prefix is not None and email_key(user.email).startswith(prefix):
        keys.append(email_key(user.email))
    return min(keys) if keys else None


def sort_key(query: UserQuery, user: User) -> str:
    """The key a page of `query` is ordered by (descending for -createdAt), as the indexes hold it."""
    if query.q is not None:
        key = matched_key(query.q, user)
        assert key is not None, "only users the query matches have a place in its order"
        return key
    if query.sort == SORT_NAME:
        return user_name_key(user)
    return user_created_key(user)


def parse_user_query(params: Mapping[str, str]) -> UserQuery:
    """The query of `GET /users` from its parameters; ValidationError naming every bad one."""
    problems = [{"field": name, "message": "unknown parameter"} for name in params if name not in PARAMETERS]

    def fail(field: str, message: str) -> None:
        problems.append({"field": field, "message": message})

    email = q = role = None
    enabled: bool | None = None
    if "email" in params:
        try:
            email = parse_email(params["email"])
        except ValidationError as exc:
            problems.extend(exc.details)
    if "q" in params:
        text = unicodedata.normalize("NFC", params["q"]).strip()
        if _CONTROL_RE.search(text):
            fail("q", "must not contain control characters")
        elif not Q_MIN <= len(text) <= Q_MAX:
            fail("q", f"must be {Q_MIN} to {Q_MAX} characters")
        else:
            q = text
    if "role" in params:
        if params["role"] in ROLES:
            role = params["role"]
        else:
            fail("role", f"must be one of {', '.join(ROLES)}")
    if "enabled" in params:
        if params["enabled"] in BOOLEANS:
            enabled = BOOLEANS[params["enabled"]]
        else:
            fail("enabled", "must be true or false")
    sort = params.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        fail("sort", f"must be one of {', '.join(SORTS)}")
    if "q" in params and "email" in params:
        fail("q", "cannot be combined with email (email finds one user exactly)")
    if "sort" in params and ("q" in params or "email" in params):
        # A q search comes in the order of the name or email each user matched by; an email lookup
        # finds one user. Neither could honour another order without reading every match.
        fail("sort", "cannot be combined with q or email (their results come in the order of the matching key)")
    if problems:
        raise ValidationError("Invalid query parameters", details=problems)
    return UserQuery(email=email, q=q, role=role, enabled=enabled, sort=sort)
