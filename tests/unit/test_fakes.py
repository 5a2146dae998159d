"""The fake repository must behave like the protocol says, or the service tests prove nothing."""

from __future__ import annotations

import pytest

from chalicelib.errors import EmailAlreadyExists, UserAlreadyExists, UserNotFound
from chalicelib.models import REMOVE, UserChanges, Write
from chalicelib.repository import EmailChangeRequired, StaleRecord
from tests.unit.fakes import FakeUserRepository, as_repository, make_user

NOW = "2024-02-02T00:00:00.000Z"
W = Write(token="token-1", actor="admin-sub", at=NOW)


@pytest.fixture
def repo() -> FakeUserRepository:
    return FakeUserRepository()


def test_fake_is_a_user_repository(repo):
    assert as_repository(repo) is repo


def test_create_then_get(repo):
    user = make_user()
    repo.create(user, W)
    assert repo.get("user-1") == user
    assert repo.get("nobody") is None
    assert repo.email_owner("ANN@example.com") == "user-1"
    assert repo.calls == {"create": 1, "get": 2}


def test_create_existing_id_raises_user_already_exists_and_stores_nothing(repo):
    repo.create(make_user(), W)
    with pytest.raises(UserAlreadyExists):
        repo.create(make_user(email="other@example.com"), Write("token-2", "admin-sub", NOW))
    assert repo.email_owner("other@example.com") is None
    assert repo.users["user-1"].email == "ann@example.com"


def test_create_taken_email_is_case_insensitive(repo):
    repo.create(make_user(), W)
    with pytest.raises(EmailAlreadyExists):
        repo.create(make_user(user_id="user-2", email="  ANN@Example.COM "), W)
    assert "user-2" not in repo.users


def test_update_missing_user_raises_and_creates_nothing(repo):
    with pytest.raises(UserNotFound):
        repo.update("ghost", UserChanges(name="X"), W)
    assert repo.users == {}


def test_update_applies_changes_and_bumps_version(repo):
    repo.seed(make_user(phone="+14155550123"))
    updated = repo.update("user-1", UserChanges(name="Bea", phone=REMOVE), W)
    assert (updated.name, updated.phone, updated.version, updated.updated_at) == ("Bea", None, 2, NOW)
    assert updated.created_at == "2024-01-01T00:00:00.000Z"
    assert repo.users["user-1"] == updated


def test_update_with_other_expected_email_key_signals_and_changes_nothing(repo):
    user = repo.seed(make_user())
    with pytest.raises(EmailChangeRequired) as info:
        repo.update("user-1", UserChanges(name="Bea", email="new@example.com"), W, expect_email_key="new@example.com")
    assert info.value.current == user
    assert repo.users["user-1"] == user


def test_update_refuses_an_email_change_without_condition(repo):
    repo.seed(make_user())
    with pytest.raises(AssertionError):
        repo.update("user-1", UserChanges(email="new@example.com"), W)


def test_change_email_moves_the_reservation(repo):
    user = repo.seed(make_user())
    updated = repo.change(user, UserChanges(email="new@example.com"), W)
    assert updated.email == "new@example.com" and updated.version == 2
    assert repo.email_owner("ann@example.com") is None
    assert repo.email_owner("NEW@example.com") == "user-1"


def test_change_email_on_stale_version_changes_nothing(repo):
    user = repo.seed(make_user())
    repo.update("user-1", UserChanges(name="Bea"), Write("someone-else", "admin-sub", NOW))
    with pytest.raises(StaleRecord):
        repo.change(user, UserChanges(email="new@example.com"), W)
    assert repo.users["user-1"].email == "ann@example.com"
    assert repo.email_owner("new@example.com") is None


def test_change_email_to_taken_email_changes_nothing(repo):
    ann = repo.seed(make_user())
    repo.seed(make_user(user_id="user-2", email="bob@example.com"))
    with pytest.raises(EmailAlreadyExists):
        repo.change(ann, UserChanges(email="Bob@Example.com"), W)
    assert repo.users["user-1"] == ann
    assert repo.email_owner("bob@example.com") == "user-2"
    assert repo.email_owner("ann@example.com") == "user-1"


def test_delete_is_conditioned_on_version_and_releases_email(repo):
    user = repo.seed(make_user())
    with pytest.raises(StaleRecord):
        repo.delete(make_user(version=7), W)
    assert "user-1" in repo.users
    repo.delete(user, Write("token-2", "admin-sub", NOW))
    assert repo.users == {} and repo.reservations == {}
    with pytest.raises(StaleRecord):
        repo.delete(user, Write("token-3", "admin-sub", NOW))


def test_list_page_after_semantics(repo):
    for i in range(5):
        repo.seed(make_user(user_id=f"u{i}", email=f"u{i}@example.com"))
    page, last = repo.list_page(2, None)
    assert [u.user_id for u in page] == ["u0", "u1"] and last == "u1"
    page, last = repo.list_page(2, "u1")
    assert [u.user_id for u in page] == ["u2", "u3"] and last == "u3"
    page, last = repo.list_page(2, "u3")
    assert [u.user_id for u in page] == ["u4"] and last is None
    page, last = repo.list_page(5, None)
    assert len(page) == 5 and last is None


def test_stale_injection_and_hooks(repo):
    seen: list[str] = []
    repo.stale_next["delete"] = 1
    repo.before("get", lambda: seen.append("get"))
    user = repo.seed(make_user())
    assert repo.get("user-1") == user
    assert repo.get("user-1") == user
    assert seen == ["get"]
    with pytest.raises(StaleRecord):
        repo.delete(user, Write("token-2", "admin-sub", NOW))
    repo.delete(user, Write("token-2", "admin-sub", NOW))
    assert repo.calls == {"get": 2, "delete": 2}
