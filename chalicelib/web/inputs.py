"""What a client sends, read into the domain's values, and what it gets back: request bodies
(create, update, profile, avatar), query parameters (GET /users, page limits) and the public shape
of a user. Every problem in a body or a query is collected, so a client learns them all at once;
the input shapes list exactly the fields a client may set, so `userId`, timestamps, versions,
groups or any other key are refused. A record leaves the API only as the domain's `public_user`
(chalicelib/domain/models.py), the shape of a response and of an export file alike.
The rules each value must keep (lengths, patterns, visible text) are the domain's
(chalicelib/domain/models.py); which fields a request may carry, and how, are this module's.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from chalicelib.domain import avatars
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import (
    CONTROL_CHARS,
    E164_PATTERN,
    EMAIL_LOCAL_MAX,
    EMAIL_MAX,
    EMAIL_PATTERN,
    MEMBER,
    NAME_MAX,
    REMOVE,
    ROLES,
    NewUser,
    UserChanges,
    text_problem,
)
from chalicelib.domain.search import DEFAULT_SORT, Q_MAX, Q_MIN, SORTS, UserQuery

_EMAIL_RE = re.compile(EMAIL_PATTERN)
_E164_RE = re.compile(E164_PATTERN)
_CONTROL_RE = re.compile(f"[{CONTROL_CHARS}]")
# Bounds are public: the OpenAPI document states these very values.
PAGE_DEFAULT = 50
PAGE_MAX = 100
# The parameters GET /users takes; any other is refused, so a typo never silently lists everyone.
PARAMETERS = ("limit", "cursor", "email", "q", "role", "enabled", "sort")
BOOLEANS = {"true": True, "false": False}


class _Fields:
    """Collects every problem in a body, so a client learns them all at once."""

    def __init__(self, body: dict[str, Any], allowed: tuple[str, ...]):
        self.body = body
        self.problems: list[dict[str, Any]] = [
            {"field": key, "message": "unknown field"} for key in body if key not in allowed
        ]

    def fail(self, field: str, message: str) -> None:
        self.problems.append({"field": field, "message": message})

    def text(self, field: str, max_len: int, required: bool) -> str | None:
        if field not in self.body:
            if required:
                self.fail(field, "is required")
            return None
        value = self.body[field]
        if not isinstance(value, str):
            self.fail(field, "must be a string")
            return None
        value = value.strip()
        if not value:
            self.fail(field, "must not be empty")
            return None
        if len(value) > max_len:
            self.fail(field, f"must be at most {max_len} characters")
            return None
        problem = text_problem(value)
        if problem:
            self.fail(field, problem)
            return None
        return value

    def name(self, required: bool) -> str | None:
        return self.text("name", NAME_MAX, required)

    def email(self, required: bool) -> str | None:
        value = self.text("email", EMAIL_MAX, required)
        if value is None:
            return None
        # One address has one spelling: NFC before validating, storing and reserving.
        value = unicodedata.normalize("NFC", value)
        if not value.isascii():
            self.fail("email", "must be ASCII (write an internationalised domain in its xn-- form)")
            return None
        if not _EMAIL_RE.fullmatch(value) or len(value.partition("@")[0]) > EMAIL_LOCAL_MAX:
            self.fail("email", "must be a valid email address")
            return None
        return value

    def phone(self, removable: bool) -> object:
        if removable and "phone" in self.body and self.body["phone"] is None:
            return REMOVE
        value = self.text("phone", 16, required=False)
        if value is not None and not _E164_RE.fullmatch(value):
            self.fail("phone", "must be in E.164 format, e.g. +14155550123")
            return None
        return value

    def role(self) -> str | None:
        if "role" not in self.body:
            return None
        value = self.body["role"]
        if value not in ROLES:
            self.fail("role", f"must be one of {', '.join(ROLES)}")
            return None
        return str(value)

    def flag(self, field: str) -> bool | None:
        if field not in self.body:
            return None
        value = self.body[field]
        if not isinstance(value, bool):
            self.fail(field, "must be true or false")
            return None
        return value

    def done(self) -> None:
        if self.problems:
            raise ValidationError("Invalid request body", details=self.problems)


def parse_new_user(body: dict[str, Any]) -> NewUser:
    fields = _Fields(body, ("name", "email", "phone", "role"))
    name, email, phone = fields.name(True), fields.email(True), fields.phone(removable=False)
    role = fields.role()
    fields.done()
    assert name is not None and email is not None
    return NewUser(name=name, email=email, phone=phone if isinstance(phone, str) else None, role=role or MEMBER)


def parse_user_changes(body: dict[str, Any]) -> UserChanges:
    """`PUT /users/{id}`: any field; which of them the caller may change is an access rule."""
    fields = _Fields(body, ("name", "email", "phone", "role", "enabled"))
    changes = UserChanges(
        name=fields.name(False),
        email=fields.email(False),
        phone=fields.phone(removable=True),
        role=fields.role(),
        enabled=fields.flag("enabled"),
    )
    fields.done()
    if changes.is_empty():
        raise ValidationError("Provide at least one of: name, email, phone, role, enabled")
    return changes


def parse_profile_changes(body: dict[str, Any]) -> UserChanges:
    """`PUT /users/me`: name and phone, or an email on its own (a change the user then confirms
    with the code mailed to the new address: never taken from a token)."""
    fields = _Fields(body, ("name", "phone", "email"))
    changes = UserChanges(name=fields.name(False), phone=fields.phone(removable=True), email=fields.email(False))
    fields.done()
    if changes.email is not None and (changes.name is not None or changes.phone is not None):
        raise ValidationError(
            "Change your email on its own: it takes effect only once you confirm it",
            details=[{"field": "email", "message": "must be sent without other fields"}],
        )
    if changes.is_empty():
        raise ValidationError("Provide at least one of: name, phone, email")
    return changes


# A code confirming a requested email change: six digits, as Cognito's own.
EMAIL_CODE_PATTERN = r"^[0-9]{6}$"
_EMAIL_CODE_RE = re.compile(EMAIL_CODE_PATTERN)


def parse_email_code(body: dict[str, Any]) -> str:
    """`POST /users/me/email-verification`: {"code": "123456"}."""
    fields = _Fields(body, ("code",))
    value = body.get("code")
    if "code" not in body:
        fields.fail("code", "is required")
    elif not isinstance(value, str) or not _EMAIL_CODE_RE.fullmatch(value):
        fields.fail("code", "must be the 6 digits mailed to the new address")
    fields.done()
    return str(value)


def parse_email(value: str) -> str:
    """An email given on its own (a search parameter), validated and normalised exactly as in a body."""
    fields = _Fields({"email": value}, ("email",))
    email = fields.email(True)
    fields.done()
    assert email is not None
    return email


def parse_avatar_content_type(body: dict[str, Any]) -> str:
    """`POST /users/{id}/avatar`: the image type the upload will have."""
    fields = _Fields(body, ("contentType",))
    value = body.get("contentType")
    if "contentType" not in body:
        fields.fail("contentType", "is required")
    elif not isinstance(value, str) or value not in avatars.CONTENT_TYPES:
        fields.fail("contentType", f"must be one of {', '.join(avatars.CONTENT_TYPES)}")
    fields.done()
    return str(value)


def parse_limit(raw: str | None, default: int = PAGE_DEFAULT, maximum: int = PAGE_MAX) -> int:
    if raw is None:
        return default
    # fullmatch on ASCII digits: str.isdigit() would accept other scripts' digits.
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= maximum:
        raise ValidationError(
            "Invalid limit", details=[{"field": "limit", "message": f"must be an integer from 1 to {maximum}"}]
        )
    return int(raw)


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
