"""Use cases of the user API. Plain values in, records out; storage and sign-ins are passed in.

A user is a sign-in (Cognito) plus its record (DynamoDB), and `userId` is the sign-in's sub. The
record is the truth and the sign-in follows it (the invariant is stated once, in docs/DESIGN.md):

- Role and enabled are written to the record first: the record is what the API authorises by
  (chalicelib/domain/revocation.py), so while the sign-in lags behind nobody has more rights
  than the record gives.
- An email is a sign-in name, and Cognito's aliases are the scarcer namespace: a new address is
  taken in Cognito first, then written to the record (whose reservation refuses a second holder);
  a write that is then refused gives the address back, so a 4xx or 409 changes nothing.
- After every write the sign-in is set to what the record holds and the record is read again: if
  another request wrote meanwhile, the sign-in follows that too. Whatever order concurrent requests
  reach Cognito in, the last one to set the sign-in has seen the latest record.
- A write that revokes tokens (a role change, an enable) changes the sign-in only once every token
  Cognito issues afterwards is stamped later than the revocation (models.tokens_valid_from).

A failed step leaves nothing that a retry of the same request (the same Idempotency-Key, hence the
same write token) or `make drift FIX=1` does not complete, and a create whose record was refused
takes its new sign-in back.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar

from chalicelib.domain.access import refuse_own_password_reset, refuse_own_standing_change, refuse_self_delete
from chalicelib.domain.avatars import AvatarRemover
from chalicelib.domain.cursor import CursorCodec, CursorScope
from chalicelib.domain.errors import (
    AppError,
    ConcurrentModification,
    EmailAlreadyExists,
    Forbidden,
    InvalidEmailCode,
    NoEmailChangePending,
    NoneMatchFailed,
    PreconditionFailed,
    ServiceUnavailable,
    SignInStateConflict,
    Unauthorized,
    UserAlreadyExists,
    UserNotFound,
    ValidationError,
)
from chalicelib.domain.identity import (
    EmailTaken,
    IdentityProvider,
    Mailer,
    SignIn,
    SignInExists,
    SignInMissing,
    SignInRefused,
)
from chalicelib.domain.models import (
    ADMIN,
    EMAIL,
    ENABLED,
    INVITATION_RESENT,
    MEMBER,
    NO_PRECONDITIONS,
    PASSWORD_RESET,
    ROLE,
    SIGN_IN_FIELDS,
    SIGNED_OUT,
    NewUser,
    Preconditions,
    Standing,
    User,
    UserChanges,
    Write,
    email_key,
    epoch,
    later_than,
    new_write_token,
    pending_email,
    timestamp,
    tokens_valid_after,
    tokens_valid_from,
)
from chalicelib.domain.repository import (
    ClockBehind,
    Deleted,
    EmailChangeRequired,
    PendingCode,
    StaleRecord,
    Stored,
    Unchanged,
    UserRepository,
)
from chalicelib.domain.search import UserQuery

logger = logging.getLogger("users_api.service")

# Read-then-write operations retry this many times when a concurrent writer wins.
MAX_ATTEMPTS = 3
# How often the sign-in is set again because the record moved on meanwhile, before giving up (503:
# a retry completes it).
FOLLOW_ATTEMPTS = 4
# The name list cursors are bound to (GET /users).
LIST_ROUTE = "users"
# The actor of writes no API caller made (seeding, operator commands).
SYSTEM_ACTOR = "system"
# A requested email change: how long its code confirms it (and its address stays reserved), and
# how many wrong codes it takes before it must be asked for again.
EMAIL_CODE_TTL = timedelta(hours=1)
MAX_CODE_ATTEMPTS = 5


def email_code(write_token: str, sub: str) -> str:
    """The six-digit code of the email change asked for by the request with `write_token`: derived
    from it (a server-side random value no client sees), so a keyed retry of the request mails the
    same code again instead of one the record does not know."""
    digest = hmac.new(write_token.encode(), f"email-code:{sub}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def code_hash(salt: str, code: str) -> str:
    """What the record keeps of a code: never the code itself."""
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def utc_now() -> str:
    return timestamp(datetime.now(UTC))


def standing_of(user: User, revoked_at: int = 0) -> Standing:
    """The standing a record just written gives (`revoked_at`: when that write revoked tokens)."""
    return Standing(exists=True, enabled=user.enabled, role=user.role, tokens_valid_after=revoked_at)


class _NoAvatars:
    def delete(self, user_id: str) -> None:
        return None


class _NoMailer:
    def ready(self) -> bool:
        return False

    def send_email_code(self, sub: str, to: str, code: str, until: str) -> None:
        logger.error("no mailer is configured: the code of an email change cannot be sent")
        raise ServiceUnavailable()


P = ParamSpec("P")
T = TypeVar("T")


def _standing_at_stake(
    write: Callable[Concatenate[UserService, str, P], T],
) -> Callable[Concatenate[UserService, str, P], T]:
    """For a write that may revoke a user's tokens (role, state, delete, sign-out, a confirmed
    email): when it answers 503 its outcome is unknown, so what this container remembers of the
    user's standing is dropped and the next request reads the record. A revocation that did
    apply then holds here at once, as it does in other containers within STANDING_TTL_S."""

    @functools.wraps(write)
    def guarded(service: UserService, user_id: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return write(service, user_id, *args, **kwargs)
        except ServiceUnavailable:
            service._standing_changed(user_id, None)
            raise

    return guarded


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
        standing_changed: Callable[[str, Standing | None], None] = lambda user_id, standing: None,
        sleep: Callable[[float], None] = time.sleep,
        mailer: Mailer | None = None,
    ):
        self._repo = repository
        self._cursors = cursors
        self._identities = identities
        self._clock = clock
        self._sleep = sleep
        self._avatars = avatars or _NoAvatars()
        self._mailer = mailer or _NoMailer()
        # Told whenever this container wrote a user's role, state or existence, so its
        # revocation check uses that at once instead of what it read before; told None when such
        # a write's outcome is unknown (see _standing_at_stake).
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
        unless `password` (operators and local tools) is set as the permanent one, the sign-in
        existed already and has been used (it has a password), or `invite` is False (a bulk import
        that asked for none: the sign-in waits, unusable, for an invitation)."""
        write = self._write(token, actor)
        sub, adopted = self._sign_in_for(new.email, password)
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
            if adopted is None and not isinstance(self._repo.find(sub), User):
                self._identities.delete(sub)
            raise EmailAlreadyExists() from exc
        except ServiceUnavailable:
            # The record write's outcome is unknown. A sign-in this attempt made is taken back when
            # a consistent read shows its record was not written: left, a keyed retry would adopt
            # it, and if the record is then refused (its email taken meanwhile) nothing would tell
            # the retry that the sign-in was the API's to remove. When the record is there, or the
            # read fails too, the sign-in (not yet invited, so unusable) stays for the retry.
            if adopted is None:
                self._take_back_unless_recorded(sub)
            raise
        self._standing_changed(sub, standing_of(stored))
        # A sign-in made here holds the record's email, enabled and in no group. One that existed
        # (an earlier attempt's, or made outside the API, in the console) is made to agree in
        # everything: its email's spelling, its state, and its group in both directions.
        self._follow(stored, SIGN_IN_FIELDS if adopted is not None else ((ROLE,) if stored.role == ADMIN else ()))
        if password is None and invite and (adopted is None or adopted.never_used):
            try:
                self._identities.invite(sub, stored.email)
            except SignInMissing:
                # Deleted meanwhile by a concurrent delete of this very user: the create happened,
                # and the delete after it; nobody is left to invite.
                logger.warning("the new user was deleted before its invitation")
        return stored

    def _take_back_unless_recorded(self, sub: str) -> None:
        try:
            if self._repo.find(sub) is None:
                self._identities.delete(sub)
        except ServiceUnavailable:
            logger.warning("a new sign-in whose record may not exist stays for the keyed retry")

    def _sign_in_for(self, email: str, password: str | None) -> tuple[str, SignIn | None]:
        """The sub of the sign-in for `email`, and the sign-in when it existed already (None:
        this call made it)."""
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._identities.create(email, password), None
            except SignInExists as exists:
                if not exists.sub:
                    # Refused as existing, then not found: a concurrent request made or removed it
                    # in between. Ask again (ConcurrentModification, 409, if it keeps happening).
                    continue
                record = self._repo.find(exists.sub)
                if not isinstance(record, Deleted):
                    # Left by an earlier attempt whose record write failed or whose outcome was
                    # unknown (adopted: this attempt completes it), made outside the API (adopted
                    # too), or the sign-in of an existing user (its record refuses the create).
                    # Never this attempt's to take back.
                    found = exists.sign_in or SignIn(exists.sub, email, True, "")
                    return exists.sub, found
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

    def list_users(
        self, query: UserQuery, limit: int, cursor: str | None, caller: str
    ) -> tuple[list[User], str | None]:
        """A page of the users `query` finds and the cursor of the next (None: no more), which
        only `caller` can use, with this very query. An email finds one user, in one lookup."""
        scope = CursorScope(route=LIST_ROUTE, caller=caller, query=query.fingerprint())
        after = self._cursors.decode(cursor, scope) if cursor is not None else None
        if query.email is not None:
            # At most one user, so no email query ever issues a cursor: decode refused any given.
            user = self._repo.find_by_email(email_key(query.email))
            return ([user] if user is not None and query.matches(user) else []), None
        users, last = self._repo.search(query, limit, after)
        return users, (self._cursors.encode(last, scope) if last is not None else None)

    # --- update ---

    @_standing_at_stake
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
        If-None-Match): otherwise PreconditionFailed and nothing changes. A field given the value
        it has is no change, and an update that changes no field writes nothing (no version, no
        event, no revocation). The sign-in follows the record: its email, its group (role),
        enabled or disabled and signed out."""
        refuse_own_standing_change(actor, user_id, changes)
        write = self._write(token, actor)
        if preconditions.if_none_match_any:
            self.get_user(user_id)  # 404 for a missing user, as without the header (RFC 9110, 13.2.1)
            raise NoneMatchFailed()
        if changes.touches_standing:
            return self._change_with_sign_in(user_id, changes, preconditions, write)
        try:
            # Optimistically assume the email (if any) keeps its key: then one request does it, and
            # if not, the failed condition hands back the stored record for the email change.
            return self._update_record(user_id, changes, preconditions, write)
        except Unchanged as same:
            return same.current
        except EmailChangeRequired as signal:
            return self._change_with_sign_in(user_id, changes, preconditions, write, signal.current)

    def _update_record(self, user_id: str, changes: UserChanges, preconditions: Preconditions, write: Write) -> User:
        """Changes that keep the email key (name, phone, an email re-cased): one request, no read.
        Unchanged when it would change nothing; EmailChangeRequired when the email's key moves."""
        expect = email_key(changes.email) if changes.email is not None else None
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._repo.update(user_id, changes, write, expect_email_key=expect, preconditions=preconditions)
            except ClockBehind as behind:
                # Another writer's clock is ahead of ours: stamp this write after the stored one.
                write = replace(write, at=later_than(self._clock(), behind.current.updated_at))
        raise ConcurrentModification()

    def _change_with_sign_in(
        self,
        user_id: str,
        changes: UserChanges,
        preconditions: Preconditions,
        write: Write,
        known: User | None = None,
    ) -> User:
        """A change of what the sign-in holds too (a new email, role, enabled): the record as stored
        (`known`: as a failed update returned it), a new email taken in Cognito, one conditional
        transaction, then the sign-in follows."""
        took_email = False
        try:
            for _ in range(MAX_ATTEMPTS):
                if known is not None:
                    current, known = known, None  # checked against the preconditions by the update
                else:
                    stored = self._repo.read(user_id)
                    if stored is None:
                        raise UserNotFound()
                    current = stored.user
                    if stored.write_token == write.token:
                        # This request's earlier attempt (a keyed retry after a 503) wrote it,
                        # under the preconditions it had then: complete what came after the write.
                        self._follow(current, changes.sign_in_fields, revoked_at=current.updated_at)
                        return current
                refusal = preconditions.refusal(current.revision)
                if refusal is not None:
                    raise refusal
                effective = changes.against(current)
                if effective.is_empty():
                    # Nothing to write: no version, no event, no revocation. The sign-in is still
                    # made to hold what the record does, which changes nothing when they agree, and
                    # completes a change whose sign-in step failed (503) when the client sends it
                    # again without its Idempotency-Key.
                    self._follow(current, changes.sign_in_fields, revoked_at=current.updated_at)
                    return current
                if effective.email is not None:
                    took_email = self._take_email(user_id, effective.email) or took_email
                try:
                    updated = self._repo.change(current, effective, write)
                except StaleRecord:
                    if preconditions.if_match is not None:
                        raise PreconditionFailed() from None  # someone else wrote the revision we were given
                    continue
                revoked_at = None
                if effective.touches_standing:
                    revoked_at = updated.updated_at
                    self._standing_changed(user_id, standing_of(updated, tokens_valid_after(revoked_at)))
                self._follow(updated, changes.sign_in_fields, revoked_at)
                return updated
            raise ConcurrentModification()
        except AppError as refused:
            # A refusal (4xx) must leave nothing changed: the address this request took in Cognito
            # goes back to what the record holds. After a 503 the outcome is unknown: a retry (or
            # `make drift FIX=1`) completes it.
            if took_email and not isinstance(refused, ServiceUnavailable):
                self._give_back_email(user_id)
            raise

    def _take_email(self, user_id: str, email: str) -> bool:
        """Give `user_id`'s sign-in the address `email` before the record takes it; whether the
        sign-in now holds an address its record does not (so a refusal must give it back).
        EmailAlreadyExists (nothing changed) when another sign-in has it."""
        holder = self._identities.find(email)
        if holder is not None and holder.sub != user_id:
            raise EmailAlreadyExists()
        if holder is not None and holder.email == email:
            # It has it already: an earlier attempt of this request took it and then failed (503).
            # A refusal now gives it back as if this attempt had taken it.
            return True
        try:
            self._identities.set_email(user_id, email)
        except EmailTaken:
            raise EmailAlreadyExists() from None
        except SignInMissing:
            # A record without a sign-in (made by an earlier version, or its sign-in deleted
            # outside the API): the reservation alone keeps the address unique; `make drift`
            # reports such records.
            logger.warning("user has no sign-in to update")
            return False
        return True

    def _give_back_email(self, user_id: str) -> None:
        """The sign-in takes the record's email again (the record kept it: its write was refused).
        If that cannot be done, the client gets 503 rather than a 4xx that changed something."""
        current = self._repo.get(user_id)
        if current is not None:
            self._follow(current, (EMAIL,))

    def _follow(self, user: User, fields: tuple[str, ...], revoked_at: str | None = None) -> None:
        """Make the sign-in hold what the record holds in `fields` (`user`: the record as last
        written or read), then read the record again: if another request wrote it meanwhile, follow
        that too. So, whatever order concurrent requests reach Cognito in, the last one to set the
        sign-in had seen the latest record, and the two agree when the last request ends.

        `revoked_at`: the time of a write that revoked the user's tokens. The sign-in's role or
        state changes only after models.tokens_valid_from(revoked_at), so that every token Cognito
        issues with the change is stamped later than the revocation and is accepted, while every
        token issued before the write is refused. The wait is at most 1.2 s, and only right after
        such a write (never for a disable: no token of a disabled user is accepted)."""
        if not fields:
            return
        record = user
        for _ in range(FOLLOW_ATTEMPTS):
            if revoked_at is not None and record.enabled and (ROLE in fields or ENABLED in fields):
                self._wait_until(tokens_valid_from(revoked_at))
            try:
                settled = self._set_sign_in(record, fields)
            except SignInMissing:
                # A record without a sign-in (see _take_email), or deleted meanwhile (the delete
                # removes the sign-in): nothing to follow.
                logger.warning("user has no sign-in to update")
                return
            latest = self._repo.get(record.user_id)
            if latest is None:
                return  # deleted meanwhile: its delete removes the sign-in
            if settled and latest.revision == record.revision:
                return
            record = latest
        logger.error("the sign-in could not be made to follow its record")
        raise ServiceUnavailable()

    def _set_sign_in(self, record: User, fields: tuple[str, ...]) -> bool:
        """Set the sign-in's `fields` to the record's; False when its email is held by another
        sign-in for now (the record may have moved on, or the holder may let go)."""
        settled = True
        if EMAIL in fields:
            try:
                self._identities.set_email(record.user_id, record.email)
            except EmailTaken:
                logger.warning("another sign-in holds the record's email for now")
                settled = False
        if ROLE in fields:
            self._identities.set_admin(record.user_id, record.role == ADMIN)
        if ENABLED in fields:
            self._identities.set_enabled(record.user_id, record.enabled)
        return settled

    def _wait_until(self, moment: float) -> None:
        for _ in range(3):  # time.sleep may wake a little early; a stopped clock must not hang us
            now = epoch(self._clock())
            if now >= moment:
                return
            self._sleep(moment - now)

    # --- delete ---

    @_standing_at_stake
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
        refuse_self_delete(actor, user_id)
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
        changes: UserChanges,
        preconditions: Preconditions = NO_PRECONDITIONS,
        *,
        token: str | None = None,
    ) -> tuple[User, bool]:
        """Update the caller's own profile (name, phone), creating it on first use for a sign-in
        that has none. The email is never the caller's to give, nor taken from their token (which
        keeps the address it was issued with for an hour): an existing record keeps its own, and
        a new one takes the sign-in's verified email, and the role its group gives, read from
        Cognito (a sign-in made outside the API: the console, an operator's first admin). Returns
        (user, created).

        If-Match (a tag or `*`) requires the profile to exist; `If-None-Match: *` requires it not
        to (a create only); If-None-Match tags refuse those revisions."""
        write = self._write(token, actor=sub)
        if changes.touches_standing or changes.email is not None:
            raise Forbidden("Only admins may change email, role or enabled")
        for _ in range(MAX_ATTEMPTS):
            if not preconditions.if_none_match_any:
                try:
                    user = self._update_record(sub, changes, preconditions, write)
                    # Every update moves the version past 1: a version-1 record came back only
                    # because this request's own earlier attempt created it.
                    return user, user.version == 1
                except Unchanged as same:
                    return same.current, False
                except UserNotFound:
                    if preconditions.if_match is not None or preconditions.if_match_any:
                        raise PreconditionFailed() from None  # If-Match never matches a missing record
            if changes.name is None:
                raise ValidationError(
                    "Creating your profile requires a name",
                    details=[{"field": "name", "message": "is required"}],
                )
            sign_in = self._identities.get(sub)
            if sign_in is None or not sign_in.enabled:
                # A token outliving its sign-in (deleted or disabled outside the API, before any
                # record existed to revoke it by).
                raise Unauthorized("Your sign-in no longer exists or is disabled; sign in again")
            if not sign_in.email_verified:
                raise Forbidden("Your sign-in has no verified email to create a profile with")
            phone = changes.phone if isinstance(changes.phone, str) else None
            # The record takes the role the sign-in's group gives, so the two agree from the start.
            role = ADMIN if sign_in.admin else MEMBER
            profile = User(sub, changes.name, sign_in.email, write.at, write.at, 1, phone, role=role)
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

    # --- sign-in actions (admins) ---

    def resend_invitation(self, user_id: str, *, token: str | None = None, actor: str = SYSTEM_ACTOR) -> User:
        """Send the invitation again, with a new temporary password (the earlier one void); only
        while the user has never signed in."""

        def act(user: User) -> None:
            sign_in = self._usable_sign_in(user)
            if not sign_in.never_used:
                raise SignInStateConflict(
                    "The user has signed in already: there is no invitation to send again"
                    " (reset their password instead)"
                )
            self._identities.invite(user.user_id, user.email)

        return self._sign_in_action(user_id, INVITATION_RESENT, act, self._write(token, actor), revoke=False)

    def reset_password(self, user_id: str, *, token: str | None = None, actor: str = SYSTEM_ACTOR) -> User:
        """Cognito's admin reset: the password is void, the user gets a code to set a new one, and
        every token issued before is refused. Never for oneself: the caller would lock themselves out."""
        refuse_own_password_reset(actor, user_id)

        def act(user: User) -> None:
            sign_in = self._usable_sign_in(user)
            if sign_in.never_used:
                raise SignInStateConflict(
                    "The user has never signed in: there is no password to reset (resend the invitation instead)"
                )
            try:
                self._identities.reset_password(user.user_id)
            except SignInRefused:
                raise SignInStateConflict("Cognito cannot reset this user's password in its current state") from None

        return self._sign_in_action(user_id, PASSWORD_RESET, act, self._write(token, actor), revoke=True)

    def sign_out(self, user_id: str, *, token: str | None = None, actor: str = SYSTEM_ACTOR) -> User:
        """Sign the user out everywhere: refresh tokens revoked, every token issued before refused.
        Allowed for oneself: the caller signs in again with their password."""

        def act(user: User) -> None:
            try:
                self._identities.sign_out(user.user_id)
            except SignInMissing:
                logger.warning("user has no sign-in to sign out")

        return self._sign_in_action(user_id, SIGNED_OUT, act, self._write(token, actor), revoke=True)

    def _usable_sign_in(self, user: User) -> SignIn:
        if not user.enabled:
            raise SignInStateConflict("The user is disabled: enable them first")
        sign_in = self._identities.get(user.user_id)
        if sign_in is None:
            raise SignInStateConflict("The user has no sign-in (`make drift` reports such users)")
        return sign_in

    @_standing_at_stake
    def _sign_in_action(
        self, user_id: str, action: str, act: Callable[[User], None], write: Write, *, revoke: bool
    ) -> User:
        """Cognito's part first (it is what the action is; a refusal there changes nothing), then
        the record: one new version carrying the action, which the stream makes its one change
        event, and, for a revoking action, `tokensValidAfter`, written after Cognito stopped
        issuing tokens to the old session so every token issued before is at or below it. The
        answer waits until a token issued after it is stamped later (models.tokens_valid_from).

        A keyed retry whose earlier attempt recorded the action (its token is among the record's
        recent action tokens) does nothing again: one event per action. One whose earlier attempt
        failed after Cognito's part does that part again (another invitation or reset code: the
        latest is the valid one) and then records it."""
        acted = False
        for _ in range(MAX_ATTEMPTS):
            stored = self._repo.read(user_id)
            if stored is None:
                raise UserNotFound()
            if write.token in stored.action_tokens:
                updated = stored.user  # recorded by this request's earlier attempt
            else:
                if not acted:
                    act(stored.user)
                    acted = True
                try:
                    updated = self._repo.record_action(stored, action, write, revoke=revoke)
                except StaleRecord:
                    continue
            if revoke:
                self._standing_changed(user_id, standing_of(updated, tokens_valid_after(updated.updated_at)))
                self._wait_until(tokens_valid_from(updated.updated_at))
            return updated
        raise ConcurrentModification()

    # --- the caller's own email ---

    def request_email_change(self, sub: str, email: str, *, token: str | None = None) -> User:
        """The caller asks for `email` (PUT /users/me): it is reserved for them at once, in the
        same request that records it as their pending email (409 if another user holds it or has
        it pending: nothing changed), and a code goes to it. The record keeps its email until the
        code confirms the change (verify_email). A second request replaces the first."""
        write = self._write(token, actor=sub)
        code = email_code(write.token, sub)
        if not self._mailer.ready():
            # Checked before anything is written: a code nobody can receive must reserve nothing.
            logger.error("no sender is configured for the code of an email change (MAIL_FROM)")
            raise ServiceUnavailable()
        for _ in range(MAX_ATTEMPTS):
            stored = self._repo.read(sub)
            if stored is None:
                raise UserNotFound()
            current = stored.user
            if stored.code is not None and stored.code.token == write.token and current.pending_until is not None:
                # This request's earlier attempt recorded it (a keyed retry after a 503): its
                # code is this one; the mail may not have gone.
                self._mailer.send_email_code(sub, str(current.pending_email), code, current.pending_until)
                return current
            if email_key(email) == email_key(current.email):
                raise ValidationError(
                    "This is your email already", details=[{"field": "email", "message": "is your current email"}]
                )
            holder = self._identities.find(email)
            if holder is not None and holder.sub != sub:
                raise EmailAlreadyExists()
            until = timestamp(
                datetime.fromisoformat(later_than(write.at, current.updated_at).replace("Z", "+00:00")) + EMAIL_CODE_TTL
            )
            salt = secrets.token_hex(8)
            pending = PendingCode(code_hash=code_hash(salt, code), salt=salt, attempts=0, token=write.token)
            try:
                updated = self._repo.request_email(current, email, pending, until, write)
            except StaleRecord:
                continue
            self._mailer.send_email_code(sub, email, code, until)
            return updated
        raise ConcurrentModification()

    @_standing_at_stake
    def verify_email(self, sub: str, code: str, *, token: str | None = None) -> User:
        """The code confirms the pending change: the sign-in takes the address (the scarcer
        namespace, as for an admin's change), then record and reservation move in one request
        (the old address released, tokens issued before refused), then the sign-in follows the
        record. A wrong code is InvalidEmailCode and counts; after MAX_CODE_ATTEMPTS, or once
        expired, the change must be asked for again."""
        write = self._write(token, actor=sub)
        took_email = False
        try:
            for _ in range(MAX_ATTEMPTS):
                stored = self._repo.read(sub)
                if stored is None:
                    raise UserNotFound()
                current = stored.user
                if stored.write_token == write.token:
                    # This request's earlier attempt confirmed it: complete what came after.
                    return self._settle_email(current)
                pending = pending_email(current, write.at)
                if pending is None or stored.code is None:
                    raise NoEmailChangePending()
                self._check_code(current, stored, code, write)
                took_email = self._take_email(sub, pending) or took_email
                try:
                    updated = self._repo.confirm_email(current, write)
                except StaleRecord:
                    continue
                return self._settle_email(updated)
            raise ConcurrentModification()
        except AppError as refused:
            # As for an admin's change: a refusal leaves nothing changed, a 503 a retry completes.
            if took_email and not isinstance(refused, ServiceUnavailable):
                self._give_back_email(sub)
            raise

    def _check_code(self, current: User, stored: Stored, code: str, write: Write) -> None:
        assert stored.code is not None
        attempts = stored.code.attempts
        if attempts >= MAX_CODE_ATTEMPTS:
            raise InvalidEmailCode("Too many wrong codes: ask for the change again with PUT /users/me")
        if hmac.compare_digest(code_hash(stored.code.salt, code), stored.code.code_hash):
            return
        for _ in range(MAX_ATTEMPTS):
            try:
                self._repo.count_wrong_code(current, attempts, write)
                break
            except StaleRecord:
                again = self._repo.read(current.user_id)
                if again is None or again.code is None or again.user.revision != current.revision:
                    raise NoEmailChangePending() from None  # replaced, confirmed or cancelled meanwhile
                attempts = again.code.attempts
                if attempts >= MAX_CODE_ATTEMPTS:
                    break
        left = max(MAX_CODE_ATTEMPTS - attempts - 1, 0)
        raise InvalidEmailCode(
            f"The code is not the one mailed to the new address; {left} attempt{'s' if left != 1 else ''} left"
        )

    def _settle_email(self, updated: User) -> User:
        """After the record took its new email: the revocation check knows it at once, the sign-in
        holds it, and the answer waits until a token issued after it is stamped later than the
        revocation (a token of the old address is refused, one of the new accepted)."""
        self._standing_changed(updated.user_id, standing_of(updated, tokens_valid_after(updated.updated_at)))
        self._follow(updated, (EMAIL,))
        self._wait_until(tokens_valid_from(updated.updated_at))
        return updated
