"""The domain's values: a user record, a new user, a change, a revision and the preconditions on
it, a caller's standing, a write's stamp; the rules every stored value keeps (lengths, patterns,
visible text), the one format of times, and the public shape of a user (a response or a line of
an export file). Reading values from requests is the web layer's (chalicelib/web/inputs.py)."""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.errors import NoneMatchFailed, PreconditionFailed

NAME_MAX = 100
EMAIL_MAX = 254
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
USER_ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
# C0 and C1 controls and the Unicode line separators: none belongs in a name, and C1's
# \x9b can start a terminal escape sequence in whatever later prints the value.
CONTROL_CHARS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
# Invisible characters no name needs, refused anywhere in stored text: every format character
# (Unicode category Cf) but ZWNJ and ZWJ, and the other code points Unicode makes invisible
# (Default_Ignorable) that are not combining marks: the Hangul fillers and the ranges Unicode
# keeps for future format characters, so a Python with older Unicode data refuses them too.
# Among them the bidi controls (U+202A-U+202E, U+2066-U+2069, and the marks U+200E, U+200F,
# U+061C), which reorder what a name is shown beside; U+200B, U+2060 and U+FEFF, which make a
# name look empty or like another; the tag characters (U+E0001, U+E0020-U+E007F), which carry
# hidden text. ZWNJ (U+200C) and ZWJ (U+200D) stay: Persian and Indic names and emoji sequences
# need them. Beyond the BMP the class holds the characters themselves: no escape for them reads
# the same in Python and ECMAScript patterns.
FORMAT_CHARS = (
    r"\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u180e\u200b\u200e\u200f"
    r"\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff0-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e00ff"
    "\U000e01f0-\U000e0fff"
)
# Allowed, but nothing to see on their own: the joiners, the default-ignorable combining marks
# (variation selectors, the combining grapheme joiner, ...) and the blank braille cell. Stored
# text must hold some character that is neither one of these nor whitespace.
INVISIBLE_CHARS = r"\u034f\u17b4\u17b5\u180b-\u180d\u180f\u200c\u200d\u2800\ufe00-\ufe0f" "\U000e0100-\U000e01ef"
EMAIL_LOCAL_MAX = 64
# An address is ASCII: a dot-atom local part (RFC 5322 `atext`, so none of the specials
# `< > ( ) [ ] \\ , ; : "`, spaces or `@`; no quoted local parts) and a host name of letters,
# digits and hyphens (an internationalised domain in its `xn--` form). Non-ASCII local parts are
# refused rather than folded: Amazon SES, which sends Cognito's mail, supports no SMTPUTF8, so
# they could never get their invitation, and no case-folding of Unicode is safe for uniqueness
# (U+017F, the long s, folds to "s": its address would reserve the one spelled with "s").
# Input is NFC-normalised first, so the Kelvin sign (U+212A) is the letter K.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
EMAIL_PATTERN = (
    rf"^{_ATEXT}+(?:\.{_ATEXT}+)*@[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_CONTROL_RE = re.compile(f"[{CONTROL_CHARS}]")
_FORMAT_RE = re.compile(f"[{FORMAT_CHARS}]")
_VISIBLE_RE = re.compile(f"[^{CONTROL_CHARS}{FORMAT_CHARS}{INVISIBLE_CHARS}\\s]")
# Patterns are applied with fullmatch: `$` alone would also accept a trailing newline.
# Ids are UUIDs (ours or Cognito `sub`s); rejecting anything else early also keeps a path
# parameter from ever addressing an email-reservation item.
_USER_ID_RE = re.compile(USER_ID_PATTERN)

# A sentinel meaning "remove this optional field" in an update (the client sent null).
REMOVE = object()


# A user's role: "admin" mirrors membership of the Cognito group `admins`.
ADMIN, MEMBER = "admin", "member"
ROLES = (ADMIN, MEMBER)
# What a user's sign-in holds besides its password: the record's email, its role (as membership of
# the admins group) and whether it is enabled. The sign-in follows the record in each.
EMAIL, ROLE, ENABLED = "email", "role", "enabled"
SIGN_IN_FIELDS = (EMAIL, ROLE, ENABLED)
# What an admin may do to a user's sign-in (POST /users/{id}/...): each is recorded on the record and
# is one change event of this type (chalicelib/domain/change_events.py).
INVITATION_RESENT, PASSWORD_RESET, SIGNED_OUT = "InvitationResent", "PasswordReset", "SignedOut"
SIGN_IN_ACTIONS = (INVITATION_RESENT, PASSWORD_RESET, SIGNED_OUT)


@dataclass(frozen=True)
class NewUser:
    name: str
    email: str
    phone: str | None = None
    role: str = MEMBER


@dataclass(frozen=True)
class UserChanges:
    """A partial update; None means "leave as is", REMOVE (phone only) means "delete"."""

    name: str | None = None
    email: str | None = None
    phone: object = None
    role: str | None = None
    enabled: bool | None = None

    def is_empty(self) -> bool:
        return self.name is None and self.email is None and self.phone is None and not self.touches_standing

    @property
    def touches_standing(self) -> bool:
        """Whether it changes what the user may do (role, enabled): such a change revokes their tokens."""
        return self.role is not None or self.enabled is not None

    @property
    def sign_in_fields(self) -> tuple[str, ...]:
        """The fields named that the sign-in holds too (email, role, enabled), in that order."""
        return tuple(name for name in SIGN_IN_FIELDS if getattr(self, name) is not None)

    def against(self, current: User) -> UserChanges:
        """Only what differs from `current`: a field given the value it has is no change. An email
        in other letter case is one (the record and the sign-in keep the spelling given)."""
        phone: object = self.phone
        if (phone is REMOVE and current.phone is None) or phone == current.phone:
            phone = None
        return UserChanges(
            name=None if self.name == current.name else self.name,
            email=None if self.email == current.email else self.email,
            phone=phone,
            role=None if self.role == current.role else self.role,
            enabled=None if self.enabled == current.enabled else self.enabled,
        )


@dataclass(frozen=True)
class Revision:
    """One state of a user record: its version, and its creation time, which tells a user
    deleted and created again under the same id (a profile) from the earlier one."""

    version: int
    created_at: str


@dataclass(frozen=True)
class Preconditions:
    """What a write's If-Match / If-None-Match ask of the stored record (RFC 9110, 13.1).

    `if_match`: the revisions the write may replace (None: no header or `*`; an empty tuple:
    nothing can match). `if_none_match`: revisions it must not replace. `*` is kept apart: it
    asks whether the record exists at all.
    """

    if_match: tuple[Revision, ...] | None = None
    if_match_any: bool = False
    if_none_match: tuple[Revision, ...] = ()
    if_none_match_any: bool = False

    @property
    def given(self) -> bool:
        return self.if_match is not None or self.if_match_any or bool(self.if_none_match) or self.if_none_match_any

    def allow(self, revision: Revision) -> bool:
        """Whether a write may replace the record in this revision."""
        return self.refusal(revision) is None

    def refusal(self, revision: Revision) -> PreconditionFailed | None:
        """Why a write may not replace the record in this revision (None: it may)."""
        if self.if_match is not None and revision not in self.if_match:
            return PreconditionFailed()
        if self.if_none_match_any or revision in self.if_none_match:
            return NoneMatchFailed()
        return None


NO_PRECONDITIONS = Preconditions()


@dataclass(frozen=True)
class Standing:
    """What every authenticated request must know of its caller's record: whether their tokens
    may still be used, and whether the record lets them act as an admin."""

    exists: bool  # False: a sign-in without a record (it gets what its token says, no more)
    deleted: bool = False
    enabled: bool = True
    role: str | None = None
    # Epoch seconds: tokens issued at or before it were issued before a disable or a role change.
    tokens_valid_after: int = 0


NO_RECORD = Standing(exists=False)


def epoch_seconds(timestamp: str) -> int:
    """Epoch seconds of one of our ISO-8601 UTC timestamps ("...Z")."""
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


def epoch(timestamp: str) -> float:
    """Epoch time, to the millisecond, of one of our ISO-8601 UTC timestamps."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def timestamp(moment: datetime) -> str:
    """How every time is stored and shown: ISO-8601 UTC to the millisecond, "...Z". Text order is
    time order, so DynamoDB conditions and sort keys compare them as they are."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def later_than(at: str, previous: str) -> str:
    """`at`, or one millisecond after `previous` when `at` is not later (another writer's clock is
    ahead of ours): a record's `updatedAt` grows with its version, so its history is in the order
    its changes were applied."""
    if epoch(at) > epoch(previous):
        return at
    return timestamp(datetime.fromisoformat(previous.replace("Z", "+00:00")) + timedelta(milliseconds=1))


# How far apart the API's clock and Cognito's may be, at most (an assumption, docs/SECURITY.md):
# both run on AWS's time-synchronised hosts, which keep well inside it.
CLOCK_SKEW_S = 0.1


def tokens_valid_after(at: str) -> int:
    """The `tokensValidAfter` of a write at `at` that revokes a user's tokens: tokens are stamped
    (`iat`) in whole seconds of Cognito's clock, and every token issued before the write has an
    `iat` at or below this, whichever of the two clocks is ahead."""
    return math.floor(epoch(at) + CLOCK_SKEW_S)


def tokens_valid_from(at: str) -> float:
    """When (on the API's clock) a sign-in may change after such a write, so that every token issued
    with the change has an `iat` above `tokens_valid_after(at)`: at most 1 + 2 x CLOCK_SKEW_S later."""
    return tokens_valid_after(at) + 1 + CLOCK_SKEW_S


@dataclass(frozen=True)
class Write:
    """What every write stores besides its change: when, by whom (the caller's sub), and a token
    unique to the API request, so that a resent attempt recognises its own earlier success."""

    token: str
    actor: str
    at: str


def new_write_token() -> str:
    """A token unique to one API request's writes (128 random bits, 22 characters: it is stored
    twice on every user item, so it is kept short)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class User:
    """A stored user record."""

    user_id: str
    name: str
    email: str
    created_at: str
    updated_at: str
    version: int
    phone: str | None = None
    role: str = MEMBER
    enabled: bool = True
    # A change of email the user asked for and has not confirmed yet (PUT /users/me): the address,
    # reserved for them until `pending_until`, after which it is no longer pending (models.pending_email).
    pending_email: str | None = None
    pending_until: str | None = None

    @property
    def revision(self) -> Revision:
        return Revision(self.version, self.created_at)

    @property
    def is_active_admin(self) -> bool:
        """Counts towards the enabled admins, of whom one must always remain."""
        return self.role == ADMIN and self.enabled


def pending_email(user: User, now: str) -> str | None:
    """The address the user asked to change to, while its code may still confirm it (None after
    `pending_until`: an expired request is no request, whatever the item still holds)."""
    if user.pending_email is None or user.pending_until is None or user.pending_until <= now:
        return None
    return user.pending_email


def apply_changes(current: User, changes: UserChanges, now: str) -> User:
    """The record after `changes`, one version later. A new address (an admin's) ends any pending
    change the user asked for; the same address in other letter case does not."""
    moved = changes.email is not None and email_key(changes.email) != email_key(current.email)
    phone: str | None = current.phone
    if changes.phone is REMOVE:
        phone = None
    elif isinstance(changes.phone, str):
        phone = changes.phone
    return User(
        user_id=current.user_id,
        name=changes.name if changes.name is not None else current.name,
        email=changes.email if changes.email is not None else current.email,
        phone=phone,
        created_at=current.created_at,
        updated_at=now,
        version=current.version + 1,
        role=changes.role if changes.role is not None else current.role,
        enabled=changes.enabled if changes.enabled is not None else current.enabled,
        pending_email=None if moved else current.pending_email,
        pending_until=None if moved else current.pending_until,
    )


def email_key(email: str) -> str:
    """The case-insensitive identity of an email address."""
    return email.strip().lower()


def text_problem(value: str) -> str | None:
    """Why `value` (surrounding whitespace already stripped) cannot be stored as text, or None: a
    control character (CONTROL_CHARS) or an invisible format character (FORMAT_CHARS) anywhere,
    or nothing visible (only whitespace and INVISIBLE_CHARS)."""
    if _CONTROL_RE.search(value):
        return "must not contain control characters"
    found = _FORMAT_RE.search(value)
    if found:
        return f"must not contain invisible formatting or text-direction characters (U+{ord(found.group()):04X})"
    if not _VISIBLE_RE.search(value):
        return "must contain a visible character"
    return None


def is_valid_user_id(user_id: str) -> bool:
    return bool(_USER_ID_RE.fullmatch(user_id))


def public_user(user: User, now: str | None = None) -> dict[str, Any]:
    """What a client sees of a record (a response, a line of an export); `now` (default: this
    moment) decides whether a requested email change is still pending (shown as `pendingEmail`
    until `pendingEmailExpiresAt`)."""
    out: dict[str, Any] = {
        "userId": user.user_id,
        "name": user.name,
        "email": user.email,
    }
    pending = pending_email(user, now or timestamp(datetime.now(UTC)))
    if pending is not None:
        out["pendingEmail"] = pending
        out["pendingEmailExpiresAt"] = user.pending_until
    if user.phone is not None:
        out["phone"] = user.phone
    out["role"] = user.role
    out["enabled"] = user.enabled
    out["createdAt"] = user.created_at
    out["updatedAt"] = user.updated_at
    out["version"] = user.version
    return out
