"""Use cases of the user API. Plain values in, records out; storage is passed in."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from chalicelib.cursor import CursorCodec
from chalicelib.errors import (
    ConcurrentModification,
    Forbidden,
    PreconditionFailed,
    UserAlreadyExists,
    UserNotFound,
    ValidationError,
)
from chalicelib.models import NewUser, Revision, User, UserChanges, email_key
from chalicelib.repository import EmailChangeRequired, StaleRecord, UserRepository

# Read-then-write operations retry this many times when a concurrent writer wins.
MAX_ATTEMPTS = 3


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AvatarRemover(Protocol):
    def delete(self, user_id: str) -> None:
        """Remove the user's avatar, if any; raises ServiceUnavailable when storage is down."""


class _NoAvatars:
    def delete(self, user_id: str) -> None:
        return None


class UserService:
    def __init__(
        self,
        repository: UserRepository,
        cursors: CursorCodec,
        clock: Callable[[], str] = utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        avatars: AvatarRemover | None = None,
    ):
        self._repo = repository
        self._cursors = cursors
        self._clock = clock
        self._new_id = new_id
        self._avatars = avatars or _NoAvatars()

    def create_user(self, new: NewUser, user_id: str | None = None) -> User:
        now = self._clock()
        user = User(
            user_id=user_id or self._new_id(),
            name=new.name,
            email=new.email,
            phone=new.phone,
            created_at=now,
            updated_at=now,
            version=1,
        )
        self._repo.create(user)
        return user

    def get_user(self, user_id: str) -> User:
        user = self._repo.get(user_id)
        if user is None:
            raise UserNotFound()
        return user

    def list_users(self, limit: int, cursor: str | None) -> tuple[list[User], str | None]:
        after = self._cursors.decode(cursor) if cursor is not None else None
        users, last = self._repo.list_page(limit, after)
        return users, (self._cursors.encode(last) if last is not None else None)

    def update_user(self, user_id: str, changes: UserChanges, expected: tuple[Revision, ...] | None = None) -> User:
        """Apply a partial update. With `expected` (If-Match), only to one of those revisions:
        otherwise PreconditionFailed and nothing changes."""
        if changes.email is None:
            return self._repo.update(user_id, changes, self._clock(), expected=expected)
        for _ in range(MAX_ATTEMPTS):
            # Optimistically assume the email keeps its key: then one request does it, and if
            # not, the failed condition hands back the stored record for the email change.
            try:
                return self._repo.update(
                    user_id, changes, self._clock(), expect_email_key=email_key(changes.email), expected=expected
                )
            except EmailChangeRequired as signal:
                current = signal.current  # one of `expected`, if given: update() checked that
            try:
                return self._repo.change_email(current, changes, self._clock())
            except StaleRecord:
                if expected is not None:
                    raise PreconditionFailed() from None  # someone else wrote the revision we were given
                continue
        raise ConcurrentModification()

    def delete_user(self, user_id: str, expected: tuple[Revision, ...] | None = None) -> None:
        """Delete a user and release its email. With `expected` (If-Match), only one of those
        revisions: the delete is conditioned on it, so a concurrent write makes it fail."""
        if expected is not None and not expected:
            raise PreconditionFailed()
        for _ in range(MAX_ATTEMPTS):
            # The read finds the email reservation to release; the delete's own condition is
            # what guarantees the revision.
            current = self._repo.get(user_id)
            if current is None:
                # A retry after the avatar could not be removed finishes that job.
                self._avatars.delete(user_id)
                raise UserNotFound()
            if expected is not None and current.revision not in expected:
                raise PreconditionFailed()
            try:
                self._repo.delete(current)
            except StaleRecord:
                if expected is not None:
                    raise PreconditionFailed() from None
                continue
            # After the record, so a failed or refused delete keeps the avatar; if this fails
            # the client gets 503 and its retry (404) removes the avatar.
            self._avatars.delete(user_id)
            return
        raise ConcurrentModification()

    def put_profile(
        self,
        sub: str,
        token_email: str | None,
        changes: UserChanges,
        expected: tuple[Revision, ...] | None = None,
    ) -> tuple[User, bool]:
        """Update the caller's own profile, creating it on first use. Returns (user, created).

        With `expected` (If-Match) the profile must exist in one of those revisions."""
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._repo.update(sub, changes, self._clock(), expected=expected), False
            except UserNotFound:
                if expected is not None:
                    raise PreconditionFailed() from None  # If-Match never matches a missing record
            if changes.name is None:
                raise ValidationError(
                    "Creating your profile requires a name",
                    details=[{"field": "name", "message": "is required"}],
                )
            if not token_email:
                raise Forbidden("Your token carries no verified email to create a profile with")
            phone = changes.phone if isinstance(changes.phone, str) else None
            try:
                return self.create_user(NewUser(name=changes.name, email=token_email, phone=phone), user_id=sub), True
            except UserAlreadyExists:
                continue  # a concurrent first PUT created it: update that one
        raise ConcurrentModification()
