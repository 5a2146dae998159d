"""The UserRepository contract (chalicelib/domain/repository.py), run against both implementations: the
DynamoDB adapter on moto and the in-memory fake the service tests use. One suite, so the fake
cannot drift from what DynamoDB does, and every service test built on it means something."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import pytest

from chalicelib.adapters.dynamodb import ADMIN_COUNT, ADMIN_COUNT_KEY, DynamoUserRepository
from chalicelib.adapters.table_schema import EMAIL_KEY_PREFIX
from chalicelib.domain.errors import EmailAlreadyExists, LastAdmin, PreconditionFailed, UserAlreadyExists, UserNotFound
from chalicelib.domain.models import (
    ADMIN,
    NO_RECORD,
    REMOVE,
    Preconditions,
    Revision,
    Standing,
    User,
    UserChanges,
    Write,
    new_write_token,
    tokens_valid_after,
)
from chalicelib.domain.repository import (
    ClockBehind,
    Deleted,
    EmailChangeRequired,
    StaleRecord,
    Stored,
    Unchanged,
    UserRepository,
)
from chalicelib.domain.search import UserQuery
from tests.integration.conftest import TABLE
from tests.unit.fakes import FakeUserRepository

NOW = "2026-01-01T00:00:00.000Z"
LATER = "2026-01-02T00:00:00.000Z"


class Inspect(Protocol):
    """What a test reads beside the contract: the email reservations and the admin count."""

    def owner(self, email_key: str) -> str | None: ...

    def admins(self) -> int: ...


@dataclass
class Subject:
    repo: UserRepository
    inspect: Inspect


class FakeInspect:
    def __init__(self, repo: FakeUserRepository) -> None:
        self._repo = repo

    def owner(self, email_key: str) -> str | None:
        return self._repo.reservations.get(email_key)

    def admins(self) -> int:
        return self._repo.enabled_admins


class DynamoInspect:
    def __init__(self, client: Any) -> None:
        self._client = client

    def owner(self, email_key: str) -> str | None:
        item = self._client.get_item(TableName=TABLE, Key={"userId": {"S": EMAIL_KEY_PREFIX + email_key}}).get("Item")
        return item["ownerId"]["S"] if item else None

    def admins(self) -> int:
        item = self._client.get_item(TableName=TABLE, Key=ADMIN_COUNT_KEY).get("Item")
        return int(item[ADMIN_COUNT]["N"]) if item else 0


@pytest.fixture(params=["fake", "dynamodb"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    if request.param == "fake":
        fake = FakeUserRepository()
        yield Subject(fake, FakeInspect(fake))
        return
    ddb = request.getfixturevalue("ddb")
    yield Subject(DynamoUserRepository(TABLE, client=ddb), DynamoInspect(ddb))


def w(token: str | None = None, at: str = LATER, actor: str = "tester") -> Write:
    return Write(token or new_write_token(), actor, at)


def user(user_id: str = "u-1", email: str = "ada@example.com", **fields: Any) -> User:
    return User(user_id=user_id, name="Ada", email=email, created_at=NOW, updated_at=NOW, version=1, **fields)


# --- create, get, find, standing ------------------------------------------------------------


def test_create_stores_the_user_and_reserves_its_email_case_insensitively(subject: Subject) -> None:
    repo = subject.repo
    assert repo.create(user(email="Ada@Example.com"), w()) == user(email="Ada@Example.com")
    assert repo.get("u-1") == repo.find("u-1") == user(email="Ada@Example.com")
    assert subject.inspect.owner("ada@example.com") == "u-1"
    assert repo.get("missing") is None and repo.find("missing") is None
    with pytest.raises(EmailAlreadyExists):
        repo.create(user("u-2", email=" ADA@example.COM".strip()), w())
    with pytest.raises(UserAlreadyExists):
        repo.create(user(email="other@example.com"), w())
    assert repo.get("u-2") is None and subject.inspect.owner("other@example.com") is None


def test_a_resent_create_returns_the_stored_user(subject: Subject) -> None:
    write = w("create-1")
    subject.repo.create(user(), write)
    assert subject.repo.create(user(), write) == user()


def test_standing_tells_a_missing_a_present_and_a_deleted_user_apart(subject: Subject) -> None:
    repo = subject.repo
    assert repo.standing("u-1") == NO_RECORD
    repo.create(user(role=ADMIN), w())
    assert repo.standing("u-1") == Standing(exists=True, enabled=True, role=ADMIN)
    repo.create(user("u-2", email="b@example.com"), w())
    repo.delete(user("u-2", email="b@example.com"), w())
    assert repo.standing("u-2") == Standing(exists=True, deleted=True, enabled=False)


# --- update ---------------------------------------------------------------------------------


def test_update_applies_the_changes_and_bumps_the_version_only(subject: Subject) -> None:
    subject.repo.create(user(phone="+14155550100"), w())
    updated = subject.repo.update("u-1", UserChanges(name="Ada L.", phone=REMOVE), w(at=LATER))
    assert updated == replace(user(), name="Ada L.", phone=None, version=2, updated_at=LATER)
    assert subject.repo.get("u-1") == updated


def test_update_creates_nothing_and_never_touches_a_reservation(subject: Subject) -> None:
    subject.repo.create(user(), w())
    for user_id in ("ghost", EMAIL_KEY_PREFIX + "ada@example.com"):
        with pytest.raises(UserNotFound):
            subject.repo.update(user_id, UserChanges(name="x"), w())
    assert subject.repo.get("ghost") is None and subject.inspect.owner("ada@example.com") == "u-1"


def test_update_expecting_another_email_key_hands_back_the_stored_user(subject: Subject) -> None:
    subject.repo.create(user(), w())
    with pytest.raises(EmailChangeRequired) as caught:
        subject.repo.update("u-1", UserChanges(email="new@example.com"), w(), expect_email_key="new@example.com")
    assert caught.value.current == user() == subject.repo.get("u-1")


def test_an_update_that_changes_no_field_writes_nothing(subject: Subject) -> None:
    subject.repo.create(user(phone="+14155550100"), w())
    for changes in (
        UserChanges(name="Ada"),
        UserChanges(phone="+14155550100"),
        UserChanges(name="Ada", phone="+14155550100"),
    ):
        with pytest.raises(Unchanged) as same:
            subject.repo.update("u-1", changes, w())
        assert same.value.current == user(phone="+14155550100") == subject.repo.get("u-1")
    # Preconditions still apply to a no-op: a stale If-Match is refused, not "unchanged".
    with pytest.raises(PreconditionFailed):
        subject.repo.update(
            "u-1", UserChanges(name="Ada"), w(), preconditions=Preconditions(if_match=(Revision(7, NOW),))
        )
    # One field that differs is a change.
    assert subject.repo.update("u-1", UserChanges(name="Ada", phone=REMOVE), w()).version == 2


def test_an_update_stamped_no_later_than_the_stored_record_writes_nothing(subject: Subject) -> None:
    """Another writer's clock is ahead: updatedAt must grow with the version."""
    subject.repo.create(user(), w())
    for at in (NOW, "2025-12-31T23:59:59.999Z"):
        with pytest.raises(ClockBehind) as behind:
            subject.repo.update("u-1", UserChanges(name="Bo"), w(at=at))
        assert behind.value.current == user() == subject.repo.get("u-1")


def test_change_and_delete_stamp_after_the_revision_they_replace(subject: Subject) -> None:
    later = replace(user(), updated_at=LATER)
    subject.repo.create(later, w())
    changed = subject.repo.change(later, UserChanges(email="new@example.com"), w(at=NOW))
    assert changed.updated_at == "2026-01-02T00:00:00.001Z" == subject.repo.get("u-1").updated_at  # type: ignore[union-attr]
    subject.repo.delete(changed, w("delete-1", at=NOW))
    deleted = subject.repo.find("u-1")
    assert isinstance(deleted, Deleted) and deleted.at == "2026-01-02T00:00:00.002Z"


def test_read_tells_which_request_last_wrote_the_user(subject: Subject) -> None:
    assert subject.repo.read("u-1") is None
    subject.repo.create(user(), w("create-1"))
    assert subject.repo.read("u-1") == Stored(user(), "create-1")
    updated = subject.repo.update("u-1", UserChanges(name="Bo"), w("update-1"))
    assert subject.repo.read("u-1") == Stored(updated, "update-1")
    subject.repo.delete(updated, w())
    assert subject.repo.read("u-1") is None


def test_update_refuses_role_and_enabled(subject: Subject) -> None:
    subject.repo.create(user(), w())
    with pytest.raises(ValueError, match="change"):
        subject.repo.update("u-1", UserChanges(role=ADMIN), w())


@pytest.mark.parametrize(
    ("conditions", "allowed"),
    [
        (Preconditions(if_match=(Revision(1, NOW),)), True),
        (Preconditions(if_match=(Revision(7, NOW), Revision(1, NOW))), True),
        (Preconditions(if_match=(Revision(1, "2000-01-01T00:00:00.000Z"),)), False),
        (Preconditions(if_match=()), False),
        (Preconditions(if_none_match=(Revision(1, NOW),)), False),
        (Preconditions(if_none_match=(Revision(9, NOW), Revision(1, NOW))), False),
        (Preconditions(if_none_match=(Revision(9, NOW),)), True),
    ],
)
def test_update_preconditions_are_part_of_the_write(subject: Subject, conditions: Preconditions, allowed: bool) -> None:
    subject.repo.create(user(), w())
    if allowed:
        assert subject.repo.update("u-1", UserChanges(name="Bo"), w(), preconditions=conditions).version == 2
    else:
        with pytest.raises(PreconditionFailed):
            subject.repo.update("u-1", UserChanges(name="Bo"), w(), preconditions=conditions)
        assert subject.repo.get("u-1") == user()


def test_a_resent_update_is_recognised_even_under_the_if_match_it_satisfied(subject: Subject) -> None:
    subject.repo.create(user(), w())
    write, conditions = w("update-1", at=LATER), Preconditions(if_match=(Revision(1, NOW),))
    first = subject.repo.update("u-1", UserChanges(name="Bo"), write, preconditions=conditions)
    assert subject.repo.update("u-1", UserChanges(name="Bo"), write, preconditions=conditions) == first
    assert subject.repo.get("u-1") == first and first.version == 2


# --- change (email, role, enabled) ----------------------------------------------------------


def test_change_moves_the_email_reservation_in_one_step(subject: Subject) -> None:
    subject.repo.create(user(), w())
    updated = subject.repo.change(user(), UserChanges(email="new@example.com"), w(at=LATER))
    assert (updated.email, updated.version) == ("new@example.com", 2) and subject.repo.get("u-1") == updated
    assert subject.inspect.owner("ada@example.com") is None and subject.inspect.owner("new@example.com") == "u-1"


def test_change_on_a_stale_revision_or_to_a_taken_email_changes_nothing(subject: Subject) -> None:
    subject.repo.create(user(), w())
    subject.repo.create(user("u-2", email="taken@example.com"), w())
    with pytest.raises(EmailAlreadyExists):
        subject.repo.change(user(), UserChanges(email="Taken@example.com"), w())
    subject.repo.update("u-1", UserChanges(name="moved on"), w())
    with pytest.raises(StaleRecord):
        subject.repo.change(user(), UserChanges(email="new@example.com"), w())
    assert subject.inspect.owner("new@example.com") is None and subject.inspect.owner("ada@example.com") == "u-1"


def test_a_resent_change_is_recognised(subject: Subject) -> None:
    subject.repo.create(user(), w())
    write = w("change-1", at=LATER)
    first = subject.repo.change(user(), UserChanges(email="new@example.com"), write)
    assert subject.repo.change(user(), UserChanges(email="new@example.com"), write) == first
    assert subject.repo.get("u-1") == first


def test_role_and_state_changes_count_the_enabled_admins_and_revoke_earlier_tokens(subject: Subject) -> None:
    repo = subject.repo
    repo.create(user(role=ADMIN), w())
    repo.create(user("u-2", email="b@example.com"), w())
    assert subject.inspect.admins() == 1
    promoted = repo.change(user("u-2", email="b@example.com"), UserChanges(role=ADMIN), w(at=LATER))
    assert subject.inspect.admins() == 2
    assert repo.standing("u-2") == Standing(True, False, True, ADMIN, tokens_valid_after(LATER))
    disabled = repo.change(promoted, UserChanges(enabled=False), w(at=LATER))
    assert subject.inspect.admins() == 1 and repo.standing("u-2").enabled is False
    # The last enabled admin stays: demoting, disabling or deleting it is refused.
    for changes in (UserChanges(role="member"), UserChanges(enabled=False)):
        with pytest.raises(LastAdmin):
            repo.change(user(role=ADMIN), changes, w())
    with pytest.raises(LastAdmin):
        repo.delete(user(role=ADMIN), w())
    assert repo.get("u-1") == user(role=ADMIN) and subject.inspect.admins() == 1
    # A disabled admin is not counted: deleting it moves nothing.
    repo.delete(disabled, w())
    assert subject.inspect.admins() == 1


# --- delete ---------------------------------------------------------------------------------


def test_delete_leaves_a_trace_frees_the_email_and_is_conditioned_on_the_revision(subject: Subject) -> None:
    repo = subject.repo
    repo.create(user(), w())
    with pytest.raises(StaleRecord):
        repo.delete(replace(user(), version=7), w())
    with pytest.raises(StaleRecord):
        repo.delete(replace(user(), created_at="2000-01-01T00:00:00.000Z"), w())
    repo.delete(user(), w("delete-1", actor="admin-sub", at=LATER))
    assert repo.get("u-1") is None and subject.inspect.owner("ada@example.com") is None
    assert repo.find("u-1") == Deleted("u-1", "delete-1", "admin-sub", LATER)
    repo.delete(user(), w("delete-1", actor="admin-sub", at=LATER))  # resent: recognised
    with pytest.raises(StaleRecord):
        repo.delete(user(), w("delete-2"))  # anyone else's delete finds it gone


def test_a_trace_is_no_user_and_nothing_brings_the_user_back(subject: Subject) -> None:
    """Ids are Cognito subs, never reused: a deleted user stays deleted, whoever creates it again
    (a late resend of its create, or its own stale token making a profile)."""
    repo = subject.repo
    create = w("create-1")
    repo.create(user(), create)
    repo.delete(user(), w())
    assert repo.list_page(10, None) == ([], None)
    assert repo.search(UserQuery(q="ad"), 10, None) == ([], None)
    with pytest.raises(UserNotFound):
        repo.update("u-1", UserChanges(name="x"), w())
    for write in (create, w()):
        with pytest.raises(UserAlreadyExists):
            repo.create(replace(user(), created_at=LATER, updated_at=LATER), write)
    assert repo.get("u-1") is None and subject.inspect.owner("ada@example.com") is None


# --- list -----------------------------------------------------------------------------------


def walk(repo: UserRepository, query: UserQuery, limit: int) -> list[list[User]]:
    """Every page of a walk: only the last may be short (or empty, where the matches end exactly
    at the end of a page: DynamoDB cannot tell that without reading on)."""
    pages: list[list[User]] = []
    after: str | None = None
    while True:
        page, after = repo.search(query, limit, after)
        pages.append(page)
        assert len(page) <= limit
        if after is None:
            return pages
        assert len(page) == limit, "a page that hands out a cursor is full"
        assert len(pages) < 100, "paging does not terminate"


def test_list_pages_hold_users_only_each_once_oldest_first(subject: Subject) -> None:
    ids = [f"u-{i:02d}" for i in range(7)]
    for n, user_id in enumerate(ids):
        at = f"2026-01-01T00:00:{n:02d}.000Z"
        subject.repo.create(replace(user(user_id, email=f"{user_id}@example.com"), created_at=at), w())
    subject.repo.delete(replace(user("u-03", email="u-03@example.com"), created_at="2026-01-01T00:00:03.000Z"), w())
    seen: list[str] = []
    after: str | None = None
    while True:
        page, after = subject.repo.list_page(3, after)
        assert len(page) <= 3
        seen += [u.user_id for u in page]
        if after is None:
            break
    assert seen == [i for i in ids if i != "u-03"]


def test_an_email_is_found_in_any_case_and_only_while_its_user_holds_it(subject: Subject) -> None:
    repo = subject.repo
    repo.create(user(email="Ada@Example.com"), w())
    assert repo.find_by_email("ada@example.com") == user(email="Ada@Example.com")
    assert repo.find_by_email("grace@example.com") is None
    repo.change(user(email="Ada@Example.com"), UserChanges(email="ada@lovelace.example"), w(at=LATER))
    assert repo.find_by_email("ada@example.com") is None
    assert repo.find_by_email("ada@lovelace.example") is not None
    moved = repo.get("u-1")
    assert moved is not None
    repo.delete(moved, w())
    assert repo.find_by_email("ada@lovelace.example") is None


def test_search_finds_by_state_name_and_email_prefix_in_the_querys_order(subject: Subject) -> None:
    repo = subject.repo
    people = [
        ("u-1", "Ada Lovelace", "ada@example.com", ADMIN, True),
        ("u-2", "Straße", "strasse@example.com", "member", True),
        ("u-3", "ada", "zed@example.com", "member", False),
        ("u-4", "Émile", "emile@example.com", "member", True),
        ("u-5", "Zoë", "adams@example.com", ADMIN, False),
    ]
    for n, (user_id, name, email, role, enabled) in enumerate(people):
        at = f"2026-01-01T00:00:0{n}.000Z"
        stored = User(user_id, name, email, at, at, 1, role=role, enabled=enabled)
        repo.create(stored, w())

    def ids(query: UserQuery, limit: int = 2) -> list[str]:
        return [u.user_id for page in walk(repo, query, limit) for u in page]

    assert ids(UserQuery()) == ["u-5", "u-4", "u-3", "u-2", "u-1"]
    assert ids(UserQuery(sort="createdAt")) == ["u-1", "u-2", "u-3", "u-4", "u-5"]
    # By name key: "ada" before "ada lovelace", "strasse", "zoë", then "émile" (above ASCII).
    assert ids(UserQuery(sort="name")) == ["u-3", "u-1", "u-2", "u-5", "u-4"]
    assert ids(UserQuery(role=ADMIN)) == ["u-5", "u-1"]
    assert ids(UserQuery(enabled=False, sort="name")) == ["u-3", "u-5"]
    assert ids(UserQuery(role="member", enabled=True)) == ["u-4", "u-2"]
    # q: name or email prefix, by the key that matched: "ada" (u-3's name), "ada lovelace" (u-1's
    # name, also its email "ada@..." which sorts after it: once), "adams@..." (u-5's email).
    assert ids(UserQuery(q="ADA")) == ["u-3", "u-1", "u-5"]
    assert ids(UserQuery(q="ada", role=ADMIN)) == ["u-1", "u-5"]
    assert ids(UserQuery(q="STRASSE")) == ["u-2"]
    assert ids(UserQuery(q="straß")) == ["u-2"]
    assert ids(UserQuery(q="émi")) == ["u-4"]
    assert ids(UserQuery(q="e\u0301mi")) == ["u-4"]  # NFD: the same text
    assert ids(UserQuery(q="emi")) == ["u-4"]  # its email, not its name (accents count)
    assert ids(UserQuery(q="zo")) == ["u-5"]
    assert ids(UserQuery(q="nobody")) == []


def test_a_deleted_user_leaves_every_search(subject: Subject) -> None:
    repo = subject.repo
    repo.create(user(), w())
    repo.delete(user(), w())
    for query in (UserQuery(), UserQuery(sort="name"), UserQuery(q="ad")):
        assert repo.search(query, 10, None) == ([], None)


def test_a_change_of_role_state_name_or_email_moves_the_user_in_the_searches(subject: Subject) -> None:
    repo = subject.repo
    repo.create(user(), w())
    changed = repo.change(user(), UserChanges(role=ADMIN, enabled=False, email="lovelace@example.com"), w(at=LATER))
    assert repo.search(UserQuery(role="member"), 10, None) == ([], None)
    assert repo.search(UserQuery(role=ADMIN, enabled=False), 10, None) == ([changed], None)
    renamed = repo.update("u-1", UserChanges(name="Countess"), w(at="2026-01-03T00:00:00.000Z"))
    assert repo.search(UserQuery(q="ada"), 10, None) == ([], None)
    assert repo.search(UserQuery(q="count"), 10, None) == ([renamed], None)
    assert repo.search(UserQuery(q="lovel"), 10, None) == ([renamed], None)
