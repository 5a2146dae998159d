"""The DynamoDB repository against moto: conditions, reservations, paging, request counts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chalicelib.cursor import CursorCodec
from chalicelib.dynamodb import DynamoUserRepository
from chalicelib.errors import EmailAlreadyExists, UserAlreadyExists, UserNotFound
from chalicelib.models import REMOVE, NewUser, User, UserChanges
from chalicelib.repository import EmailChangeRequired, StaleRecord
from chalicelib.service import UserService
from tests.integration.conftest import TABLE
from tests.support.counting import counting

NOW = "2026-01-01T00:00:00.000Z"
LATER = "2026-01-02T00:00:00.000Z"


def make_user(user_id: str = "u-1", email: str = "ada@example.com", phone: str | None = None) -> User:
    return User(user_id=user_id, name="Ada", email=email, phone=phone, created_at=NOW, updated_at=NOW, version=1)


def all_items(ddb: Any) -> list[dict[str, Any]]:
    return list(ddb.scan(TableName=TABLE)["Items"])


def reservation_owner(ddb: Any, key: str) -> str | None:
    item = ddb.get_item(TableName=TABLE, Key={"userId": {"S": f"EMAIL#{key}"}}).get("Item")
    return item["ownerId"]["S"] if item else None


def test_create_stores_user_and_reservation_in_one_request(repo: DynamoUserRepository, ddb: Any) -> None:
    with counting(ddb) as calls:
        repo.create(make_user(email="Ada@Example.com"))
    assert calls.total == 1
    assert reservation_owner(ddb, "ada@example.com") == "u-1"
    stored = repo.get("u-1")
    assert stored == make_user(email="Ada@Example.com")


def test_duplicate_email_is_rejected_case_insensitively_and_stores_nothing(
    repo: DynamoUserRepository, ddb: Any
) -> None:
    repo.create(make_user())
    before = all_items(ddb)
    with pytest.raises(EmailAlreadyExists):
        repo.create(make_user(user_id="u-2", email="ADA@example.COM"))
    assert all_items(ddb) == before


def test_existing_user_id_is_rejected(repo: DynamoUserRepository) -> None:
    repo.create(make_user())
    with pytest.raises(UserAlreadyExists):
        repo.create(make_user(email="other@example.com"))


def test_get_is_one_request_and_never_returns_a_reservation(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user())
    with counting(ddb) as calls:
        assert repo.get("u-1") is not None
    assert calls.total == 1
    assert repo.get("EMAIL#ada@example.com") is None
    assert repo.get("missing") is None


def test_update_without_email_is_one_request_and_bumps_version(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user(phone="+14155550100"))
    with counting(ddb) as calls:
        updated = repo.update("u-1", UserChanges(name="Ada L.", phone=REMOVE), LATER)
    assert calls.total == 1
    assert (updated.name, updated.phone, updated.version, updated.updated_at) == ("Ada L.", None, 2, LATER)
    assert updated.created_at == NOW


def test_update_of_missing_user_creates_nothing(repo: DynamoUserRepository, ddb: Any) -> None:
    with pytest.raises(UserNotFound):
        repo.update("ghost", UserChanges(name="x"), LATER)
    assert all_items(ddb) == []


def test_update_cannot_touch_a_reservation_item(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user())
    before = all_items(ddb)
    with pytest.raises(UserNotFound):
        repo.update("EMAIL#ada@example.com", UserChanges(name="x"), LATER)
    assert all_items(ddb) == before


def test_update_expecting_another_email_returns_the_stored_record(repo: DynamoUserRepository) -> None:
    repo.create(make_user())
    with pytest.raises(EmailChangeRequired) as caught:
        repo.update("u-1", UserChanges(email="new@example.com"), LATER, expect_email_key="new@example.com")
    assert caught.value.current == make_user()
    assert repo.get("u-1") == make_user()


def test_change_email_moves_the_reservation_atomically(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user())
    with counting(ddb) as calls:
        updated = repo.change_email(make_user(), UserChanges(email="new@example.com"), LATER)
    assert calls.total == 1
    assert updated.email == "new@example.com" and updated.version == 2
    assert repo.get("u-1") == updated
    assert reservation_owner(ddb, "ada@example.com") is None
    assert reservation_owner(ddb, "new@example.com") == "u-1"


def test_change_email_to_a_taken_email_changes_nothing(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user())
    repo.create(make_user(user_id="u-2", email="taken@example.com"))
    before = all_items(ddb)
    with pytest.raises(EmailAlreadyExists):
        repo.change_email(make_user(), UserChanges(email="Taken@example.com"), LATER)
    assert sorted(map(str, all_items(ddb))) == sorted(map(str, before))


def test_change_email_on_a_stale_version_changes_nothing(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user())
    repo.update("u-1", UserChanges(name="moved on"), LATER)
    before = all_items(ddb)
    with pytest.raises(StaleRecord):
        repo.change_email(make_user(), UserChanges(email="new@example.com"), LATER)
    assert sorted(map(str, all_items(ddb))) == sorted(map(str, before))


def test_delete_releases_the_email_and_is_conditioned_on_version(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user())
    with pytest.raises(StaleRecord):
        repo.delete(replace(make_user(), version=7))
    with counting(ddb) as calls:
        repo.delete(make_user())
    assert calls.total == 1
    assert all_items(ddb) == []


def test_listing_pages_hold_users_only_and_every_user_once(repo: DynamoUserRepository, ddb: Any) -> None:
    ids = {f"u-{i:02d}" for i in range(23)}
    for user_id in ids:
        repo.create(make_user(user_id=user_id, email=f"{user_id}@example.com"))
    seen: list[str] = []
    after = None
    pages = 0
    with counting(ddb) as calls:
        while True:
            users, after = repo.list_page(5, after)
            pages += 1
            assert len(users) <= 5
            seen += [user.user_id for user in users]
            if after is None:
                break
    assert calls.total == pages == 5  # 23 users in pages of 5: one request per page, no empty page
    assert sorted(seen) == sorted(ids)


def test_service_request_counts_match_the_design(repo: DynamoUserRepository, ddb: Any) -> None:
    """get 1, create 1, update without email change 1, list 1 per page, email change 2, delete 2."""
    service = UserService(repo, CursorCodec(b"k" * 32))
    expected = {}
    with counting(ddb) as calls:
        user = service.create_user(NewUser(name="Ada", email="ada@example.com"))
        expected["create"] = calls.take()
        service.get_user(user.user_id)
        expected["get"] = calls.take()
        service.update_user(user.user_id, UserChanges(name="Ada L."))
        expected["update"] = calls.take()
        service.update_user(user.user_id, UserChanges(email="ADA@example.com", name="Ada"))
        expected["update same email"] = calls.take()
        service.list_users(10, None)
        expected["list page"] = calls.take()
        service.update_user(user.user_id, UserChanges(email="lovelace@example.com"))
        expected["email change"] = calls.take()
        service.delete_user(user.user_id)
        expected["delete"] = calls.take()
    assert expected == {
        "create": 1,
        "get": 1,
        "update": 1,
        "update same email": 1,
        "list page": 1,
        "email change": 2,
        "delete": 2,
    }
    assert all_items(ddb) == []
