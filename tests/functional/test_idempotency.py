"""Idempotency-Key on POST /users and PUT /users/me, with the DynamoDB store on moto."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.adapters.table_schema import IDEMPOTENCY_KEY_PREFIX, TTL_ATTRIBUTE
from chalicelib.web import idempotency
from chalicelib.web.idempotency import LOCK_S, RECORD_TTL_S, REPLAYED_HEADER
from tests.functional.conftest import TABLE, Api
from tests.functional.test_users_api import ADMIN, MEMBER, MEMBER_SUB, all_users, assert_error
from tests.support import tokens
from tests.support.counting import counting
from tests.support.dynamodb_faults import Faults, aws_error
from tests.unit.fakes import FakeClock

ADA = {"name": "Ada", "email": "ada@example.com"}


@pytest.fixture(autouse=True)
def member_sign_in(sign_in: Callable[..., str]) -> None:
    """The member's sign-in, made outside the API: their first PUT /users/me takes its email."""
    sign_in(MEMBER_SUB, "member@example.com")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock Idempotency-Key locks are stamped and checked with, moved only by the test."""
    fake = FakeClock(start=time.time())
    monkeypatch.setattr(idempotency, "wall_clock", fake)
    return fake


def post(api: Api, key: str, body: Any = ADA, token: str = ADMIN) -> Any:
    return api.request("POST", "/users", token, body, headers={"Idempotency-Key": key})


def test_a_retried_create_returns_the_original_response_and_creates_nothing(api: Api, ddb: Any) -> None:
    first = post(api, "create-1")
    with counting(ddb) as calls:
        again = post(api, "create-1", {"email": "ada@example.com", "name": "Ada"})
    assert calls.total == 1  # the claim finds the stored response
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json_body == first.json_body
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers[REPLAYED_HEADER] == "true"
    assert REPLAYED_HEADER not in first.headers
    assert [u["userId"] for u in all_users(api)] == [first.json_body["user"]["userId"]]


def test_an_idempotent_create_costs_two_extra_requests(api: Api, ddb: Any) -> None:
    with counting(ddb) as calls:
        post(api, "count-1")
    assert dict(calls.calls) == {"PutItem": 1, "TransactWriteItems": 1, "UpdateItem": 1}


def test_the_same_key_with_another_body_is_422_and_creates_nothing(api: Api) -> None:
    post(api, "create-2")
    body = assert_error(post(api, "create-2", {"name": "Bo", "email": "bo@example.com"}), 422)
    assert "Idempotency-Key" in body["error"]
    assert len(all_users(api)) == 1


def test_a_duplicate_while_the_first_is_in_flight_is_409(api: Api, ddb: Any, clock: FakeClock) -> None:
    seen: list[Any] = []

    def duplicate(**_: Any) -> None:
        if not seen:  # the first request is between its claim and its write
            seen.append(post(api, "create-3"))

    ddb.meta.events.register("before-call.dynamodb.TransactWriteItems", duplicate)
    try:
        first = post(api, "create-3")
    finally:
        ddb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", duplicate)
    assert first.status_code == 201
    assert_error(seen[0], 409)
    # The most the first can hold the key: its lock, stamped at the same second.
    assert seen[0].headers["Retry-After"] == str(LOCK_S + 1)
    assert post(api, "create-3").headers[REPLAYED_HEADER] == "true"
    assert len(all_users(api)) == 1


def test_keys_are_scoped_to_the_caller(api: Api) -> None:
    post(api, "shared-key")
    other_admin = tokens.admin_token(email="second-admin@example.com")
    # Not the first admin's response: this caller's own request runs (and finds the email taken).
    response = post(api, "shared-key", token=other_admin)
    assert_error(response, 409)
    assert REPLAYED_HEADER not in response.headers


def test_a_failed_request_is_not_kept_so_its_retry_runs(api: Api) -> None:
    taken = api.request("POST", "/users", ADMIN, ADA).json_body["user"]
    assert_error(post(api, "create-4"), 409)
    api.request("DELETE", f"/users/{taken['userId']}", ADMIN)
    assert post(api, "create-4").status_code == 201


def test_records_expire_after_a_day(api: Api, ddb: Any) -> None:
    before = int(time.time())
    post(api, "create-5")
    records = [
        item for item in ddb.scan(TableName=TABLE)["Items"] if item["userId"]["S"].startswith(IDEMPOTENCY_KEY_PREFIX)
    ]
    assert len(records) == 1
    expires = int(records[0][TTL_ATTRIBUTE]["N"])
    assert before + RECORD_TTL_S <= expires <= int(time.time()) + RECORD_TTL_S
    assert "create-5" not in str(records[0])


def test_profile_put_replays_and_refuses_another_body(api: Api) -> None:
    headers = {"Idempotency-Key": "profile-1"}
    first = api.request("PUT", "/users/me", MEMBER, {"name": "Mo"}, headers=headers)
    again = api.request("PUT", "/users/me", MEMBER, {"name": "Mo"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json_body == first.json_body
    assert again.headers[REPLAYED_HEADER] == "true"
    assert_error(api.request("PUT", "/users/me", MEMBER, {"name": "Other"}, headers=headers), 422)
    assert api.request("GET", "/users/me", MEMBER).json_body["version"] == 1


def test_the_if_match_header_is_part_of_the_request_a_key_names(api: Api) -> None:
    created = api.request("PUT", "/users/me", MEMBER, {"name": "Mo"}).json_body["user"]
    tag = f'"{created["version"]}-{created["createdAt"]}"'
    headers = {"Idempotency-Key": "profile-2", "If-Match": tag}
    assert api.request("PUT", "/users/me", MEMBER, {"name": "Bo"}, headers=headers).status_code == 200
    headers["If-Match"] = "*"
    assert_error(api.request("PUT", "/users/me", MEMBER, {"name": "Bo"}, headers=headers), 422)


def test_an_invalid_key_is_400_and_changes_nothing(api: Api) -> None:
    body = assert_error(post(api, "x" * 256), 400)
    assert body["details"][0]["field"] == "Idempotency-Key"
    assert all_users(api) == []


def test_a_key_left_locked_by_a_503_answers_409_with_retry_after_until_its_lock_expires(
    api: Api, faults: Faults, clock: FakeClock
) -> None:
    """DynamoDB fails the create and then the unlock of its key: every retry with the key until
    the lock expires gets a 409 that says, in Retry-After and in its body, how long is left."""
    throttled = aws_error(400, "ThrottlingException")
    faults.inject("TransactWriteItems", throttled, times=aws.MAX_ATTEMPTS)
    faults.inject("UpdateItem", throttled, times=aws.MAX_ATTEMPTS)  # the unlock of the key
    assert post(api, "locked-1").status_code == 503
    assert faults.attempts["UpdateItem"] == aws.MAX_ATTEMPTS
    told = []
    for step in (0, 10, LOCK_S - 10):
        clock.advance(step)
        retry = post(api, "locked-1")
        body = assert_error(retry, 409)
        told.append((retry.headers["Retry-After"], body["error"]))
    assert told == [
        (str(wait), f"A request with this Idempotency-Key is still in progress; retry in {said}")
        for wait, said in (
            (LOCK_S + 1, f"{LOCK_S + 1} seconds"),
            (LOCK_S - 9, f"{LOCK_S - 9} seconds"),
            (1, "1 second"),
        )
    ]
    clock.advance(1)
    assert post(api, "locked-1").status_code == 201  # the lock has expired: the retry completes the create
    assert [user["email"] for user in all_users(api)] == [ADA["email"]]
