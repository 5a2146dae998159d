"""Writes stay correct when DynamoDB is slow: a resent attempt never applies a write twice, and
never hides one that was applied.

The fault is a *slow success* injected below botocore's retry handler: the request reaches
DynamoDB (moto) and is applied, but its answer arrives after the read timeout, so botocore
resends it. (A `before-send` hook applies the request through moto's own handler, then raises
the ReadTimeoutError botocore would see: `answered_late` in tests/support/dynamodb_faults.py.)
A resent attempt must recognise its own success: the API answers success with the stored
result, not 409/412/404, and the data moved once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.adapters.table_schema import EMAIL_KEY_PREFIX
from chalicelib.domain.errors import ServiceUnavailable
from tests.functional.conftest import TABLE, Api
from tests.functional.test_users_api import ADMIN, MEMBER, MEMBER_SUB, all_users, assert_error, create
from tests.support.dynamodb_faults import Faults, answered_late


@pytest.fixture(autouse=True)
def member_sign_in(sign_in: Callable[..., str]) -> None:
    """The member's sign-in, made outside the API: their first PUT /users/me takes its email."""
    sign_in(MEMBER_SUB, "member@example.com")


def stored(ddb: Any, user_id: str) -> dict[str, Any]:
    item = ddb.get_item(TableName=TABLE, Key={"userId": {"S": user_id}}, ConsistentRead=True).get("Item")
    return dict(item or {})


def reservations(ddb: Any) -> dict[str, str]:
    items = ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {
        item["userId"]["S"].removeprefix(EMAIL_KEY_PREFIX): item["ownerId"]["S"]
        for item in items
        if item["userId"]["S"].startswith(EMAIL_KEY_PREFIX)
    }


def put(api: Api, user_id: str, body: dict[str, Any], **headers: str) -> Any:
    return api.request("PUT", f"/users/{user_id}", ADMIN, body, headers=headers)


# --- a resend recognises its own applied write ------------------------------------------------


def test_a_plain_update_resent_after_a_late_answer_applies_once(api: Api, ddb: Any, faults: Faults) -> None:
    user = create(api)
    faults.inject("UpdateItem", answered_late, times=1)
    response = put(api, user["userId"], {"name": "Ada King"})
    assert response.status_code == 200, response.body
    assert faults.attempts["UpdateItem"] == 2  # botocore did resend it
    assert response.json_body["user"]["version"] == 2
    assert stored(ddb, user["userId"])["version"] == {"N": "2"}  # not 3


def test_an_update_with_if_match_resent_after_a_late_answer_is_200_not_412(api: Api, ddb: Any, faults: Faults) -> None:
    user = create(api)
    etag = api.request("GET", f"/users/{user['userId']}", ADMIN).headers["ETag"]
    faults.inject("UpdateItem", answered_late, times=1)
    response = put(api, user["userId"], {"name": "Ada King"}, **{"If-Match": etag})
    assert response.status_code == 200, response.body
    assert response.json_body["user"]["name"] == "Ada King"
    assert stored(ddb, user["userId"])["version"] == {"N": "2"}


def test_a_create_resent_after_a_late_answer_is_201_not_409(api: Api, ddb: Any, faults: Faults) -> None:
    faults.inject("TransactWriteItems", answered_late, times=1)
    response = api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada@example.com"})
    assert response.status_code == 201, response.body
    assert faults.attempts["TransactWriteItems"] == 2
    users = all_users(api)
    assert [u["userId"] for u in users] == [response.json_body["user"]["userId"]]
    assert reservations(ddb) == {"ada@example.com": users[0]["userId"]}


def test_an_email_change_resent_after_a_late_answer_moves_the_reservation_once(
    api: Api, ddb: Any, faults: Faults
) -> None:
    user = create(api)
    faults.inject("TransactWriteItems", answered_late, times=1)
    response = put(api, user["userId"], {"email": "lovelace@example.com"})
    assert response.status_code == 200, response.body
    # The create, then the failed "same email" update, the transaction with its resend, and the
    # read that confirms the sign-in followed: no other request.
    assert faults.attempts == {"TransactWriteItems": 1 + 2, "UpdateItem": 1, "GetItem": 1}
    assert response.json_body["user"]["email"] == "lovelace@example.com"
    assert stored(ddb, user["userId"])["version"] == {"N": "2"}
    assert reservations(ddb) == {"lovelace@example.com": user["userId"]}


def test_a_delete_resent_after_a_late_answer_is_200_not_404(api: Api, ddb: Any, faults: Faults) -> None:
    user = create(api)
    faults.inject("TransactWriteItems", answered_late, times=1)
    response = api.request("DELETE", f"/users/{user['userId']}", ADMIN)
    assert response.status_code == 200, response.body
    assert assert_error(api.request("GET", f"/users/{user['userId']}", ADMIN), 404)
    assert reservations(ddb) == {}


def test_a_first_profile_put_resent_after_a_late_answer_is_201(api: Api, ddb: Any, faults: Faults) -> None:
    faults.inject("TransactWriteItems", answered_late, times=1)
    response = api.request("PUT", "/users/me", MEMBER, {"name": "Mia"})
    assert response.status_code == 201, response.body
    assert stored(ddb, MEMBER_SUB)["version"] == {"N": "1"}
    faults.inject("UpdateItem", answered_late, times=1)
    again = api.request("PUT", "/users/me", MEMBER, {"name": "Mia B."})
    assert again.status_code == 200 and again.json_body["user"]["version"] == 2


def test_idempotency_records_accept_their_own_resends(api: Api, ddb: Any, faults: Faults) -> None:
    faults.inject("PutItem", answered_late, times=1)  # the claim
    first = api.request(
        "POST", "/users", ADMIN, {"name": "Ada", "email": "ada@example.com"}, headers={"Idempotency-Key": "k-slow"}
    )
    assert first.status_code == 201, first.body  # not 409 "in progress": the resent claim is ours
    faults.inject("UpdateItem", answered_late, times=1)  # the completion
    again = api.request(
        "POST", "/users", ADMIN, {"name": "Ada", "email": "ada@example.com"}, headers={"Idempotency-Key": "k-slow"}
    )
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert len(all_users(api)) == 1


# --- when every attempt is late: 503, the outcome unknown, and a keyed retry that finds out -----


def assert_outcome_unknown(response: Any) -> None:
    body = assert_error(response, 503)
    assert body == {"error": ServiceUnavailable.message}
    assert "may or may not have been applied" in body["error"] and "Idempotency-Key" in body["error"]
    assert response.headers["Retry-After"]


def test_an_update_whose_every_attempt_was_late_is_503_and_applied_once(api: Api, ddb: Any, faults: Faults) -> None:
    user = create(api)
    faults.inject("UpdateItem", answered_late, times=aws.MAX_ATTEMPTS)
    assert_outcome_unknown(put(api, user["userId"], {"name": "Ada King"}))
    assert faults.attempts["UpdateItem"] == aws.MAX_ATTEMPTS
    assert stored(ddb, user["userId"])["version"] == {"N": "2"}  # not 4


def test_a_keyed_create_retried_after_a_503_ends_with_one_user_and_a_201(api: Api, ddb: Any, faults: Faults) -> None:
    body = {"name": "Ada", "email": "ada@example.com"}
    faults.inject("TransactWriteItems", answered_late, times=aws.MAX_ATTEMPTS)
    assert_outcome_unknown(api.request("POST", "/users", ADMIN, body, headers={"Idempotency-Key": "k-1"}))
    created = all_users(api)
    assert len(created) == 1  # it did happen
    retry = api.request("POST", "/users", ADMIN, body, headers={"Idempotency-Key": "k-1"})
    assert retry.status_code == 201, retry.body
    assert retry.json_body["user"]["userId"] == created[0]["userId"]
    assert retry.headers["Location"].endswith(created[0]["userId"])
    assert len(all_users(api)) == 1
    replay = api.request("POST", "/users", ADMIN, body, headers={"Idempotency-Key": "k-1"})
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json_body == retry.json_body


@pytest.mark.parametrize(
    ("name", "request_", "slow_operation", "status"),
    [
        ("update", lambda api, uid, h: put(api, uid, {"name": "Ada King"}, **h), "UpdateItem", 200),
        ("email change", lambda api, uid, h: put(api, uid, {"email": "k@example.com"}, **h), "TransactWriteItems", 200),
        (
            "delete",
            lambda api, uid, h: api.request("DELETE", f"/users/{uid}", ADMIN, headers=h),
            "TransactWriteItems",
            200,
        ),
    ],
)
def test_every_keyed_write_retried_after_a_503_applies_once(
    api: Api,
    ddb: Any,
    faults: Faults,
    name: str,
    request_: Callable[[Api, str, dict[str, str]], Any],
    slow_operation: str,
    status: int,
) -> None:
    user = create(api)
    headers = {"Idempotency-Key": "k-" + name.replace(" ", "-")}
    faults.inject(slow_operation, answered_late, times=aws.MAX_ATTEMPTS)
    assert_outcome_unknown(request_(api, user["userId"], headers))
    after_first = stored(ddb, user["userId"])
    retry = request_(api, user["userId"], headers)
    assert retry.status_code == status, retry.body
    assert stored(ddb, user["userId"]) == after_first  # the retry found the write; it did not repeat it
    assert "Idempotent-Replayed" not in retry.headers


def test_a_keyed_profile_create_retried_after_a_503_is_201(api: Api, ddb: Any, faults: Faults) -> None:
    headers = {"Idempotency-Key": "k-profile"}
    faults.inject("TransactWriteItems", answered_late, times=aws.MAX_ATTEMPTS)
    assert_outcome_unknown(api.request("PUT", "/users/me", MEMBER, {"name": "Mia"}, headers=headers))
    retry = api.request("PUT", "/users/me", MEMBER, {"name": "Mia"}, headers=headers)
    assert retry.status_code == 201, retry.body
    assert stored(ddb, MEMBER_SUB)["version"] == {"N": "1"}


def test_a_refused_keyed_write_frees_its_key(api: Api) -> None:
    """A 4xx changed nothing: the key is released, so the client may fix the body and reuse it."""
    create(api, email="taken@example.com")
    headers = {"Idempotency-Key": "k-refused"}
    assert_error(
        api.request("POST", "/users", ADMIN, {"name": "Bo", "email": "taken@example.com"}, headers=headers), 409
    )
    fixed = api.request("POST", "/users", ADMIN, {"name": "Bo", "email": "bo@example.com"}, headers=headers)
    assert fixed.status_code == 201
