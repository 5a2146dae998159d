"""Use cases of the user API. Plain values in, records out; storage and sign-ins are passed in.

A user is a sign-in (Cognito) plus its record (DynamoDB), and `userId` is the sign-in's sub.
Every change is written to the record first and the sign-in follows it: the record is what the
API authorises by (chalicelib/domain/revocation.py), so while the sign-in lags behind (its request failed
half-way) nobody has more rights than the record gives. A failed step leaves nothing that a retry
of the same request (the same Idempotency-Key, hence the same write token) does not complete,
and a create whose record was refused takes its new sign-in back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.errors import (
    ConcurrentModification,
    EmailAlreadyExists,
    Forbidden,
    NoneMatchFailed,
    PreconditionFailed,
    UserAlreadyExists,
    UserNotFound,
    ValidationError,
)
from chalicelib.domain.identity import EmailTaken, IdentityProvider, SignInExists, SignInMissing
from chalicelib.domain.models import (
    ADMIN,
    MEMBER,
    NO_PRECONDITIONS,
    NewUser,
    Preconditions,
    Standing,
    User,
    UserChanges,
    Write,
    email_key,
    epoch_seconds,
    new_write_token,
)
from chalicelib.domain.repository import Deleted, EmailChangeRequired, StaleRecord, UserRepository

logger = logging.getLogger("users_api.service")

# Read-then-write operations retry this many times when a concurrent writer wins.
MAX_ATTEMPTS = 3
# The actor of writes no API caller made (seeding, operator commands).
SYSTEM_ACTOR = "system"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def standing_of(user: User, revoked_at: int = 0) -> Standing:
    """The standing a record just written gives (`revoked_at`: when that write revoked tokens)."""
    return Standing(exists=True, enabled=user.enabled, role=user.role, tokens_valid_after=revoked_at)


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
        identities: IdentityProvider,
        clock: Callable[[], str] = utc_now,
        avatars: AvatarRemover | None = None,
        standing_changed: Callable[[str, Standing], None] = lambda user_id, standing: None,
    ):
        self._repo = repository
        self._cursors = cursors
        self._identities = identities
        self._clock = clock
        self._avatars = avatars or _NoAvatars()
        # Told whenever this container wrote a user's role, state or existence, so its
        # revocation check uses that at once instead of what it read before.
        self._standing_changed = standing_changed

    def _write(self, token: str | None, actor: str) -> Write:
        return Write(token=token or new_write_token(), actor=actor, at=self._clock())

    # --- create ---

    def create_user(
        self,
        new: NewUser,
        *,
        token: str | None = None,
        actor: str = SYSTEM_ACTOR,
        password: str | None = None,
        invite: bool = True,
    ) -> User:
        """A sign-in and its record. Cognito mails the invitation with a temporary password,
        unless `password` (operators and local tools) is set as the permanent one, or `invite` is
        False (a bulk import that asked for none: the sign-in waits, unusable, for an invitation)."""
        write = self._write(token, actor)
        sub, made_here = self._sign_in_for(new.email, password)
        user = User(
            user_id=sub,
            name=new.name,
            email=new.email,
            phone=new.phone,
            created_at=write.at,
            updated_at=write.at,
            version=1,
            role=new.role,
        )
        try:
            stored = self._repo.create(user, write)
        except (EmailAlreadyExists, UserAlreadyExists) as exc:
            # Refused: take back the sign-in this attempt made, unless a concurrent create of the
            # same email adopted it and its record holds it now.
            if made_here and not isinstance(self._repo.find(sub), User):
                self._identities.delete(sub)
            raise EmailAlreadyExists() from exc
        # A ServiceUnavailable above propagates without compensation: the record may have been
        # written, and the sign-in (not yet invited, so unusable) is what a keyed retry adopts.
        self._standing_changed(sub, standing_of(stored))
        try:
            if stored.role == ADMIN:
                self._identities.set_admin(sub, True)
            if password is None and invite:
                self._identities.invite(sub, stored.email)
        except SignInMissing:
            # A concurrent delete of this very user (it adopted the sign-in) removed it meanwhile.
            raise ConcurrentModification() from None
        return stored

    def _sign_in_for(self, email: str, password: str | None) -> tuple[str, bool]:
        """The sub of a new sign-in for `email`, and whether this call made it."""
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._identities.create(email, password), True
            except SignInExists as exists:
                if not exists.sub:
                    # Refused as existing, then not found: a concurrent request made or removed it
                    # in between. Ask again (ConcurrentModification, 409, if it keeps happening).
                    continue
                record = self._repo.find(exists.sub)
                if not isinstance(record, Deleted):
                    # Left by an earlier attempt whose record write failed or whose outcome was
                    # unknown (adopted: this attempt completes it), or the sign-in of an existing
                    # user (its record refuses the create). Never this attempt's to take back.
                    return exists.sub, False
                # The sign-in of a deleted user, whose delete has not removed it yet (or failed
                # to): finish that delete, then make a new one.
                self._identities.delete(exists.sub)
        raise ConcurrentModification()

    # --- read ---

    def get_user(self, user_id: str) -> User:
        user = self._repo.get(user_id)
        if user is None:
            raise UserNotFound()
        return user

    def list_users(self, limit: int, cursor: str | None) -> tuple[list[User], str | None]:
        after = self._cursors.decode(cursor) if cursor is not None else None
        users, last = self._repo.list_page(limit, after)
        return users, (self._cursors.encode(last) if last is not None else None)

    # --- update ---

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
        If-None-Match): otherwise PreconditionFailed and nothing changes. The sign-in follows
        the record: its email, its group (role), enabled or disabled and signed out."""
        if actor == user_id and changes.touches_standing:
            raise Forbidden("You cannot change your own role or disable yourself")
        write = self._write(token, actor)
        if preconditions.if_none_match_any:
            self.get_user(user_id)  # 404 for a missing user, as without the header (RFC 9110, 13.2.1)
            raise NoneMatchFailed()
        sign_in_has_email = False
        if changes.email is not None:
            # A sign-in with this address but no record (the reservation would refuse a record's)
            # would refuse the sign-in's change: refuse before the record takes the address.
            holder = self._identities.find(changes.email)
            if holder is not None and holder.sub != user_id:
                raise EmailAlreadyExists()
            sign_in_has_email = holder is not None and holder.email == changes.email
        if changes.touches_standing:
            updated = self._change_standing(user_id, changes, preconditions, write)
        else:
            updated = self._update_record(user_id, changes, preconditions, write)
        self._sync_sign_in(updated, changes, sign_in_has_email)
        return updated

    def _update_record(self, user_id: str, changes: UserChanges, preconditions: Preconditions, write: Write) -> User:
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
                return self._repo.change(current, changes, write)
            except StaleRecord:
                if preconditions.if_match is not None:
                    raise PreconditionFailed() from None  # someone else wrote the revision we were given
                continue
        raise ConcurrentModification()

    def _change_standing(self, user_id: str, changes: UserChanges, preconditions: Preconditions, write: Write) -> User:
        """A role or enabled change: read (to count admins), then one transaction."""
        for _ in range(MAX_ATTEMPTS):
            current = self.get_user(user_id)
            refusal = preconditions.refusal(current.revision)
            if refusal is not None:
                raise refusal
            try:
                updated = self._repo.change(current, changes, write)
            except StaleRecord:
                if preconditions.if_match is not None:
                    raise PreconditionFailed() from None
                continue
            self._standing_changed(user_id, standing_of(updated, revoked_at=epoch_seconds(write.at)))
            return updated
        raise ConcurrentModification()

    def _sync_sign_in(self, user: User, changes: UserChanges, sign_in_has_email: bool = False) -> None:
        """Make the sign-in follow what was just written (again, for a retry: every call is idempotent)."""
        try:
            if changes.email is not None and not sign_in_has_email:
                self._identities.set_email(user.user_id, user.email)
            if changes.role is not None:
                self._identities.set_admin(user.user_id, user.role == ADMIN)
            if changes.enabled is not None:
                self._identities.set_enabled(user.user_id, user.enabled)
        except SignInMissing:
            # A record without a sign-in (made by an earlier version): the record is changed;
            # `make drift` reports such records.
            logger.warning("user has no sign-in to update")
        except EmailTaken:
            # Taken between the check above and now: the record has the address, the sign-in
            # not. Refused, and `make drift` reports the mismatch.
            logger.error("another sign-in took the new email meanwhile; record and sign-in differ")
            raise EmailAlreadyExists() from None

    # --- delete ---

    def delete_user(
        self,
        user_id: str,
        preconditions: Preconditions = NO_PRECONDITIONS,
        *,
        token: str | None = None,
        actor: str = SYSTEM_ACTOR,
    ) -> None:
        """Delete a user: the record (its email released), then its sign-in and its avatar. The
        record's delete is conditioned on the revision read, so a concurrent write makes it fail;
        a retry of a delete that failed half-way finishes the job."""
        if actor == user_id:
            raise Forbidden("You cannot delete yourself")
        write = self._write(token, actor)
        if preconditions.if_match is not None and not preconditions.if_match:
            raise PreconditionFailed()
        for _ in range(MAX_ATTEMPTS):
            # The read finds the email reservation to release; the delete's own condition is
            # what guarantees the revision.
            current = self._repo.find(user_id)
            if isinstance(current, Deleted):
                # Deleted already (by this request's earlier attempt, whose answer was lost, or by
                # another): whatever came after the record may not have happened. Finish it.
                self._remove_traces(user_id)
                if current.token == write.token:
                    return
                raise UserNotFound()
            if current is None:
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
            self._standing_changed(user_id, Standing(exists=True, deleted=True, enabled=False))
            # After the record, so a failed or refused delete keeps them; if one fails the client
            # gets 503 and its retry removes what is left.
            self._remove_traces(user_id)
            return
        raise ConcurrentModification()

    def _remove_traces(self, user_id: str) -> None:
        self._identities.delete(user_id)
        self._avatars.delete(user_id)

    # --- the caller's own profile ---

    def put_profile(
        self,
        sub: str,
        token_email: str | None,
        changes: UserChanges,
        preconditions: Preconditions = NO_PRECONDITIONS,
        *,
        token: str | None = None,
        in_admins_group: bool = False,
    ) -> tuple[User, bool]:
        """Update the caller's own profile (name, phone), creating it on first use for a sign-in
        that has none (an admin's if the sign-in is in the admins group, as Cognito says). The
        email follows the token's verified one: changed through Cognito's own verified flow, it
        reaches the record here. Returns (user, created).

        If-Match (a tag or `*`) requires the profile to exist; `If-None-Match: *` requires it not
        to (a create only); If-None-Match tags refuse those revisions."""
        write = self._write(token, actor=sub)
        if changes.touches_standing or changes.email is not None:
            raise Forbidden("Only admins may change email, role or enabled")
        following = replace(changes, email=token_email) if token_email else changes
        for _ in range(MAX_ATTEMPTS):
            if not preconditions.if_none_match_any:
                try:
                    user = self._update_record(sub, following, preconditions, write)
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
            # A sign-in made outside the API (the console, or an operator's first admin): its
            # record takes the role its Cognito group gives, so the two agree from the start.
            role = ADMIN if in_admins_group else MEMBER
            profile = User(sub, changes.name, token_email, write.at, write.at, 1, phone, role=role)
            try:
                created = self._repo.create(profile, write)
            except UserAlreadyExists:
                if isinstance(self._repo.find(sub), Deleted):
                    # Deleted meanwhile (this caller's token was still in a cache's grace): gone.
                    raise UserNotFound() from None
                if preconditions.if_none_match_any:
                    raise NoneMatchFailed() from None
                continue  # a concurrent first PUT created it: update that one
            self._standing_changed(sub, standing_of(created))
            return created, True
        raise ConcurrentModification()
