"""Who is calling, and what they may do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import Forbidden, Unauthorized
from chalicelib.domain.models import UserChanges

# The Cognito group whose members are admins; a user's record mirrors it in its role.
ADMIN_GROUP = "admins"


@dataclass(frozen=True)
class Identity:
    """The verified caller: who (`sub`), the groups their token lists and when it was issued. Never
    the token's email: a token keeps the address it was issued with for an hour, so the API takes
    a user's email from their record (and a new record's from the sign-in), never from a token."""

    sub: str
    groups: frozenset[str]
    issued_at: int = 0  # the token's `iat`, epoch seconds

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
    return Identity(
        sub=sub,
        groups=_groups(claims.get("cognito:groups")),
        issued_at=_issued_at(claims.get("iat")),
    )


def _issued_at(raw: Any) -> int:
    # A verified token carries a number; API Gateway's authorizer passes every claim as a string.
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        return int(raw)
    raise Unauthorized()  # every Cognito token has one: revocation is judged by it


def require_admin(identity: Identity) -> None:
    if not identity.is_admin:
        raise Forbidden("Admin rights required")


def require_may_change(identity: Identity, user_id: str, changes: UserChanges) -> None:
    """Admins change anything of anyone but their own role and enabled flag (so they never lock
    themselves or the last of them out). Others change their own name and phone only: their email
    is their sign-in name, which an admin changes (PUT /users/{id}), never a token's claim."""
    require_owner_or_admin(identity, user_id)
    if identity.is_admin:
        refuse_own_standing_change(identity.sub, user_id, changes)
        return
    refused = [name for name in ("email", "role", "enabled") if getattr(changes, name) is not None]
    if refused:
        raise Forbidden(f"Only admins may change {', '.join(refused)}")


def require_not_self(identity: Identity, user_id: str) -> None:
    refuse_self_delete(identity.sub, user_id)


def require_not_own_password_reset(identity: Identity, user_id: str) -> None:
    refuse_own_password_reset(identity.sub, user_id)


# The rules that keep an admin from locking themselves (or the last admin) out, stated once:
# the routes check them from the token before anything is read, the service again for every
# caller (operator tools included), with the same words.


def refuse_own_standing_change(actor: str, user_id: str, changes: UserChanges) -> None:
    """Nobody changes their own role or enabled flag."""
    if actor == user_id and changes.touches_standing:
        raise Forbidden("You cannot change your own role or disable yourself")


def refuse_self_delete(actor: str, user_id: str) -> None:
    """Nobody deletes themselves."""
    if actor == user_id:
        raise Forbidden("You cannot delete yourself")


def refuse_own_password_reset(actor: str, user_id: str) -> None:
    """An admin resets their own password through the sign-in page, not the admins' action (which
    would sign them out and leave them only a mailed code)."""
    if actor == user_id:
        raise Forbidden("You cannot reset your own password here; use the sign-in page's forgotten password")


def require_owner_or_admin(identity: Identity, user_id: str) -> None:
    # Decided from the token alone, before any read, so a member learns nothing about
    # whether another user exists.
    if not identity.is_admin and identity.sub != user_id:
        raise Forbidden("You may only access your own profile")
