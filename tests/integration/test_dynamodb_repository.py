"""What only the DynamoDB adapter can show, against moto: how many requests each write is (a
recognised resend included), what the items hold, the transaction tokens. What the repository
does is tests/integration/test_repository_contract.py, run against the fake too."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from chalicelib.adapters.dynamodb import DynamoUserRepository
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.models import NewUser, User, UserChanges, Write, new_write_token
from chalicelib.domain.search import UserQuery
from chalicelib.domain.service import UserService
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


def test_each_write_is_one_request_and_a_recognised_resend_one_more(repo: DynamoUserRepository, ddb: Any) -> None:
    """Every write, then its resend with the very same arguments (what botocore sends again)."""
    current = make_user()
    writes: dict[str, Callable[[], object]] = {
        "create": partial(repo.create, current, w("c")),
        "update": partial(repo.update, "u-1", UserChanges(name="Ada L."), w("u", at=LATER)),
    }
    counts = {}
    with counting(ddb) as calls:
        for name, write in writes.items():
            write()
            write()
            counts[name] = calls.take()
        before = repo.get("u-1")
        calls.take()
        assert before is not None
        change = partial(repo.change, before, UserChanges(email="new@example.com"), w("e", at=LATER))
        after = change()
        change()
        counts["change"] = calls.take()
        delete = partial(repo.delete, after, w("d", at=LATER))
        delete()
        delete()
        counts["delete"] = calls.take()
    # No read to recognise a resend: the failed condition returns the item it was evaluated against.
    assert counts == {"create": 2, "update": 2, "change": 2, "delete": 2}


def test_a_deleted_users_trace_holds_who_deleted_it_and_nothing_of_the_user(
    repo: DynamoUserRepository, ddb: Any
) -> None:
    repo.create(make_user(), w("create-1"))
    repo.delete(make_user(), w(token="the-delete", actor="admin-sub", at=LATER))
    (trace,) = all_items(ddb)
    assert trace["writeToken"] == {"S": "the-delete"} and trace["writtenBy"] == {"S": "admin-sub"}
    assert trace["deletedAt"] == {"S": LATER} and trace["createToken"] == {"S": "create-1"}
    assert int(trace["expiresAt"]["N"]) > 1_767_225_600  # a TTL, 48 hours after the delete
    assert not {"listingId", "name", "email", "emailKey", "phone", "role", "enabled", "version"} & set(trace)


def test_items_carry_the_write_stamps_and_never_a_public_field_name_for_them(
    repo: DynamoUserRepository, ddb: Any
) -> None:
    repo.create(make_user(), w("create-1", actor="admin-sub"))
    repo.update("u-1", UserChanges(name="B"), w("update-1", actor="other-admin", at=LATER))
    item = next(i for i in all_items(ddb) if i["userId"] == {"S": "u-1"})
    assert (item["createToken"], item["writeToken"], item["writtenBy"]) == (
        {"S": "create-1"},
        {"S": "update-1"},
        {"S": "other-admin"},
    )


def test_service_request_counts_match_the_design(repo: DynamoUserRepository, ddb: Any) -> None:
    """get 1, create 1, update without email change 1, a list page 1 Query per partition it reads (4 for all
    users), an email lookup 2, email change 3 (the failed update, the transaction, the read that
    confirms the sign-in followed), delete 2."""
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
        service.list_users(UserQuery(), 10, None, "admin-sub")
        expected["list page"] = calls.take()
        service.list_users(UserQuery(role="member", enabled=True), 10, None, "admin-sub")
        expected["list page, one state"] = calls.take()
        service.list_users(UserQuery(email="ADA@example.com"), 10, None, "admin-sub")
        expected["find by email"] = calls.take()
        service.update_user(user.user_id, UserChanges(email="lovelace@example.com"))
        expected["email change"] = calls.take()
        service.delete_user(user.user_id)
        expected["delete"] = calls.take()
    assert expected == {
        "create": 1,
        "get": 1,
        "update": 1,
        "update same email": 1,
        "list page": 4,  # one Query per role#enabled partition (tests/integration/test_search.py)
        "list page, one state": 1,
        "find by email": 2,  # its reservation, then its owner
        "email change": 3,
        "delete": 2,
    }
    assert [item for item in all_items(ddb) if "deletedAt" not in item] == []


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
