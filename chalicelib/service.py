"""Use cases of the user API. Plain values in, records out; storage is passed in."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from chalicelib.cursor import CursorCodec
from chalicelib.errors import ConcurrentModification, Forbidden, UserAlreadyExists, UserNotFound, ValidationError
from chalicelib.models import NewUser, User, UserChanges, email_key
from chalicelib.repository import EmailChangeRequired, StaleRecord, UserRepository

# Read-then-write operations retry this many times when a concurrent writer wins.
MAX_ATTEMPTS = 3


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UserService:
    def __init__(
        self,
        repository: UserRepository,
        cursors: CursorCodec,
        clock: Callable[[], str] = utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ):
        self._repo = repository
        self._cursors = cursors
        self._clock = clock
        self._new_id = new_id

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

    def update_user(self, user_id: str, changes: UserChanges) -> User:
        if changes.email is None:
            return self._repo.update(user_id, changes, self._clock())
        for _ in range(MAX_ATTEMPTS):
            # Optimistically assume the email keeps its key: then one request does it, and if
            # not, the failed condition hands back the stored record for the email change.
            try:
                return self._repo.update(user_id, changes, self._clock(), expect_email_key=email_key(changes.email))
            except EmailChangeRequired as signal:
                current = signal.current
            try:
                return self._repo.change_email(current, changes, self._clock())
            except StaleRecord:
                continue
        raise ConcurrentModification()

    def delete_user(self, user_id: str) -> None:
        for _ in range(MAX_ATTEMPTS):
            current = self.get_user(user_id)
            try:
                self._repo.delete(current)
                return
            except StaleRecord:
                continue
        raise ConcurrentModification()

    def put_profile(self, sub: str, token_email: str | None, changes: UserChanges) -> tuple[User, bool]:
        """Update the caller's own profile, creating it on first use. Returns (user, created)."""
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._repo.update(sub, changes, self._clock()), False
            except UserNotFound:
                pass
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
