"""What the user service needs from storage, and the signals storage sends back."""

from __future__ import annotations

from typing import Protocol

from chalicelib.models import Revision, User, UserChanges


class EmailChangeRequired(Exception):
    """An update that expected the stored email to be unchanged found another one.

    Carries the stored record (returned by the failed conditional write itself), so the
    email change can follow without another read.
    """

    def __init__(self, current: User):
        super().__init__("stored email differs")
        self.current = current


class StaleRecord(Exception):
    """The record is no longer the version that was read; read again and retry."""


class UserRepository(Protocol):
    def get(self, user_id: str) -> User | None:
        """The user, or None. One strongly consistent read."""

    def create(self, user: User) -> None:
        """Store a new user and reserve its email in one request.

        Raises UserAlreadyExists or EmailAlreadyExists and stores nothing.
        """

    def update(
        self,
        user_id: str,
        changes: UserChanges,
        now: str,
        *,
        expect_email_key: str | None = None,
        expected: tuple[Revision, ...] | None = None,
    ) -> User:
        """Apply changes that keep the email key, in one request.

        Raises UserNotFound (nothing is created); PreconditionFailed when `expected` is given
        and the stored revision is not one of them (checked in the write's own condition);
        or EmailChangeRequired when `expect_email_key` is not the stored one.
        """

    def change_email(self, current: User, changes: UserChanges, now: str) -> User:
        """Apply changes including a new email, moving its reservation, in one request.

        Conditioned on `current.revision`: raises StaleRecord if it moved on, or
        EmailAlreadyExists; either way nothing changes.
        """

    def delete(self, current: User) -> None:
        """Delete the user and release its email in one request, conditioned on
        `current.revision`; StaleRecord if it changed."""

    def list_page(self, limit: int, after: str | None) -> tuple[list[User], str | None]:
        """Up to `limit` users after the user id `after`, and the id to continue after (or None)."""
