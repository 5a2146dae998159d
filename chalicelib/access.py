"""Who is calling, and what they may do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.config import ADMIN_GROUP
from chalicelib.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Identity:
    sub: str
    email: str | None
    email_verified: bool
    groups: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups


def _groups(raw: Any) -> frozenset[str]:
    # Verified tokens carry a JSON list; API Gateway's REST authorizer flattens it to a
    # string such as "admins,staff" or "[admins staff]".
    if isinstance(raw, list):
        return frozenset(str(group) for group in raw)
    if isinstance(raw, str):
        return frozenset(part for part in raw.strip("[]").replace(",", " ").split() if part)
    return frozenset()


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    """Build the caller's identity from verified ID-token claims."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized()
    email = claims.get("email")
    verified = claims.get("email_verified")
    return Identity(
        sub=sub,
        email=email if isinstance(email, str) and email else None,
        email_verified=verified is True or verified == "true",
        groups=_groups(claims.get("cognito:groups")),
    )


def require_admin(identity: Identity) -> None:
    if not identity.is_admin:
        raise Forbidden("Admin rights required")


def require_owner_or_admin(identity: Identity, user_id: str) -> None:
    # Decided from the token alone, before any read, so a member learns nothing about
    # whether another user exists.
    if not identity.is_admin and identity.sub != user_id:
        raise Forbidden("You may only access your own profile")
