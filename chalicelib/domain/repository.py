"""What the user service needs from storage, and the signals storage sends back.

Every write carries a `Write`: its token is stored with the item, so when botocore resends a
request whose first attempt was applied but answered late, the resent attempt's failed
condition hands back the item, the token is recognised, and the write reports the stored
result as its own success instead of applying twice or failing (409, 412, 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chalicelib.domain.errors import PreconditionFailed
from chalicelib.domain.models import NO_PRECONDITIONS, Preconditions, Standing, User, UserChanges, Write, email_key
from chalicelib.domain.search import UserQuery


class EmailChangeRequired(Exception):
    """An update that expected the stored email to keep its key found another one.

    Carries the stored record (returned by the failed conditional write itself), so the
    email change can follow without another read.
    """

    def __init__(self, current: User):
        super().__init__("stored email differs")
        self.current = current


class Unchanged(Exception):
    """An update whose every field already has the value given: nothing was written (no new
    version, no change event). Carries the stored record, returned by the failed condition itself."""

    def __init__(self, current: User):
        super().__init__("nothing to change")
        self.current = current


class ClockBehind(Exception):
    """The stored record was written at or after this write's time (another writer's clock is
    ahead): nothing was written; write again with a later time. Carries the stored record."""

    def __init__(self, current: User):
        super().__init__("stored record is as late as this write")
        self.current = current


class StaleRecord(Exception):
    """The record is no longer the version that was read; read again and retry."""


@dataclass(frozen=True)
class Deleted:
    """What is left of a deleted user for a while: who deleted it, with which request's token."""

    user_id: str
    token: str
    actor: str
    at: str


@dataclass(frozen=True)
class PendingCode:
    """What the record keeps of a requested email change besides the address: a salted hash of
    its code (never the code), the wrong codes tried so far, and the request that asked for it."""

    code_hash: str
    salt: str
    attempts: int
    token: str


@dataclass(frozen=True)
class Stored:
    """A user as stored, with the write token of the request that last wrote it, the tokens of
    the latest sign-in actions (so a keyed retry of one never applies it twice), and the code of
    a pending email change."""

    user: User
    write_token: str
    action_tokens: tuple[str, ...] = ()
    code: PendingCode | None = None


class UserRepository(Protocol):
    def get(self, user_id: str) -> User | None:
        """The user, or None. One strongly consistent read."""

    def read(self, user_id: str) -> Stored | None:
        """The user and who last wrote it (so a keyed retry recognises its own earlier write), or
        None. One strongly consistent read."""

    def find(self, user_id: str) -> User | Deleted | None:
        """The user, the trace of its recent deletion, or None. One strongly consistent read."""

    def standing(self, user_id: str) -> Standing:
        """What the revocation check needs of a caller's record. One eventually consistent read."""

    def create(self, user: User, write: Write) -> User:
        """Store a new user and reserve its email in one request (counting it if it is an
        enabled admin); the stored user.

        Raises UserAlreadyExists or EmailAlreadyExists and stores nothing, unless the user
        stored under that id was created with `write.token` (this request's earlier attempt):
        then that user is returned.
        """

    def update(
        self,
        user_id: str,
        changes: UserChanges,
        write: Write,
        *,
        expect_email_key: str | None = None,
        preconditions: Preconditions = NO_PRECONDITIONS,
    ) -> User:
        """Apply changes that keep the email key and neither role nor enabled, in one request,
        without a read; the updated user, stamped `write.at`.

        Raises UserNotFound (nothing is created); PreconditionFailed when the stored revision
        is not one `preconditions` allow (checked in the write's own condition);
        EmailChangeRequired when `expect_email_key` is not the stored one; Unchanged when every
        field given has that value already; ClockBehind when the stored `updatedAt` is not
        earlier than `write.at`. When the stored user was last written with `write.token`,
        nothing is written and it is returned.
        """

    def change(self, current: User, changes: UserChanges, write: Write) -> User:
        """Apply any changes in one request: a new email moves its reservation, a role or enabled
        change moves the enabled-admin count and revokes the user's earlier tokens
        (`tokensValidAfter`, models.tokens_valid_after). Stamped `write.at`, or one millisecond
        after `current.updated_at` when that is not earlier (models.later_than).

        Conditioned on `current.revision`: raises StaleRecord if it moved on, EmailAlreadyExists,
        or LastAdmin when it would leave no enabled admin; either way nothing changes.
        Recognises its own earlier attempt as `update` does.
        """

    def delete(self, current: User, write: Write) -> None:
        """Replace the user by a `Deleted` trace (deleted at `write.at`, or later than
        `current.updated_at` as `change` does) and release its email in one request, conditioned on
        `current.revision`; StaleRecord if it changed (unless the trace is this request's own);
        LastAdmin if it is the last enabled admin."""

    def record_action(self, stored: Stored, action: str, write: Write, *, revoke: bool) -> User:
        """Record a sign-in action (InvitationResent, PasswordReset, SignedOut) on the user: one
        version later, stamped `write.at` (models.later_than), `write.token` kept among the recent
        action tokens; with `revoke`, tokens issued until now are refused (`tokensValidAfter`).
        Conditioned on `current.revision`: StaleRecord if it moved on; recognises its own
        earlier attempt (`stored`: the record as read, with its recent action tokens). The stream
        makes the write the action's change event."""

    def request_email(self, current: User, email: str, code: PendingCode, until: str, write: Write) -> User:
        """Make `email` the user's pending email until `until`, with its code, and reserve its key
        for them in the same request (a pending reservation: free again after `until`); a pending
        change of another address is replaced and its reservation released. Conditioned on
        `current.revision`: StaleRecord, or EmailAlreadyExists (nothing changed) when another
        user holds the address or has it pending."""

    def count_wrong_code(self, current: User, attempts: int, write: Write) -> None:
        """One more wrong code for the pending change, if the record is still `current` with
        `attempts` of them (StaleRecord otherwise). No new version: nothing a client sees moves.
        A resend of the same request's attempt counts once."""

    def confirm_email(self, current: User, write: Write) -> User:
        """The pending email becomes the user's: record and reservation in one request (the old
        address released, the pending reservation made theirs for good, tokens issued until now
        refused). Conditioned on `current.revision` and on the reservation still being theirs:
        StaleRecord or NoEmailChangePending otherwise; recognises its own earlier attempt."""

    def find_by_email(self, key: str) -> User | None:
        """The user holding this email key (chalicelib/domain/models.py `email_key`), or None. Reads
        as many items whatever the table holds (the DynamoDB adapter: the email's reservation,
        then its owner)."""

    def search(self, query: UserQuery, limit: int, after: str | None) -> tuple[list[User], str | None]:
        """Up to `limit` users matching `query` (its email aside: see find_by_email), in its order
        (chalicelib/domain/search.py `sort_key`), after the position `after` (a sort key); and the
        position to continue after, or None when no user can follow. A page may be short or
        empty where the matches end, and a `q` page also where it passed over users it listed
        earlier under their other key (the DynamoDB adapter stops after `limit` of them). Every
        user whose sort key does not change meanwhile is on exactly one page of a walk."""

    def list_page(self, limit: int, after: str | None) -> tuple[list[User], str | None]:
        """Every user, oldest first, a page at a time: `search` with no filter (for tools that walk
        all users); `after` is a position it returned."""


def check_update(changes: UserChanges, expect_email_key: str | None, preconditions: Preconditions) -> None:
    """What every repository's update() decides before any request: changes it does not take
    (ValueError: a caller's mistake) and an If-Match that no revision can meet."""
    if changes.touches_standing:
        raise ValueError("a role or enabled change moves the admin count: use change()")
    if changes.email is not None and expect_email_key != email_key(changes.email):
        raise ValueError("an email that may move its reservation: expect its key, or use change()")
    if preconditions.if_match is not None and not preconditions.if_match:
        raise PreconditionFailed()
