"""In-memory stand-ins for the service's collaborators: a repository, an idempotency store, a clock.

`FakeUserRepository` follows the `UserRepository` protocol of chalicelib/repository.py and the
semantics of the DynamoDB adapter: one user record per id plus one email reservation per
case-insensitive email key, every write conditional, nothing changed when a condition fails.
It counts calls per method so tests can assert how many storage requests a use case makes,
and it can be told to fail the next N calls of a method with StaleRecord (a concurrent writer)
or to run a hook just before a method (to simulate a race).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from chalicelib.errors import (
    EmailAlreadyExists,
    IdempotencyKeyReused,
    IdempotentRequestInFlight,
    PreconditionFailed,
    ServiceUnavailable,
    UserAlreadyExists,
    UserNotFound,
)
from chalicelib.idempotency import LOCK_S, RECORD_TTL_S, Claimed, IdempotencyStore, StoredResponse
from chalicelib.models import NO_PRECONDITIONS, Preconditions, User, UserChanges, Write, apply_changes, email_key
from chalicelib.repository import Deleted, EmailChangeRequired, StaleRecord, UserRepository


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_user(
    user_id: str = "user-1",
    name: str = "Ann",
    email: str = "ann@example.com",
    phone: str | None = None,
    version: int = 1,
    now: str = "2024-01-01T00:00:00.000Z",
) -> User:
    return User(
        user_id=user_id,
        name=name,
        email=email,
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

    def find(self, user_id: str) -> User | Deleted | None:
        self._enter("find")
        return self.users.get(user_id) or self.deleted.get(user_id)

    def create(self, user: User, write: Write) -> User:
        self._enter("create")
        existing = self.users.get(user.user_id)
        if existing is not None:
            if self.create_tokens.get(user.user_id) == write.token:
                return existing  # this request's own earlier attempt
            raise UserAlreadyExists()
        if user.user_id in self.deleted and self.create_tokens.get(user.user_id) == write.token:
            raise UserAlreadyExists()  # a resent create never brings its deleted user back
        key = email_key(user.email)
        if key in self.reservations:
            raise EmailAlreadyExists()
        self._stamp(user, write)
        self.create_tokens[user.user_id] = write.token
        self.reservations[key] = user.user_id
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
        if preconditions.if_match is not None and not preconditions.if_match:
            raise PreconditionFailed()  # decided without a request, as the adapter does
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
        # The contract: update() only applies changes that keep the email key. A caller that
        # sends another email without the matching condition would orphan the reservation.
        if changes.email is not None and email_key(changes.email) != email_key(current.email):
            raise AssertionError("update() called with an email change; use change_email()")
        updated = apply_changes(current, changes, write.at)
        self._stamp(updated, write)
        self._answer("update")
        return updated

    def change_email(self, current: User, changes: UserChanges, write: Write) -> User:
        self._enter("change_email")
        updated = apply_changes(current, changes, write.at)
        old_key, new_key = email_key(current.email), email_key(updated.email)
        stored = self.users.get(current.user_id)
        if (
            stored is not None
            and stored.revision != current.revision
            and self.write_tokens.get(current.user_id) == write.token
        ):
            return stored
        # Checked in the order the DynamoDB adapter reports them: a taken email wins.
        if new_key != old_key and new_key in self.reservations:
            raise EmailAlreadyExists()
        if stored is None or stored.revision != current.revision:
            raise StaleRecord()
        if new_key != old_key:
            if self.reservations.get(old_key) == current.user_id:
                del self.reservations[old_key]
            self.reservations[new_key] = current.user_id
        self._stamp(updated, write)
        self._answer("change_email")
        return updated

    def delete(self, current: User, write: Write) -> None:
        self._enter("delete")
        trace = self.deleted.get(current.user_id)
        if trace is not None and trace.token == write.token:
            return
        stored = self.users.get(current.user_id)
        if stored is None or stored.revision != current.revision:
            raise StaleRecord()
        del self.users[current.user_id]
        self.write_tokens[current.user_id] = write.token
        self.actors[current.user_id] = write.actor
        self.deleted[current.user_id] = Deleted(current.user_id, write.token, write.actor, write.at)
        key = email_key(current.email)
        if self.reservations.get(key) == current.user_id:
            del self.reservations[key]
        self._answer("delete")

    def list_page(self, limit: int, after: str | None) -> tuple[list[User], str | None]:
        self._enter("list_page")
        ids = sorted(self.users)
        if after is not None:
            ids = [user_id for user_id in ids if user_id > after]
        page = [self.users[user_id] for user_id in ids[:limit]]
        more = len(ids) > limit
        return page, (page[-1].user_id if more and page else None)


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
            raise IdempotentRequestInFlight()
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
