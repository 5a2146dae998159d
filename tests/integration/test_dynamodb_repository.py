"""The DynamoDB repository against moto: conditions, reservations, paging, request counts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chalicelib.cursor import CursorCodec
from chalicelib.dynamodb import DynamoUserRepository
from chalicelib.errors import EmailAlreadyExists, UserAlreadyExists, UserNotFound
from chalicelib.models import REMOVE, NewUser, Preconditions, User, UserChanges, Write, new_write_token
from chalicelib.repository import Deleted, EmailChangeRequired, StaleRecord
from chalicelib.service import UserService
from tests.integration.conftest import TABLE
from tests.support.counting import counting
from tests.unit.fakes import FakeIdentityProvider

NOW = "2026-01-01T00:00:00.000Z"
LATER = "2026-01-02T00:00:00.000Z"


def w(token: str | None = None, at: str = NOW, actor: str = "tester") -> Write:
    """A write stamp; a fresh token unless a test means to resend a write."""
    return Write(token or new_write_token(), actor, at)


def make_user(user_id: str = "u-1", email: str = "ada@example.com", phone: str | None = None) -> User:
    return User(user_id=user_id, name="Ada", email=email, phone=phone, created_at=NOW, updated_at=NOW, version=1)


def all_items(ddb: Any) -> list[dict[str, Any]]:
    return list(ddb.scan(TableName=TABLE)["Items"])


def reservation_owner(ddb: Any, key: str) -> str | None:
    item = ddb.get_item(TableName=TABLE, Key={"userId": {"S": f"EMAIL#{key}"}}).get("Item")
    return item["ownerId"]["S"] if item else None


def test_create_stores_user_and_reservation_in_one_request(repo: DynamoUserRepository, ddb: Any) -> None:
    with counting(ddb) as calls:
        repo.create(make_user(email="Ada@Example.com"), w())
    assert calls.total == 1
    assert reservation_owner(ddb, "ada@example.com") == "u-1"
    stored = repo.get("u-1")
    assert stored == make_user(email="Ada@Example.com")


def test_duplicate_email_is_rejected_case_insensitively_and_stores_nothing(
    repo: DynamoUserRepository, ddb: Any
) -> None:
    repo.create(make_user(), w())
    before = all_items(ddb)
    with pytest.raises(EmailAlreadyExists):
        repo.create(make_user(user_id="u-2", email="ADA@example.COM"), w())
    assert all_items(ddb) == before


def test_existing_user_id_is_rejected(repo: DynamoUserRepository) -> None:
    repo.create(make_user(), w())
    with pytest.raises(UserAlreadyExists):
        repo.create(make_user(email="other@example.com"), w())


def test_get_is_one_request_and_never_returns_a_reservation(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user(), w())
    with counting(ddb) as calls:
        assert repo.get("u-1") is not None
    assert calls.total == 1
    assert repo.get("EMAIL#ada@example.com") is None
    assert repo.get("missing") is None


def test_update_without_email_is_one_request_and_bumps_version(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user(phone="+14155550100"), w())
    with counting(ddb) as calls:
        updated = repo.update("u-1", UserChanges(name="Ada L.", phone=REMOVE), w(at=LATER))
    assert calls.total == 1
    assert (updated.name, updated.phone, updated.version, updated.updated_at) == ("Ada L.", None, 2, LATER)
    assert updated.created_at == NOW


def test_update_of_missing_user_creates_nothing(repo: DynamoUserRepository, ddb: Any) -> None:
    with pytest.raises(UserNotFound):
        repo.update("ghost", UserChanges(name="x"), w(at=LATER))
    assert all_items(ddb) == []


def test_update_cannot_touch_a_reservation_item(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user(), w())
    before = all_items(ddb)
    with pytest.raises(UserNotFound):
        repo.update("EMAIL#ada@example.com", UserChanges(name="x"), w(at=LATER))
    assert all_items(ddb) == before


def test_update_expecting_another_email_returns_the_stored_record(repo: DynamoUserRepository) -> None:
    repo.create(make_user(), w())
    with pytest.raises(EmailChangeRequired) as caught:
        repo.update("u-1", UserChanges(email="new@example.com"), w(at=LATER), expect_email_key="new@example.com")
    assert caught.value.current == make_user()
    assert repo.get("u-1") == make_user()


def test_change_email_moves_the_reservation_atomically(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user(), w())
    with counting(ddb) as calls:
        updated = repo.change(make_user(), UserChanges(email="new@example.com"), w(at=LATER))
    assert calls.total == 1
    assert updated.email == "new@example.com" and updated.version == 2
    assert repo.get("u-1") == updated
    assert reservation_owner(ddb, "ada@example.com") is None
    assert reservation_owner(ddb, "new@example.com") == "u-1"


def test_change_email_to_a_taken_email_changes_nothing(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user(), w())
    repo.create(make_user(user_id="u-2", email="taken@example.com"), w())
    before = all_items(ddb)
    with pytest.raises(EmailAlreadyExists):
        repo.change(make_user(), UserChanges(email="Taken@example.com"), w(at=LATER))
    assert sorted(map(str, all_items(ddb))) == sorted(map(str, before))


def test_change_email_on_a_stale_version_changes_nothing(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user(), w())
    repo.update("u-1", UserChanges(name="moved on"), w(at=LATER))
    before = all_items(ddb)
    with pytest.raises(StaleRecord):
        repo.change(make_user(), UserChanges(email="new@example.com"), w(at=LATER))
    assert sorted(map(str, all_items(ddb))) == sorted(map(str, before))


def test_delete_releases_the_email_and_is_conditioned_on_version(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user(), w())
    with pytest.raises(StaleRecord):
        repo.delete(replace(make_user(), version=7), w())
    with counting(ddb) as calls:
        repo.delete(make_user(), w(token="the-delete", actor="admin-sub", at=LATER))
    assert calls.total == 1
    assert repo.get("u-1") is None and reservation_owner(ddb, "ada@example.com") is None
    # What stays for a while: who deleted it, with which request, and nothing of the user.
    (trace,) = all_items(ddb)
    assert trace["writeToken"] == {"S": "the-delete"} and trace["writtenBy"] == {"S": "admin-sub"}
    assert trace["deletedAt"] == {"S": LATER} and "expiresAt" in trace
    assert not {"listingId", "name", "email", "emailKey", "phone", "version"} & set(trace)


def test_listing_pages_hold_users_only_and_every_user_once(repo: DynamoUserRepository, ddb: Any) -> None:
    ids = {f"u-{i:02d}" for i in range(23)}
    for user_id in ids:
        repo.create(make_user(user_id=user_id, email=f"{user_id}@example.com"), w())
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
    service = UserService(repo, CursorCodec(b"k" * 32), FakeIdentityProvider())
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
    assert [item for item in all_items(ddb) if "deletedAt" not in item] == []


# --- a resent write recognises its own success (botocore resends identical requests) ---------


def test_a_resent_create_returns_the_stored_user_instead_of_a_conflict(repo: DynamoUserRepository, ddb: Any) -> None:
    write = w(token="create-1")
    repo.create(make_user(), write)
    with counting(ddb) as calls:
        assert repo.create(make_user(), write) == make_user()  # the resend: recognised, not 409
    assert calls.total == 1  # the resent request itself, no extra read
    with pytest.raises(UserAlreadyExists):
        repo.create(make_user(email="other@example.com"), w(token="create-2"))


@pytest.mark.parametrize("if_match", [False, True])
def test_a_resent_update_applies_once_and_reports_the_stored_result(
    repo: DynamoUserRepository, ddb: Any, if_match: bool
) -> None:
    user = make_user()
    repo.create(user, w())
    conditions = Preconditions(if_match=(user.revision,)) if if_match else Preconditions()
    write = w(token="update-1", at=LATER)
    first = repo.update("u-1", UserChanges(name="Ada L."), write, preconditions=conditions)
    with counting(ddb) as calls:
        again = repo.update("u-1", UserChanges(name="Ada L."), write, preconditions=conditions)
    assert calls.total == 1
    assert again == first and first.version == 2  # not 3, and not 412 under If-Match
    assert repo.get("u-1") == first


def test_a_resent_email_change_is_recognised(repo: DynamoUserRepository, ddb: Any) -> None:
    repo.create(make_user(), w())
    write = w(token="email-1", at=LATER)
    first = repo.change(make_user(), UserChanges(email="new@example.com"), write)
    again = repo.change(make_user(), UserChanges(email="new@example.com"), write)
    assert again == first and first.version == 2
    assert reservation_owner(ddb, "new@example.com") == "u-1" and reservation_owner(ddb, "ada@example.com") is None
    # A resend keeps what the create stamped (an update, not a replacing put).
    assert stored_item(ddb, "u-1")["createToken"] != {"S": "email-1"}


def test_a_resent_delete_is_recognised_and_a_resent_create_cannot_bring_the_user_back(
    repo: DynamoUserRepository, ddb: Any
) -> None:
    create = w(token="create-1")
    repo.create(make_user(), create)
    delete = w(token="delete-1", at=LATER)
    repo.delete(make_user(), delete)
    repo.delete(make_user(), delete)  # resent: no StaleRecord
    found = repo.find("u-1")
    assert isinstance(found, Deleted) and (found.token, found.at) == ("delete-1", LATER)
    with pytest.raises(UserAlreadyExists):
        repo.create(make_user(), create)  # a late resend of the original create
    assert repo.get("u-1") is None and reservation_owner(ddb, "ada@example.com") is None


def test_a_deleted_users_trace_hides_it_from_every_read_and_write_but_a_new_create(
    repo: DynamoUserRepository, ddb: Any
) -> None:
    repo.create(make_user(), w())
    repo.delete(make_user(), w())
    assert repo.get("u-1") is None
    assert repo.list_page(10, None) == ([], None)
    with pytest.raises(UserNotFound):
        repo.update("u-1", UserChanges(name="x"), w())
    # The same id may hold a new user (a profile made again under its Cognito sub).
    again = replace(make_user(), created_at=LATER, updated_at=LATER)
    assert repo.create(again, w()) == again and repo.get("u-1") == again


def test_transactions_carry_a_client_request_token_that_differs_per_transaction(
    repo: DynamoUserRepository, ddb: Any
) -> None:
    seen: list[str] = []
    ddb.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: seen.append(params["ClientRequestToken"]),
    )
    write = w(token="one-request")
    repo.create(make_user(), write)
    repo.change(make_user(), UserChanges(email="new@example.com"), write)
    assert len(seen) == 2 and len(set(seen)) == 2 and all(1 <= len(token) <= 36 for token in seen)


def stored_item(ddb: Any, user_id: str) -> dict[str, Any]:
    return dict(ddb.get_item(TableName=TABLE, Key={"userId": {"S": user_id}})["Item"])
