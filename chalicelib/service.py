"""Use cases of the user API. Plain values in, records out; storage is passed in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from chalicelib.cursor import CursorCodec
from chalicelib.errors import (
    ConcurrentModification,
    Forbidden,
    NoneMatchFailed,
    PreconditionFailed,
    UserAlreadyExists,
    UserNotFound,
    ValidationError,
)
from chalicelib.models import (
    NO_PRECONDITIONS,
    NewUser,
    Preconditions,
    User,
    UserChanges,
    Write,
    email_key,
    new_write_token,
    user_id_for,
)
from chalicelib.repository import Deleted, EmailChangeRequired, StaleRecord, UserRepository

# Read-then-write operations retry this many times when a concurrent writer wins.
MAX_ATTEMPTS = 3
# The actor of writes no API caller made (seeding, operator commands).
SYSTEM_ACTOR = "system"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AvatarRemover(Protocol):
    def delete(self, user_id: str) -> None:
        """Remove the user's avatar, if any; raises ServiceUnavailable when storage is down."""


class _NoAvatars:
    def delete(self, user_id: str) -> None:
        return None


class UserService:
    """Every write takes `token`, the API request's write token (a fresh one when None): all
    storage requests of one API request carry it, so a resent attempt that finds its own
    earlier success reports that instead of applying twice, and a client retry with the same
    Idempotency-Key (which keeps the token) finds what its first try did."""

    def __init__(
        self,
        repository: UserRepository,
        cursors: CursorCodec,
        clock: Callable[[], str] = utc_now,
        new_id: Callable[[str], str] = user_id_for,
        avatars: AvatarRemover | None = None,
    ):
        self._repo = repository
        self._cursors = cursors
        self._clock = clock
        self._new_id = new_id
        self._avatars = avatars or _NoAvatars()

    def _write(self, token: str | None, actor: str) -> Write:
        return Write(token=token or new_write_token(), actor=actor, at=self._clock())

    def create_user(self, new: NewUser, *, token: str | None = None, actor: str = SYSTEM_ACTOR) -> User:
        write = self._write(token, actor)
        return self._create(new, write, self._new_id(write.token))

    def _create(self, new: NewUser, write: Write, user_id: str) -> User:
        user = User(
            user_id=user_id,
            name=new.name,
            email=new.email,
            phone=new.phone,
            created_at=write.at,
            updated_at=write.at,
            version=1,
        )
        return self._repo.create(user, write)

    def get_user(self, user_id: str) -> User:
        user = self._repo.get(user_id)
        if user is None:
            raise UserNotFound()
        return user

    def list_users(self, limit: int, cursor: str | None) -> tuple[list[User], str | None]:
        after = self._cursors.decode(cursor) if cursor is not None else None
        users, last = self._repo.list_page(limit, after)
        return users, (self._cursors.encode(last) if last is not None else None)

    def update_user(
        self,
        user_id: str,
        changes: UserChanges,
        preconditions: Preconditions = NO_PRECONDITIONS,
        *,
        token: str | None = None,
        actor: str = SYSTEM_ACTOR,
    ) -> User:
        """Apply a partial update, only to a revision `preconditions` allow (If-Match,
        If-None-Match): otherwise PreconditionFailed and nothing changes."""
        write = self._write(token, actor)
        if preconditions.if_none_match_any:
            self.get_user(user_id)  # 404 for a missing user, as without the header (RFC 9110, 13.2.1)
            raise NoneMatchFailed()
        if changes.email is None:
            return self._repo.update(user_id, changes, write, preconditions=preconditions)
        for _ in range(MAX_ATTEMPTS):
            # Optimistically assume the email keeps its key: then one request does it, and if
            # not, the failed condition hands back the stored record for the email change.
            try:
                return self._repo.update(
                    user_id, changes, write, expect_email_key=email_key(changes.email), preconditions=preconditions
                )
            except EmailChangeRequired as signal:
                current = signal.current  # one `preconditions` allow: update() checked that
            try:
                return self._repo.change_email(current, changes, write)
            except StaleRecord:
                if preconditions.if_match is not None:
                    raise PreconditionFailed() from None  # someone else wrote the revision we were given
                continue
        raise ConcurrentModification()

    def delete_user(
        self,
        user_id: str,
        preconditions: Preconditions = NO_PRECONDITIONS,
        *,
        token: str | None = None,
        actor: str = SYSTEM_ACTOR,
    ) -> None:
        """Delete a user and release its email, only in a revision `preconditions` allow: the
        delete is conditioned on the revision read, so a concurrent write makes it fail."""
        write = self._write(token, actor)
        if preconditions.if_match is not None and not preconditions.if_match:
            raise PreconditionFailed()
        for _ in range(MAX_ATTEMPTS):
            # The read finds the email reservation to release; the delete's own condition is
            # what guarantees the revision.
            current = self._repo.find(user_id)
            if isinstance(current, Deleted) and current.token == write.token:
                # This request's earlier attempt deleted it (its answer was lost): finish the job.
                self._avatars.delete(user_id)
                return
            if not isinstance(current, User):
                # A retry after the avatar could not be removed finishes that job.
                self._avatars.delete(user_id)
                raise UserNotFound()
            refusal = preconditions.refusal(current.revision)
            if refusal is not None:
                raise refusal
            try:
                self._repo.delete(current, write)
            except StaleRecord:
                if preconditions.if_match is not None:
                    raise PreconditionFailed() from None
                continue
            # After the record, so a failed or refused delete keeps the avatar; if this fails
            # the client gets 503 and its retry removes the avatar.
            self._avatars.delete(user_id)
            return
        raise ConcurrentModification()

    def put_profile(
        self,
        sub: str,
        token_email: str | None,
        changes: UserChanges,
        preconditions: Preconditions = NO_PRECONDITIONS,
        *,
        token: str | None = None,
    ) -> tuple[User, bool]:
        """Update the caller's own profile, creating it on first use. Returns (user, created).

        If-Match (a tag or `*`) requires the profile to exist; `If-None-Match: *` requires it not
        to (a create only); If-None-Match tags refuse those revisions."""
        write = self._write(token, actor=sub)
        for _ in range(MAX_ATTEMPTS):
            if not preconditions.if_none_match_any:
                try:
                    user = self._repo.update(sub, changes, write, preconditions=preconditions)
                    # Every update moves the version past 1: a version-1 record came back only
                    # because this request's own earlier attempt created it.
                    return user, user.version == 1
                except UserNotFound:
                    if preconditions.if_match is not None or preconditions.if_match_any:
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
                return self._create(NewUser(name=changes.name, email=token_email, phone=phone), write, sub), True
            except UserAlreadyExists:
                if preconditions.if_none_match_any:
                    raise NoneMatchFailed() from None
                continue  # a concurrent first PUT created it: update that one
        raise ConcurrentModification()
