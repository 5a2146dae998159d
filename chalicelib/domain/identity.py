"""What the user service needs from the identity provider (Cognito): the sign-in of each user.

A user is a sign-in plus its record, and `userId` is the sign-in's `sub`. The sign-in follows the
record (chalicelib/domain/service.py), so the record is the truth a retry completes from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from chalicelib.domain.access import ADMIN_GROUP as ADMIN_GROUP  # the group the record's role mirrors


class SignInExists(Exception):
    """A sign-in with this email exists already; carries its sub (and the sign-in, when found)."""

    def __init__(self, sub: str, sign_in: SignIn | None = None):
        super().__init__("sign-in exists")
        self.sub = sub
        self.sign_in = sign_in


class EmailTaken(Exception):
    """Another sign-in holds this email."""


class SignInRefused(Exception):
    """The pool refuses the action in the sign-in's state (a reset of a disabled or never-used one)."""


class SignInMissing(Exception):
    """The pool has no sign-in with this sub (a record made by an earlier version, or a console edit)."""


@dataclass(frozen=True)
class SignIn:
    sub: str
    email: str
    enabled: bool
    # Cognito's UserStatus: FORCE_CHANGE_PASSWORD until the invitation is used, then CONFIRMED.
    status: str
    name: str | None = None
    email_verified: bool = True
    # In the admins group: known only where asked for (IdentityProvider.get).
    admin: bool = False

    @property
    def never_used(self) -> bool:
        return self.status == "FORCE_CHANGE_PASSWORD"


class IdentityProvider(Protocol):
    def create(self, email: str, password: str | None = None) -> str:
        """A new sign-in for `email` (verified), without sending anything yet; its sub. With
        `password` (operators, local tools) it is set as permanent. Raises SignInExists."""

    def invite(self, sub: str, email: str) -> None:
        """Send the invitation with a temporary password (again: a new one, the earlier void)."""

    def reset_password(self, sub: str) -> None:
        """Cognito's admin reset: the password is void, and a code to set a new one goes to the
        user's email. SignInRefused in a state the pool cannot reset from."""

    def sign_out(self, sub: str) -> None:
        """Sign the user out everywhere: every refresh token revoked (a no-op for a signed-out user)."""

    def find(self, email: str) -> SignIn | None:
        """The sign-in of `email`, if any."""

    def get(self, sub: str) -> SignIn | None:
        """The sign-in `sub`, with its group membership (`admin`), if it exists."""

    def set_admin(self, sub: str, admin: bool) -> None:
        """Put the sign-in in the admins group, or take it out (either is a no-op if already so)."""

    def set_enabled(self, sub: str, enabled: bool) -> None:
        """Enable the sign-in, or disable it and sign it out everywhere."""

    def set_email(self, sub: str, email: str) -> None:
        """Change the sign-in's email (verified), so the user signs in with it. Raises EmailTaken."""

    def delete(self, sub: str) -> None:
        """Delete the sign-in; no error when it is gone already."""

    def sign_ins(self) -> Iterator[SignIn]:
        """Every sign-in of the pool (operators' drift report)."""

    def admins(self) -> set[str]:
        """The subs in the admins group (operators' drift report)."""


class Mailer(Protocol):
    def ready(self) -> bool:
        """Whether mail can be sent at all (a sender is configured): checked before anything is written."""

    def send_email_code(self, sub: str, to: str, code: str, until: str) -> None:
        """Mail the code that confirms `sub`'s requested change of email to `to`, valid until `until`."""
