"""In-memory stand-ins for the service's collaborators: a repository, an idempotency store, a clock.

`FakeUserRepository` follows the `UserRepository` protocol of chalicelib/domain/repository.py and the
semantics of the DynamoDB adapter: one user record per id plus one email reservation per
case-insensitive email key, every write conditional, nothing changed when a condition fails.
It counts calls per method so tests can assert how many storage requests a use case makes,
and it can be told to fail the next N calls of a method with StaleRecord (a concurrent writer)
or to run a hook just before a method (to simulate a race).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, cast

from chalicelib.domain.errors import (
    EmailAlreadyExists,
    IdempotencyKeyReused,
    IdempotentRequestInFlight,
    LastAdmin,
    NoEmailChangePending,
    ServiceUnavailable,
    UserAlreadyExists,
    UserNotFound,
)
from chalicelib.domain.idempotency import LOCK_S, RECORD_TTL_S, Claimed, IdempotencyStore, StoredResponse, retry_after
from chalicelib.domain.identity import (
    EmailTaken,
    IdentityProvider,
    SignIn,
    SignInExists,
    SignInMissing,
    SignInRefused,
)
from chalicelib.domain.models import (
    NO_PRECONDITIONS,
    NO_RECORD,
    Preconditions,
    Standing,
    User,
    UserChanges,
    Write,
    apply_changes,
    email_key,
    later_than,
    timestamp,
    tokens_valid_after,
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
    check_update,
)
from chalicelib.domain.search import SORT_CREATED, SORT_NEWEST, UserQuery, sort_key


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeTime:
    """The service's clock (ISO timestamps) that stands still until something sleeps: `sleep`
    moves it on, and records how long each wait was."""

    def __init__(self, start: str = "2024-01-01T00:00:00.000Z") -> None:
        self.now = datetime.fromisoformat(start.replace("Z", "+00:00"))
        self.slept: list[float] = []

    def iso(self) -> str:
        return timestamp(self.now)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_user(
    user_id: str = "user-1",
    name: str = "Ann",
    email: str = "ann@example.com",
    phone: str | None = None,
    version: int = 1,
    now: str = "2024-01-01T00:00:00.000Z",
    role: str = "member",
    enabled: bool = True,
) -> User:
    return User(
        user_id=user_id,
        name=name,
        email=email,
        role=role,
        enabled=enabled,
        phone=phone,
        created_at=now,
        updated_at=now,
        version=version,
    )


class FakeUserRepository:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.reservations: dict[str, str] = {}  # email key -> owner user id
        self.write_tokens: dict[str, str] = {}  # user id -> token of the request that last wrote it
        self.create_tokens: dict[str, str] = {}  # user id -> token of the request that created it
        self.actors: dict[str, str] = {}  # user id -> sub of the caller that last wrote it
        self.deleted: dict[str, Deleted] = {}  # user id -> the trace its deletion left
        self.enabled_admins = 0  # the counter the adapter keeps in the table
        self.tokens_valid_after: dict[str, int] = {}  # user id -> epoch seconds (revocation)
        self.pending_until: dict[str, str] = {}  # email key of a pending reservation -> until when
        self.action_tokens: dict[str, tuple[str, ...]] = {}  # user id -> recent sign-in actions' tokens
        self.actions: list[tuple[str, str]] = []  # (user id, action) recorded, in order
        self.codes: dict[str, PendingCode] = {}  # user id -> its pending email change's code
        self.calls: Counter[str] = Counter()
        # method name -> how many of its next calls fail with StaleRecord before doing anything
        self.stale_next: Counter[str] = Counter()
        # method name -> how many of its next calls do their work and then lose the answer
        # (ServiceUnavailable, as when every attempt timed out after the first was applied)
        self.lose_answer_next: Counter[str] = Counter()
        self._hooks: dict[str, list[Callable[[], None]]] = {}

    # --- test helpers (not part of the protocol, never counted) ---

    def seed(self, user: User) -> User:
        """Store a user and its reservation directly, as if created earlier."""
        key = email_key(user.email)
        assert user.user_id not in self.users and key not in self.reservations, "seed() needs a fresh user"
        self.users[user.user_id] = user
        self.reservations[key] = user.user_id
        self.enabled_admins += int(user.is_active_admin)
        return user

    def before(self, method: str, hook: Callable[[], None]) -> None:
        """Run `hook` once, just before the next call of `method` does its work."""
        self._hooks.setdefault(method, []).append(hook)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def reset_calls(self) -> None:
        self.calls.clear()

    def email_owner(self, email: str) -> str | None:
        return self.reservations.get(email_key(email))

    def _enter(self, method: str) -> None:
        self.calls[method] += 1
        hooks = self._hooks.pop(method, [])
        for hook in hooks:
            hook()
        if self.stale_next[method] > 0:
            self.stale_next[method] -= 1
            raise StaleRecord()

    def _answer(self, method: str) -> None:
        if self.lose_answer_next[method] > 0:
            self.lose_answer_next[method] -= 1
            raise ServiceUnavailable()

    def _stamp(self, user: User, write: Write) -> None:
        self.users[user.user_id] = user
        self.write_tokens[user.user_id] = write.token
        self.actors[user.user_id] = write.actor
        self.deleted.pop(user.user_id, None)

    # --- UserRepository ---

    def get(self, user_id: str) -> User | None:
        self._enter("get")
        return self.users.get(user_id)

    def read(self, user_id: str) -> Stored | None:
        self._enter("read")
        user = self.users.get(user_id)
        if user is None:
            return None
        return Stored(
            user, self.write_tokens.get(user_id, ""), self.action_tokens.get(user_id, ()), self.codes.get(user_id)
        )

    def find(self, user_id: str) -> User | Deleted | None:
        self._enter("find")
        return self.users.get(user_id) or self.deleted.get(user_id)

    def standing(self, user_id: str) -> Standing:
        self._enter("standing")
        user = self.users.get(user_id)
        if user is None:
            return Standing(exists=True, deleted=True, enabled=False) if user_id in self.deleted else NO_RECORD
        return Standing(True, False, user.enabled, user.role, self.tokens_valid_after.get(user_id, 0))

    def create(self, user: User, write: Write) -> User:
        self._enter("create")
        existing = self.users.get(user.user_id)
        if existing is not None:
            if self.create_tokens.get(user.user_id) == write.token:
                return existing  # this request's own earlier attempt
            raise UserAlreadyExists()
        if user.user_id in self.deleted:
            raise UserAlreadyExists()  # a deleted user's trace: never brought back
        key = email_key(user.email)
        if key in self.reservations:
            raise EmailAlreadyExists()
        self._stamp(user, write)
        self.create_tokens[user.user_id] = write.token
        self.reservations[key] = user.user_id
        self.enabled_admins += int(user.is_active_admin)
        self._answer("create")
        return user

    def update(
        self,
        user_id: str,
        changes: UserChanges,
        write: Write,
        *,
        expect_email_key: str | None = None,
        preconditions: Preconditions = NO_PRECONDITIONS,
    ) -> User:
        check_update(changes, expect_email_key, preconditions)  # before any request, as the adapter
        self._enter("update")
        current = self.users.get(user_id)
        if current is None:
            raise UserNotFound()
        if self.write_tokens.get(user_id) == write.token:
            return current
        refusal = preconditions.refusal(current.revision)
        if refusal is not None:
            raise refusal
        if expect_email_key is not None and email_key(current.email) != expect_email_key:
            raise EmailChangeRequired(current)
        if changes.against(current).is_empty():
            raise Unchanged(current)
        if current.updated_at >= write.at:
            raise ClockBehind(current)
        updated = apply_changes(current, changes, write.at)
        self._stamp(updated, write)
        self._answer("update")
        return updated

    def change(self, current: User, changes: UserChanges, write: Write) -> User:
        self._enter("change")
        write = replace(write, at=later_than(write.at, current.updated_at))
        updated = apply_changes(current, changes, write.at)
        old_key, new_key = email_key(current.email), email_key(updated.email)
        stored = self.users.get(current.user_id)
        if stored is not None and self.write_tokens.get(current.user_id) == write.token:
            return stored
        # Checked in the order the DynamoDB adapter reports them: a taken email wins.
        if new_key != old_key and self._taken(new_key, current.user_id, write.at):
            raise EmailAlreadyExists()
        if stored is None or stored.revision != current.revision:
            raise StaleRecord()
        delta = int(updated.is_active_admin) - int(current.is_active_admin)
        if delta < 0 and self.enabled_admins <= 1:
            raise LastAdmin()
        if new_key != old_key:
            if self.reservations.get(old_key) == current.user_id:
                del self.reservations[old_key]
            pending = email_key(current.pending_email) if current.pending_email else None
            if pending is not None and pending != new_key and self.reservations.get(pending) == current.user_id:
                del self.reservations[pending]
            self.reservations[new_key] = current.user_id
            self.pending_until.pop(new_key, None)
            if pending is not None:
                self.pending_until.pop(pending, None)
                self.codes.pop(current.user_id, None)
        self.enabled_admins += delta
        if changes.touches_standing:
            self.tokens_valid_after[current.user_id] = tokens_valid_after(write.at)
        self._stamp(updated, write)
        self._answer("change")
        return updated

    def delete(self, current: User, write: Write) -> None:
        self._enter("delete")
        write = replace(write, at=later_than(write.at, current.updated_at))
        trace = self.deleted.get(current.user_id)
        if trace is not None and trace.token == write.token:
            return
        stored = self.users.get(current.user_id)
        if stored is None or stored.revision != current.revision:
            raise StaleRecord()
        if current.is_active_admin and self.enabled_admins <= 1:
            raise LastAdmin()
        self.enabled_admins -= int(current.is_active_admin)
        del self.users[current.user_id]
        self.write_tokens[current.user_id] = write.token
        self.actors[current.user_id] = write.actor
        self.deleted[current.user_id] = Deleted(current.user_id, write.token, write.actor, write.at)
        key = email_key(current.email)
        if self.reservations.get(key) == current.user_id:
            del self.reservations[key]
        self._answer("delete")

    def _taken(self, key: str, owner: str, now: str) -> bool:
        holder = self.reservations.get(key)
        if holder is None or holder == owner:
            return False
        until = self.pending_until.get(key)
        return until is None or until >= now

    def record_action(self, stored: Stored, action: str, write: Write, *, revoke: bool) -> User:
        self._enter("record_action")
        current = stored.user
        write = replace(write, at=later_than(write.at, current.updated_at))
        found = self.users.get(current.user_id)
        if found is not None and self.write_tokens.get(current.user_id) == write.token:
            return found
        if found is None or found.revision != current.revision:
            raise StaleRecord()
        updated = replace(current, updated_at=write.at, version=current.version + 1)
        self.action_tokens[current.user_id] = (*stored.action_tokens[-4:], write.token)
        self.actions.append((current.user_id, action))
        if revoke:
            self.tokens_valid_after[current.user_id] = tokens_valid_after(write.at)
        self._stamp(updated, write)
        self._answer("record_action")
        return updated

    def request_email(self, current: User, email: str, code: PendingCode, until: str, write: Write) -> User:
        self._enter("request_email")
        write = replace(write, at=later_than(write.at, current.updated_at))
        found = self.users.get(current.user_id)
        if found is not None and self.write_tokens.get(current.user_id) == write.token:
            return found
        key = email_key(email)
        if self._taken(key, current.user_id, write.at):
            raise EmailAlreadyExists()
        if found is None or found.revision != current.revision:
            raise StaleRecord()
        previous = email_key(current.pending_email) if current.pending_email else None
        if previous is not None and previous not in (key, email_key(current.email)):
            if self.reservations.get(previous) == current.user_id:
                del self.reservations[previous]
            self.pending_until.pop(previous, None)
        self.reservations[key] = current.user_id
        self.pending_until[key] = until
        self.codes[current.user_id] = replace(code, attempts=0, token=write.token)
        updated = replace(
            current, updated_at=write.at, version=current.version + 1, pending_email=email, pending_until=until
        )
        self._stamp(updated, write)
        self._answer("request_email")
        return updated

    def count_wrong_code(self, current: User, attempts: int, write: Write) -> None:
        self._enter("count_wrong_code")
        found = self.users.get(current.user_id)
        code = self.codes.get(current.user_id)
        if found is None or found.revision != current.revision or code is None or code.attempts != attempts:
            raise StaleRecord()
        self.codes[current.user_id] = replace(code, attempts=attempts + 1)

    def confirm_email(self, current: User, write: Write) -> User:
        self._enter("confirm_email")
        if current.pending_email is None:
            raise NoEmailChangePending()
        write = replace(write, at=later_than(write.at, current.updated_at))
        found = self.users.get(current.user_id)
        if found is not None and self.write_tokens.get(current.user_id) == write.token:
            return found
        if found is None or found.revision != current.revision:
            raise StaleRecord()
        key, old_key = email_key(current.pending_email), email_key(current.email)
        if self.reservations.get(key) != current.user_id:
            raise NoEmailChangePending()
        updated = apply_changes(current, UserChanges(email=current.pending_email), write.at)
        self.pending_until.pop(key, None)
        if self.reservations.get(old_key) == current.user_id and old_key != key:
            del self.reservations[old_key]
        self.codes.pop(current.user_id, None)
        self.tokens_valid_after[current.user_id] = tokens_valid_after(write.at)
        self._stamp(updated, write)
        self._answer("confirm_email")
        return updated

    def find_by_email(self, key: str) -> User | None:
        self._enter("find_by_email")
        owner = self.reservations.get(key)
        return self.users.get(owner) if owner is not None else None

    def search(self, query: UserQuery, limit: int, after: str | None) -> tuple[list[User], str | None]:
        """The users `query` matches, ordered by the domain's own sort key (chalicelib/domain/search.py),
        which is what the DynamoDB indexes hold: the contract suite holds the two to one order."""
        self._enter("search")
        newest_first = query.q is None and query.sort == SORT_NEWEST
        keyed = sorted(
            ((sort_key(query, user), user) for user in self.users.values() if query.matches(user)),
            key=lambda pair: pair[0],
            reverse=newest_first,
        )
        if after is not None:
            keyed = [(key, user) for key, user in keyed if (key < after if newest_first else key > after)]
        page = keyed[:limit]
        more = len(keyed) > limit
        return [user for _, user in page], (page[-1][0] if more else None)

    def list_page(self, limit: int, after: str | None) -> tuple[list[User], str | None]:
        return self.search(UserQuery(sort=SORT_CREATED), limit, after)


def as_repository(repo: FakeUserRepository) -> UserRepository:
    """Lets mypy check that the fake satisfies the protocol."""
    return repo


class FakeIdempotencyStore:
    """The IdempotencyStore semantics of the DynamoDB adapter, in memory."""

    def __init__(self) -> None:
        # record id -> {"fingerprint", "lock", "locked_until", "write_token", "expires", "response"}
        self.records: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()

    def claim(
        self, record_id: str, fingerprint: str, lock: str, write_token: str, now: int
    ) -> Claimed | StoredResponse:
        self.calls["claim"] += 1
        old = self.records.get(record_id)
        if old is None or old["expires"] < now:
            self.records[record_id] = {
                "fingerprint": fingerprint,
                "lock": lock,
                "locked_until": now + LOCK_S,
                "write_token": write_token,
                "expires": now + RECORD_TTL_S,
                "response": None,
            }
            return Claimed(write_token)
        if old["lock"] == lock and old["response"] is None:
            return Claimed(old["write_token"])
        if old["fingerprint"] != fingerprint:
            raise IdempotencyKeyReused()
        if old["response"] is not None:
            return cast(StoredResponse, old["response"])
        if old["locked_until"] is not None and old["locked_until"] >= now:
            raise IdempotentRequestInFlight(retry_after(old["locked_until"], now))
        self.calls["take_over"] += 1
        old.update(lock=lock, locked_until=now + LOCK_S)
        return Claimed(old["write_token"])

    def complete(self, record_id: str, lock: str, response: StoredResponse, now: int) -> None:
        self.calls["complete"] += 1
        record = self.records.get(record_id)
        if record is not None and record["lock"] == lock:
            record.update(response=response, locked_until=None)

    def release(self, record_id: str, lock: str) -> None:
        self.calls["release"] += 1
        record = self.records.get(record_id)
        if record is not None and record["lock"] == lock:
            del self.records[record_id]

    def unlock(self, record_id: str, lock: str) -> None:
        self.calls["unlock"] += 1
        record = self.records.get(record_id)
        if record is not None and record["lock"] == lock:
            record["locked_until"] = None


def as_idempotency_store(store: FakeIdempotencyStore) -> IdempotencyStore:
    """Lets mypy check that the fake satisfies the protocol."""
    return store


class FakeAvatars:
    """Avatar storage: which users have one, and whether removal fails (storage down)."""

    def __init__(self) -> None:
        self.stored: set[str] = set()
        self.failing = False

    def delete(self, user_id: str) -> None:
        if self.failing:
            raise ServiceUnavailable()
        self.stored.discard(user_id)


class FakeIdentityProvider:
    """The pool in memory: sign-ins by sub, with email, enabled, status and group membership;
    every call recorded as (method, sub or email); `fail_next[method]` raises the given error
    from that method's next call, before it does anything."""

    def __init__(self, subs: Iterator[str] | None = None) -> None:
        self.accounts: dict[str, SignIn] = {}
        self.group: set[str] = set()
        self.signed_out: list[str] = []
        self.invited: list[tuple[str, str]] = []
        self.reset: list[str] = []
        self.mailed: list[tuple[str, str, str]] = []  # (sub, to, code) of email-change codes
        self.passwords: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_next: dict[str, Exception] = {}
        self._subs = subs or (f"sub-{n:03d}" for n in itertools.count(1))

    def _enter(self, method: str, subject: str) -> None:
        self.calls.append((method, subject))
        error = self.fail_next.pop(method, None)
        if error is not None:
            raise error

    def _sign_in(self, sub: str) -> SignIn:
        found = self.accounts.get(sub)
        if found is None:
            raise SignInMissing()
        return found

    def seed(
        self,
        sub: str,
        email: str,
        admin: bool = False,
        status: str = "CONFIRMED",
        enabled: bool = True,
        email_verified: bool = True,
    ) -> None:
        self.accounts[sub] = SignIn(sub, email, enabled, status, email_verified=email_verified)
        if admin:
            self.group.add(sub)

    def create(self, email: str, password: str | None = None) -> str:
        self._enter("create", email)
        existing = self.find_quietly(email)
        if existing is not None:
            raise SignInExists(existing.sub, existing)
        sub = next(self._subs)
        self.accounts[sub] = SignIn(sub, email, True, "CONFIRMED" if password else "FORCE_CHANGE_PASSWORD")
        if password is not None:
            self.passwords[sub] = password
        return sub

    def find_quietly(self, email: str) -> SignIn | None:
        return next((s for s in self.accounts.values() if s.email.lower() == email.lower()), None)

    def invite(self, sub: str, email: str) -> None:
        self._enter("invite", sub)
        self.invited.append((sub, email))

    def reset_password(self, sub: str) -> None:
        self._enter("reset_password", sub)
        found = self._sign_in(sub)
        if not found.enabled or found.never_used:
            raise SignInRefused()
        self.accounts[sub] = replace(found, status="RESET_REQUIRED")
        self.reset.append(sub)

    def sign_out(self, sub: str) -> None:
        self._enter("sign_out", sub)
        self._sign_in(sub)
        self.signed_out.append(sub)

    def ready(self) -> bool:
        return True

    def send_email_code(self, sub: str, to: str, code: str, until: str) -> None:
        """The Mailer of the local stages lives beside the identities: so here."""
        self._enter("send_email_code", sub)
        self.mailed.append((sub, to, code))

    def find(self, email: str) -> SignIn | None:
        self._enter("find", email)
        return self.find_quietly(email)

    def get(self, sub: str) -> SignIn | None:
        self._enter("get", sub)
        found = self.accounts.get(sub)
        return replace(found, admin=sub in self.group) if found is not None else None

    def set_admin(self, sub: str, admin: bool) -> None:
        self._enter("set_admin", sub)
        self._sign_in(sub)
        (self.group.add if admin else self.group.discard)(sub)

    def set_enabled(self, sub: str, enabled: bool) -> None:
        self._enter("set_enabled", sub)
        self.accounts[sub] = replace(self._sign_in(sub), enabled=enabled)
        if not enabled:
            self.signed_out.append(sub)

    def set_email(self, sub: str, email: str) -> None:
        self._enter("set_email", sub)
        holder = self.find_quietly(email)
        if holder is not None and holder.sub != sub:
            raise EmailTaken()
        self.accounts[sub] = replace(self._sign_in(sub), email=email, email_verified=True)

    def delete(self, sub: str) -> None:
        self._enter("delete", sub)
        self.accounts.pop(sub, None)
        self.group.discard(sub)

    def sign_ins_listed(self) -> list[SignIn]:
        return list(self.accounts.values())

    def sign_ins(self) -> Iterator[SignIn]:  # type: ignore[no-redef]
        return iter(list(self.sign_ins_listed()))

    def admins(self) -> set[str]:
        return set(self.group)


def as_identity_provider(provider: FakeIdentityProvider) -> IdentityProvider:
    """Lets mypy check that the fake satisfies the protocol."""
    return provider
