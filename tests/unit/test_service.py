from __future__ import annotations

import itertools

import pytest

from chalicelib.domain.cursor import CursorCodec, CursorScope
from chalicelib.domain.errors import (
    ConcurrentModification,
    EmailAlreadyExists,
    Forbidden,
    InvalidCursor,
    PreconditionFailed,
    ServiceUnavailable,
    Unauthorized,
    UserAlreadyExists,
    UserNotFound,
    ValidationError,
)
from chalicelib.domain.identity import SignInExists
from chalicelib.domain.models import REMOVE, NewUser, Preconditions, Revision, User, UserChanges
from chalicelib.domain.search import UserQuery
from chalicelib.domain.service import MAX_ATTEMPTS, UserService, utc_now
from tests.unit.fakes import FakeAvatars, FakeIdentityProvider, FakeTime, FakeUserRepository, make_user

NOW = "2024-05-05T12:00:00.000Z"


@pytest.fixture
def clock() -> FakeTime:
    """Stands at NOW until the service waits (models.tokens_valid_from)."""
    return FakeTime(NOW)


@pytest.fixture
def repo() -> FakeUserRepository:
    return FakeUserRepository()


@pytest.fixture
def identities() -> FakeIdentityProvider:
    return FakeIdentityProvider(subs=(f"id-{n:03d}" for n in itertools.count(1)))


@pytest.fixture
def service(repo, identities, clock) -> UserService:
    return UserService(
        repo, CursorCodec(b"a-cursor-secret-of-32-bytes-long"), identities, clock=clock.iso, sleep=clock.sleep
    )


def seeded(repo: FakeUserRepository, user: User) -> User:
    repo.seed(user)
    repo.reset_calls()
    return user


# --- create / get ---


def test_create_user(service, repo):
    user = service.create_user(NewUser(name="Ann", email="Ann@Example.com", phone="+14155550123"))
    assert user == User(
        user_id="id-001",
        name="Ann",
        email="Ann@Example.com",
        phone="+14155550123",
        created_at=NOW,
        updated_at=NOW,
        version=1,
    )
    assert repo.users["id-001"] == user
    assert repo.email_owner("ann@example.com") == "id-001"
    assert repo.calls == {"create": 1}


def test_a_users_id_is_its_sign_ins_sub_and_a_create_retried_with_its_token_names_the_same_user(
    service, repo, identities
):
    user = service.create_user(NewUser(name="Ann", email="a@example.com"), token="t-1")
    assert user.user_id == "id-001" and identities.accounts["id-001"].email == "a@example.com"
    assert service.create_user(NewUser(name="Ann", email="a@example.com"), token="t-1") == user
    assert list(repo.users) == [user.user_id] and list(identities.accounts) == ["id-001"]


def test_a_sign_in_that_vanished_before_it_could_be_read_is_made_again(service, repo, identities):
    """Concurrent creates of one email: Cognito said the username exists, but the racing create
    that made it took it back before it could be looked up (SignInExists with no sub)."""
    identities.fail_next["create"] = SignInExists("")
    user = service.create_user(NewUser(name="Ada", email="ada@example.com"))
    assert repo.get(user.user_id) == user
    assert [call for call in identities.calls if call[0] == "create"] == [("create", "ada@example.com")] * 2


def test_create_user_with_taken_email(service, repo):
    seeded(repo, make_user())
    with pytest.raises(EmailAlreadyExists):
        service.create_user(NewUser(name="Other", email="ANN@example.com"))
    assert list(repo.users) == ["user-1"]


def test_get_user(service, repo):
    user = seeded(repo, make_user())
    assert service.get_user("user-1") == user
    assert repo.calls == {"get": 1}


def test_get_missing_user(service, repo):
    with pytest.raises(UserNotFound):
        service.get_user("ghost")


def test_utc_now_format():
    now = utc_now()
    assert now.endswith("Z") and len(now) == len("2024-01-01T00:00:00.000Z")


# --- update ---


def test_update_without_email_is_one_call(service, repo):
    seeded(repo, make_user(phone="+14155550123"))
    user = service.update_user("user-1", UserChanges(name="Bea", phone=REMOVE))
    assert (user.name, user.phone, user.email, user.version, user.updated_at) == (
        "Bea",
        None,
        "ann@example.com",
        2,
        NOW,
    )
    assert repo.calls == {"update": 1}
    assert repo.users["user-1"] == user


def test_update_same_email_other_case_is_one_call(service, repo):
    seeded(repo, make_user())
    user = service.update_user("user-1", UserChanges(email="ANN@Example.com"))
    assert user.email == "ANN@Example.com"
    assert repo.calls == {"update": 1}
    assert repo.email_owner("ann@example.com") == "user-1"
    assert repo.reservations == {"ann@example.com": "user-1"}


def test_update_with_new_email_reads_changes_and_frees_the_old_one(service, repo, identities):
    seeded(repo, make_user())
    identities.seed("user-1", "ann@example.com")
    user = service.update_user("user-1", UserChanges(name="Bea", email="bea@example.com"))
    assert (user.name, user.email, user.version) == ("Bea", "bea@example.com", 2)
    # The update that finds another email, the change, and the read that confirms the sign-in
    # followed the latest record.
    assert repo.calls == {"update": 1, "change": 1, "get": 1}
    assert identities.accounts["user-1"].email == "bea@example.com"
    assert repo.reservations == {"bea@example.com": "user-1"}
    assert repo.users["user-1"] == user
    # The old address is free again: another user can take it.
    service.create_user(NewUser(name="Other", email="ann@example.com"))
    assert repo.email_owner("ann@example.com") == "id-001"


def test_update_to_taken_email_changes_nothing(service, repo):
    ann = seeded(repo, make_user())
    bob = seeded(repo, make_user(user_id="user-2", name="Bob", email="bob@example.com"))
    with pytest.raises(EmailAlreadyExists):
        service.update_user("user-1", UserChanges(name="Changed", email="BOB@example.com"))
    assert repo.users == {"user-1": ann, "user-2": bob}
    assert repo.reservations == {"ann@example.com": "user-1", "bob@example.com": "user-2"}
    assert repo.calls == {"update": 1, "change": 1}


@pytest.mark.parametrize(
    "changes", [UserChanges(name="X"), UserChanges(email="x@example.com"), UserChanges(phone=REMOVE)]
)
def test_update_missing_user_creates_nothing(service, repo, changes):
    with pytest.raises(UserNotFound):
        service.update_user("ghost", changes)
    assert repo.users == {} and repo.reservations == {}
    assert repo.calls == {"update": 1}


def test_update_email_retries_on_stale_record(service, repo):
    seeded(repo, make_user())
    repo.stale_next["change"] = MAX_ATTEMPTS - 1
    user = service.update_user("user-1", UserChanges(email="new@example.com"))
    assert user.email == "new@example.com"
    assert repo.calls == {"update": 1, "read": MAX_ATTEMPTS - 1, "change": MAX_ATTEMPTS}
    assert repo.reservations == {"new@example.com": "user-1"}


def test_update_email_gives_up_after_max_attempts(service, repo):
    ann = seeded(repo, make_user())
    repo.stale_next["change"] = MAX_ATTEMPTS
    with pytest.raises(ConcurrentModification):
        service.update_user("user-1", UserChanges(email="new@example.com"))
    assert repo.calls == {"update": 1, "read": MAX_ATTEMPTS - 1, "change": MAX_ATTEMPTS}
    assert repo.users["user-1"] == ann
    assert repo.reservations == {"ann@example.com": "user-1"}


def test_update_email_races_with_a_real_concurrent_writer(service, repo):
    seeded(repo, make_user())
    # Between the failed conditional update and the email change, someone renames the user:
    # the email change must not overwrite that rename with the stale record.
    repo.before("change", lambda: repo.users.update({"user-1": make_user(name="Renamed", version=2)}))
    user = service.update_user("user-1", UserChanges(email="new@example.com"))
    assert (user.name, user.email, user.version) == ("Renamed", "new@example.com", 3)
    assert repo.calls == {"update": 1, "read": 1, "change": 2}


# --- delete ---


def test_delete_is_a_read_plus_delete_and_frees_the_email(service, repo):
    seeded(repo, make_user())
    service.delete_user("user-1")
    assert repo.calls == {"find": 1, "delete": 1}
    assert repo.users == {} and repo.reservations == {}
    service.create_user(NewUser(name="New", email="ANN@example.com"))
    assert repo.email_owner("ann@example.com") == "id-001"


def test_delete_missing_user(service, repo):
    with pytest.raises(UserNotFound):
        service.delete_user("ghost")
    assert repo.calls == {"find": 1}


def test_delete_retries_on_stale_record(service, repo):
    seeded(repo, make_user())
    repo.stale_next["delete"] = MAX_ATTEMPTS - 1
    service.delete_user("user-1")
    assert repo.calls == {"find": MAX_ATTEMPTS, "delete": MAX_ATTEMPTS}
    assert repo.users == {}


def test_delete_gives_up_after_max_attempts(service, repo):
    ann = seeded(repo, make_user())
    repo.stale_next["delete"] = MAX_ATTEMPTS
    with pytest.raises(ConcurrentModification):
        service.delete_user("user-1")
    assert repo.calls == {"find": MAX_ATTEMPTS, "delete": MAX_ATTEMPTS}
    assert repo.users == {"user-1": ann}


def test_delete_of_a_user_deleted_concurrently_is_not_found(service, repo):
    ann = seeded(repo, make_user())

    def someone_else_deletes_it() -> None:
        del repo.users["user-1"]
        del repo.reservations["ann@example.com"]

    repo.before("delete", someone_else_deletes_it)
    with pytest.raises(UserNotFound):
        service.delete_user("user-1")
    assert repo.calls == {"find": 2, "delete": 1}
    assert ann.user_id not in repo.users


# --- list ---


ALL = UserQuery()
CALLER = "admin-sub"


def test_list_pages_over_all_users_exactly_once_newest_first(service, repo):
    for i in range(7):
        seeded(repo, make_user(user_id=f"u{i}", email=f"u{i}@example.com", now=f"2024-01-0{i + 1}T00:00:00.000Z"))
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        users, cursor = service.list_users(ALL, 3, cursor, CALLER)
        pages += 1
        seen += [u.user_id for u in users]
        assert len(users) <= 3
        if cursor is None:
            break
        assert pages < 10, "paging does not terminate"
    assert pages == 3
    assert seen == [f"u{i}" for i in reversed(range(7))]
    assert repo.calls == {"search": 3}


def test_list_empty(service, repo):
    assert service.list_users(ALL, 50, None, CALLER) == ([], None)


def test_list_rejects_a_forged_cursor_without_reading(service, repo):
    with pytest.raises(InvalidCursor):
        service.list_users(ALL, 3, "u3", CALLER)
    scope = CursorScope("users", CALLER, ALL.fingerprint())
    with pytest.raises(InvalidCursor):
        service.list_users(ALL, 3, CursorCodec(b"some-other-secret-key-here").encode("u3", scope), CALLER)
    assert repo.total_calls == 0


def test_a_cursor_works_only_for_its_caller_and_query(service, repo):
    for i in range(4):
        seeded(repo, make_user(user_id=f"u{i}", email=f"u{i}@example.com", role="admin" if i % 2 else "member"))
    _, cursor = service.list_users(ALL, 1, None, CALLER)
    assert cursor is not None
    repo.reset_calls()
    for query, caller in ((ALL, "another-admin"), (UserQuery(role="admin"), CALLER), (UserQuery(sort="name"), CALLER)):
        with pytest.raises(InvalidCursor):
            service.list_users(query, 1, cursor, caller)
    assert repo.total_calls == 0
    assert len(service.list_users(ALL, 1, cursor, CALLER)[0]) == 1


def test_an_email_is_one_lookup_filtered_by_role_and_state(service, repo):
    ann = seeded(repo, make_user(user_id="u1", email="Ann@Example.com", role="admin"))
    assert service.list_users(UserQuery(email="ann@EXAMPLE.com"), 50, None, CALLER) == ([ann], None)
    assert service.list_users(UserQuery(email="ann@example.com", role="member"), 50, None, CALLER) == ([], None)
    assert service.list_users(UserQuery(email="ann@example.com", enabled=False), 50, None, CALLER) == ([], None)
    assert service.list_users(UserQuery(email="bob@example.com"), 50, None, CALLER) == ([], None)
    assert repo.calls == {"find_by_email": 4}


# --- put_profile ---


@pytest.fixture
def sign_ins(identities) -> None:
    """The sign-ins whose profiles the tests below create: a new profile takes its sign-in's email."""
    identities.seed("sub-1", "ann@example.com")
    identities.seed("sub-9", "z@example.com")


def test_put_profile_creates_on_first_call(service, repo, sign_ins):
    user, created = service.put_profile("sub-1", UserChanges(name="Ann", phone="+14155550123"))
    assert created is True
    assert user == User(
        user_id="sub-1",
        name="Ann",
        email="ann@example.com",
        phone="+14155550123",
        created_at=NOW,
        updated_at=NOW,
        version=1,
    )
    assert repo.users["sub-1"] == user
    assert repo.calls == {"update": 1, "create": 1}


def test_put_profile_create_with_phone_remove_has_no_phone(service, repo, sign_ins):
    user, created = service.put_profile("sub-1", UserChanges(name="Ann", phone=REMOVE))
    assert created and user.phone is None


def test_put_profile_create_requires_a_name(service, repo, sign_ins):
    with pytest.raises(ValidationError) as info:
        service.put_profile("sub-1", UserChanges(phone="+14155550123"))
    assert info.value.details == [{"field": "name", "message": "is required"}]
    assert repo.users == {}


def test_put_profile_create_for_a_sign_in_without_a_verified_email_is_forbidden(service, repo, identities):
    identities.seed("sub-1", "ann@example.com", email_verified=False)
    with pytest.raises(Forbidden):
        service.put_profile("sub-1", UserChanges(name="Ann"))
    assert repo.users == {}


@pytest.mark.parametrize("sign_in", ["deleted", "disabled"])
def test_put_profile_create_for_a_sign_in_gone_or_disabled_is_unauthorized(
    service, repo, identities, sign_ins, sign_in
):
    """A token outliving its sign-in (deleted or disabled outside the API before any record existed)."""
    if sign_in == "deleted":
        del identities.accounts["sub-1"]
    else:
        identities.seed("sub-1", "ann@example.com", enabled=False)
    with pytest.raises(Unauthorized):
        service.put_profile("sub-1", UserChanges(name="Ann"))
    assert repo.users == {}


def test_put_profile_later_call_updates(service, repo, identities, sign_ins, clock):
    service.put_profile("sub-1", UserChanges(name="Ann"))
    clock.advance(1)
    repo.reset_calls()
    identities.calls.clear()
    user, created = service.put_profile("sub-1", UserChanges(name="Bea", phone=REMOVE))
    assert created is False
    assert (user.name, user.email, user.version) == ("Bea", "ann@example.com", 2)
    assert repo.calls == {"update": 1}
    assert identities.calls == []  # an existing record's email is its own: nothing is asked of Cognito


def test_put_profile_keeps_the_email_an_admin_gave_whatever_the_sign_in_says(service, repo, identities, sign_ins):
    """The record never takes identity fields from anything but its own writes: not a token, not the
    sign-in, once it exists."""
    service.put_profile("sub-1", UserChanges(name="Ann"))
    service.update_user("sub-1", UserChanges(email="new@example.com"), actor="admin")
    identities.seed("sub-1", "elsewhere@example.com")  # say, a sign-in edited outside the API
    user, created = service.put_profile("sub-1", UserChanges(name="Bea"))
    assert (created, user.email, user.version) == (False, "new@example.com", 3)
    assert repo.reservations == {"new@example.com": "sub-1"}


def test_put_profile_update_needs_no_sign_in(service, repo, sign_ins):
    seeded(repo, make_user(user_id="sub-1"))
    user, created = service.put_profile("sub-1", UserChanges(phone="+14155550123"))
    assert created is False and user.phone == "+14155550123"


def test_put_profile_concurrent_create_falls_back_to_update(service, repo, sign_ins):
    def someone_else_creates_it() -> None:
        repo.users["sub-1"] = make_user(user_id="sub-1", name="First", email="ann@example.com")
        repo.reservations["ann@example.com"] = "sub-1"

    repo.before("create", someone_else_creates_it)
    user, created = service.put_profile("sub-1", UserChanges(name="Second"))
    assert created is False
    assert (user.name, user.version) == ("Second", 2)
    assert repo.calls == {"update": 2, "create": 1, "find": 1}  # the read tells a race from a deleted user
    assert repo.users["sub-1"] == user


def test_put_profile_with_email_taken_by_another_user(service, repo, sign_ins):
    seeded(repo, make_user(user_id="other", email="ann@example.com"))
    with pytest.raises(EmailAlreadyExists):
        service.put_profile("sub-1", UserChanges(name="Ann"))
    assert "sub-1" not in repo.users


def test_put_profile_gives_up_if_create_and_update_keep_missing(service, repo, monkeypatch, sign_ins):
    # Pathological race: every update finds no record, every create finds one.
    def create_always_collides(user: User, write: object) -> None:
        repo.calls["create"] += 1
        raise UserAlreadyExists()

    monkeypatch.setattr(repo, "create", create_always_collides)
    with pytest.raises(ConcurrentModification):
        service.put_profile("sub-1", UserChanges(name="Ann"))
    assert repo.calls == {"update": MAX_ATTEMPTS, "create": MAX_ATTEMPTS, "find": MAX_ATTEMPTS}


# --- If-Match (expected revisions) ---


def test_update_with_the_current_revision_applies(service, repo):
    user = seeded(repo, make_user(version=2))
    updated = service.update_user(
        user.user_id, UserChanges(name="Bo"), preconditions=Preconditions(if_match=(user.revision,))
    )
    assert (updated.name, updated.version) == ("Bo", 3)
    assert repo.calls == {"update": 1}


def test_update_with_a_stale_revision_is_412_and_changes_nothing(service, repo):
    user = seeded(repo, make_user(version=2))
    stale = Revision(1, user.created_at)
    for changes in (UserChanges(name="Bo"), UserChanges(email="new@example.com")):
        with pytest.raises(PreconditionFailed):
            service.update_user(user.user_id, changes, preconditions=Preconditions(if_match=(stale,)))
    assert repo.users[user.user_id] == user
    assert repo.email_owner("new@example.com") is None


def test_update_with_a_revision_of_an_earlier_record_under_the_same_id_is_412(service, repo):
    user = seeded(repo, make_user(version=1))
    with pytest.raises(PreconditionFailed):
        service.update_user(
            user.user_id,
            UserChanges(name="Bo"),
            preconditions=Preconditions(if_match=(Revision(1, "2000-01-01T00:00:00.000Z"),)),
        )


def test_update_with_nothing_that_can_match_makes_no_request(service, repo):
    user = seeded(repo, make_user())
    with pytest.raises(PreconditionFailed):
        service.update_user(user.user_id, UserChanges(name="Bo"), preconditions=Preconditions(if_match=()))
    assert repo.total_calls == 0


def test_email_change_under_if_match_is_not_retried_when_a_concurrent_writer_wins(service, repo):
    user = seeded(repo, make_user())
    repo.stale_next["change"] = 1
    with pytest.raises(PreconditionFailed):
        service.update_user(
            user.user_id, UserChanges(email="new@example.com"), preconditions=Preconditions(if_match=(user.revision,))
        )
    assert repo.calls == {"update": 1, "change": 1}
    assert repo.email_owner("new@example.com") is None


def test_email_change_with_the_current_revision_applies(service, repo):
    user = seeded(repo, make_user())
    updated = service.update_user(
        user.user_id, UserChanges(email="new@example.com"), preconditions=Preconditions(if_match=(user.revision,))
    )
    assert updated.email == "new@example.com"
    assert repo.email_owner("new@example.com") == user.user_id


def test_delete_with_a_stale_revision_is_412_and_deletes_nothing(service, repo):
    user = seeded(repo, make_user(version=4))
    with pytest.raises(PreconditionFailed):
        service.delete_user(user.user_id, preconditions=Preconditions(if_match=(Revision(3, user.created_at),)))
    assert repo.users[user.user_id] == user
    assert repo.calls == {"find": 1}


def test_delete_under_if_match_is_not_retried_when_a_concurrent_writer_wins(service, repo):
    user = seeded(repo, make_user())
    repo.stale_next["delete"] = 1
    with pytest.raises(PreconditionFailed):
        service.delete_user(user.user_id, preconditions=Preconditions(if_match=(user.revision,)))
    assert repo.calls == {"find": 1, "delete": 1}


def test_delete_with_the_current_revision_deletes(service, repo):
    user = seeded(repo, make_user())
    service.delete_user(user.user_id, preconditions=Preconditions(if_match=(user.revision,)))
    assert user.user_id not in repo.users


def test_delete_with_nothing_that_can_match_makes_no_request(service, repo):
    user = seeded(repo, make_user())
    with pytest.raises(PreconditionFailed):
        service.delete_user(user.user_id, preconditions=Preconditions(if_match=()))
    assert repo.total_calls == 0


def test_put_profile_with_if_match_never_creates(service, repo, sign_ins):
    with pytest.raises(PreconditionFailed):
        service.put_profile("sub-1", UserChanges(name="Ann"), preconditions=Preconditions(if_match=(Revision(1, NOW),)))
    assert repo.users == {}


def test_put_profile_with_the_current_revision_updates(service, repo, sign_ins):
    user = seeded(repo, make_user(user_id="sub-1"))
    updated, created = service.put_profile(
        "sub-1", UserChanges(name="Bo"), preconditions=Preconditions(if_match=(user.revision,))
    )
    assert (updated.name, created) == ("Bo", False)


# --- avatars go with their user ---


@pytest.fixture
def avatars() -> FakeAvatars:
    return FakeAvatars()


@pytest.fixture
def with_avatars(repo, avatars, identities, clock) -> UserService:
    return UserService(
        repo,
        CursorCodec(b"a-cursor-secret-of-32-bytes-long"),
        identities,
        clock=clock.iso,
        sleep=clock.sleep,
        avatars=avatars,
    )


def test_deleting_a_user_deletes_the_avatar(with_avatars, repo, avatars):
    user = seeded(repo, make_user())
    avatars.stored = {user.user_id, "someone-else"}
    with_avatars.delete_user(user.user_id)
    assert avatars.stored == {"someone-else"}


def test_a_refused_delete_keeps_the_avatar(with_avatars, repo, avatars):
    user = seeded(repo, make_user(version=2))
    avatars.stored = {user.user_id}
    with pytest.raises(PreconditionFailed):
        with_avatars.delete_user(user.user_id, preconditions=Preconditions(if_match=(Revision(1, user.created_at),)))
    assert avatars.stored == {user.user_id}


def test_when_the_avatar_cannot_be_removed_a_retry_finishes_the_job(with_avatars, repo, avatars):
    user = seeded(repo, make_user())
    avatars.stored, avatars.failing = {user.user_id}, True
    with pytest.raises(ServiceUnavailable):
        with_avatars.delete_user(user.user_id)
    assert user.user_id not in repo.users
    avatars.failing = False
    with pytest.raises(UserNotFound):
        with_avatars.delete_user(user.user_id)
    assert avatars.stored == set()


# --- a write whose answer was lost, retried with the same token (a keyed retry after a 503) ---


def test_a_create_retried_with_its_token_after_a_lost_answer_returns_the_user_it_made(service, repo):
    repo.lose_answer_next["create"] = 1
    with pytest.raises(ServiceUnavailable):
        service.create_user(NewUser(name="Ann", email="ann@example.com"), token="t-1")
    first = repo.users["id-001"]  # it did happen
    again = service.create_user(NewUser(name="Ann", email="ann@example.com"), token="t-1")
    assert again == first
    assert repo.email_owner("ann@example.com") == first.user_id and len(repo.users) == 1


def test_a_create_with_another_token_is_another_request(service, repo):
    service.create_user(NewUser(name="Ann", email="ann@example.com"), token="t-1")
    with pytest.raises(EmailAlreadyExists):
        service.create_user(NewUser(name="Ann", email="ann@example.com"), token="t-2")


@pytest.mark.parametrize("changes", [UserChanges(name="Bea"), UserChanges(email="bea@example.com")])
def test_an_update_retried_with_its_token_after_a_lost_answer_applies_once(service, repo, changes):
    user = seeded(repo, make_user())
    method = "update" if changes.email is None else "change"
    repo.lose_answer_next[method] = 1
    with pytest.raises(ServiceUnavailable):
        service.update_user(user.user_id, changes, token="t-1")
    applied = repo.users[user.user_id]
    assert applied.version == 2
    again = service.update_user(user.user_id, changes, token="t-1")
    assert again == applied  # the stored result, version 2, not 3
    # ...even under the If-Match of the revision it replaced: not 412.
    stale = Preconditions(if_match=(user.revision,))
    assert service.update_user(user.user_id, changes, stale, token="t-1") == applied


def test_a_delete_retried_with_its_token_after_a_lost_answer_succeeds_not_404(service, repo):
    user = seeded(repo, make_user())
    repo.lose_answer_next["delete"] = 1
    with pytest.raises(ServiceUnavailable):
        service.delete_user(user.user_id, token="t-1", actor="admin-sub")
    service.delete_user(user.user_id, token="t-1", actor="admin-sub")  # no UserNotFound
    with pytest.raises(UserNotFound):
        service.delete_user(user.user_id, token="t-2")
    assert repo.deleted[user.user_id].actor == "admin-sub"


def test_a_first_profile_put_retried_with_its_token_is_still_a_create(service, repo, sign_ins):
    repo.lose_answer_next["create"] = 1
    with pytest.raises(ServiceUnavailable):
        service.put_profile("sub-1", UserChanges(name="Ann"), token="t-1")
    user, created = service.put_profile("sub-1", UserChanges(name="Ann"), token="t-1")
    assert created is True and user.version == 1


def test_writes_record_their_actor(service, repo, sign_ins):
    user = service.create_user(NewUser(name="Ann", email="ann@example.com"), actor="admin-sub")
    assert repo.actors[user.user_id] == "admin-sub"
    service.update_user(user.user_id, UserChanges(name="Bea"), actor="other-admin")
    assert repo.actors[user.user_id] == "other-admin"
    service.put_profile("sub-9", UserChanges(name="Zed"))
    assert repo.actors["sub-9"] == "sub-9"  # a profile is written by its owner


# --- RFC 9110 preconditions beyond If-Match tags ---


def test_update_with_if_none_match_star_is_412_for_an_existing_user_without_a_write(service, repo):
    user = seeded(repo, make_user())
    with pytest.raises(PreconditionFailed):
        service.update_user(user.user_id, UserChanges(name="Bo"), Preconditions(if_none_match_any=True))
    with pytest.raises(UserNotFound):
        service.update_user("ghost", UserChanges(name="Bo"), Preconditions(if_none_match_any=True))
    assert "update" not in repo.calls and repo.users[user.user_id] == user


def test_update_with_if_none_match_naming_the_current_revision_is_412(service, repo):
    user = seeded(repo, make_user())
    with pytest.raises(PreconditionFailed):
        service.update_user(user.user_id, UserChanges(name="Bo"), Preconditions(if_none_match=(user.revision,)))
    assert repo.users[user.user_id] == user
    other = Preconditions(if_none_match=(Revision(9, user.created_at),))
    assert service.update_user(user.user_id, UserChanges(name="Bo"), other).version == 2


def test_put_profile_with_if_match_star_requires_the_profile(service, repo, sign_ins):
    with pytest.raises(PreconditionFailed):
        service.put_profile("sub-1", UserChanges(name="Ann"), Preconditions(if_match_any=True))
    assert repo.users == {}
    seeded(repo, make_user(user_id="sub-1"))
    user, created = service.put_profile("sub-1", UserChanges(name="Bo"), Preconditions(if_match_any=True))
    assert (user.name, created) == ("Bo", False)


def test_put_profile_with_if_none_match_star_only_creates(service, repo, sign_ins):
    user, created = service.put_profile("sub-1", UserChanges(name="Ann"), Preconditions(if_none_match_any=True))
    assert created and "update" not in repo.calls
    with pytest.raises(PreconditionFailed):
        service.put_profile("sub-1", UserChanges(name="Bo"), Preconditions(if_none_match_any=True))
    assert repo.users["sub-1"] == user


def test_delete_with_if_none_match_naming_the_current_revision_or_star_is_412(service, repo):
    user = seeded(repo, make_user())
    for conditions in (Preconditions(if_none_match=(user.revision,)), Preconditions(if_none_match_any=True)):
        with pytest.raises(PreconditionFailed):
            service.delete_user(user.user_id, conditions)
    assert repo.users[user.user_id] == user


@pytest.mark.parametrize(("sign_in_left", "refusal"), [(False, Unauthorized), (True, UserNotFound)])
def test_put_profile_of_a_user_deleted_meanwhile_is_refused_not_a_new_profile(
    service, repo, identities, sign_ins, sign_in_left, refusal
):
    """Its token passed a check that had not yet heard of the delete: the user stays deleted. Its
    sign-in is gone (401), or, if the delete's Cognito step failed, the record's trace refuses (404)."""
    seeded(repo, make_user(user_id="sub-1"))

    def an_admin_deletes_it() -> None:
        if sign_in_left:
            identities.fail_next["delete"] = ServiceUnavailable()  # the delete's Cognito step fails: 503
            with pytest.raises(ServiceUnavailable):
                service.delete_user("sub-1", actor="admin")
        else:
            service.delete_user("sub-1", actor="admin")

    repo.before("update", an_admin_deletes_it)
    with pytest.raises(refusal):
        service.put_profile("sub-1", UserChanges(name="Back"))
    assert "sub-1" not in repo.users


def test_a_sign_in_that_keeps_vanishing_is_a_concurrent_modification(service, identities):
    from chalicelib.domain.identity import SignInExists

    def always_refused(email: str, password: str | None = None) -> str:
        raise SignInExists("")

    identities.create = always_refused
    with pytest.raises(ConcurrentModification):
        service.create_user(NewUser(name="Ann", email="ann@example.com"))
