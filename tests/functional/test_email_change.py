"""A user's own email change (issue 21): PUT /users/me {"email"} reserves the address at once and
mails a code; POST /users/me/email-verification moves sign-in, record and reservation together.
Through the app on moto with the real adapters, with faults below botocore's retry handler."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.domain.service import MAX_CODE_ATTEMPTS
from ops.drift import Drift
from tests.functional.conftest import TABLE, Api
from tests.functional.test_lifecycle import sign_in as stored_sign_in
from tests.functional.test_users_api import ADMIN, assert_error, create
from tests.support import tokens
from tests.support.dynamodb_faults import Faults, answered_late, aws_error

Deliver = Callable[[], None]
OLD, NEW = "mia@example.com", "mia.new@example.com"


@pytest.fixture
def drift(ddb: Any, pool: str) -> Drift:
    return Drift(TABLE, pool, aws.client("dynamodb"), aws.client("cognito-idp"))


@pytest.fixture
def mia(api: Api) -> dict[str, Any]:
    """A member the admin invited (so a sign-in and a record), as the API shows her."""
    return create(api, email=OLD, name="Mia")


def token_of(user: dict[str, Any], issued_at: int | None = None, email: str | None = None) -> str:
    at = int(time.time()) if issued_at is None else issued_at
    return tokens.token(sub=user["userId"], email=email or user["email"], iat=at, auth_time=at)


def request_change(api: Api, user: dict[str, Any], email: str, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return api.request("PUT", "/users/me", token_of(user), {"email": email}, headers=headers)


def verify(api: Api, user: dict[str, Any], code: str, key: str | None = None, token: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return api.request("POST", "/users/me/email-verification", token or token_of(user), {"code": code}, headers=headers)


def codes(outbox: Path, user: dict[str, Any]) -> list[dict[str, Any]]:
    sent = [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []
    return [m for m in sent if m["kind"] == "emailVerification" and m["userId"] == user["userId"]]


def last_code(outbox: Path, user: dict[str, Any]) -> str:
    return str(codes(outbox, user)[-1]["code"])


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def stored(api: Api, user: dict[str, Any]) -> dict[str, Any]:
    return dict(api.request("GET", f"/users/{user['userId']}", ADMIN).json_body)


def sign_in_email(pool: str, user: dict[str, Any]) -> str:
    attributes = stored_sign_in(pool, user["userId"])["UserAttributes"]
    return str(next(a["Value"] for a in attributes if a["Name"] == "email"))


def expire(user: dict[str, Any], email: str) -> None:
    """Time passes beyond the pending change's validity: its record and reservation say so."""
    past = {"S": "2020-01-01T00:00:00.000Z"}
    dynamodb = aws.client("dynamodb")
    dynamodb.update_item(
        TableName=TABLE,
        Key={"userId": {"S": user["userId"]}},
        UpdateExpression="SET pendingUntil = :p",
        ExpressionAttributeValues={":p": past},
    )
    dynamodb.update_item(
        TableName=TABLE,
        Key={"userId": {"S": f"EMAIL#{email.lower()}"}},
        UpdateExpression="SET pendingUntil = :p",
        ExpressionAttributeValues={":p": past},
    )


def table(ddb: Any) -> list[str]:
    items = ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return sorted(json.dumps(i, sort_keys=True) for i in items if not i["userId"]["S"].startswith("IDEM#"))


# --- the request ----------------------------------------------------------------------------------


def test_a_request_reserves_the_address_keeps_the_email_and_mails_a_code(
    api: Api, mia: dict[str, Any], outbox: Path, pool: str, deliver_changes: Deliver
) -> None:
    response = request_change(api, mia, NEW)
    assert response.status_code == 200, response.body
    user = response.json_body["user"]
    assert (user["email"], user["pendingEmail"], user["version"]) == (OLD, NEW, 2)
    assert user["pendingEmailExpiresAt"] > user["updatedAt"]
    assert "code was sent" in response.json_body["message"]
    sent = codes(outbox, mia)
    assert len(sent) == 1 and sent[0]["to"] == NEW and len(sent[0]["code"]) == 6
    assert sign_in_email(pool, mia) == OLD  # the sign-in waits for the code too
    # Reserved at once: nobody else can have it meanwhile (nothing changed by the refusals).
    assert_error(api.request("POST", "/users", ADMIN, {"name": "Squatter", "email": NEW}), 409)
    other = create(api, email="other@example.com", name="Other")
    assert_error(request_change(api, other, NEW.upper()), 409)
    assert_error(api.request("PUT", f"/users/{other['userId']}", ADMIN, {"email": NEW}), 409)
    assert sign_in_email(pool, other) == "other@example.com"
    deliver_changes()
    history = api.request("GET", f"/users/{mia['userId']}/history", ADMIN).json_body["events"]
    assert [(e["type"], e["changed"]) for e in history][-1] == ("UserUpdated", ["pendingEmail"])


def test_a_taken_address_is_409_and_changes_nothing(api: Api, mia: dict[str, Any], ddb: Any, outbox: Path) -> None:
    create(api, email="taken@example.com", name="Taker")
    before = table(ddb)
    assert_error(request_change(api, mia, "Taken@example.com"), 409)
    assert_error(request_change(api, mia, OLD.upper()), 400)  # her own address, in other letters
    assert table(ddb) == before
    assert codes(outbox, mia) == []


def test_an_address_held_by_a_sign_in_without_record_is_409(
    api: Api, mia: dict[str, Any], sign_in: Callable[..., str]
) -> None:
    sign_in(str(uuid.uuid4()), "console@example.com")
    assert_error(request_change(api, mia, "console@example.com"), 409)
    assert "pendingEmail" not in stored(api, mia)


def test_email_goes_alone_and_only_a_profile_that_exists_can_change_it(api: Api) -> None:
    nobody = {"userId": str(uuid.uuid4()), "email": "x@example.com"}
    assert_error(request_change(api, nobody, NEW), 404)
    body = assert_error(api.request("PUT", "/users/me", token_of(nobody), {"email": NEW, "name": "X"}), 400)
    assert body["details"] == [{"field": "email", "message": "must be sent without other fields"}]


# --- the verification ----------------------------------------------------------------------------


def test_the_code_moves_sign_in_record_and_reservation_together(
    api: Api, mia: dict[str, Any], outbox: Path, pool: str, drift: Drift, deliver_changes: Deliver
) -> None:
    old_token = token_of(mia, int(time.time()))  # carries the old address
    assert request_change(api, mia, NEW).status_code == 200
    response = verify(api, mia, last_code(outbox, mia))
    assert response.status_code == 200, response.body
    user = response.json_body["user"]
    assert user["email"] == NEW and "pendingEmail" not in user and user["version"] == 3
    new_token = token_of(mia, int(time.time()), email=NEW)  # issued after the answer
    assert sign_in_email(pool, mia) == NEW
    assert drift.check().clean
    # Tokens that carry the old address are refused; one issued after is accepted.
    assert_error(api.request("GET", "/users/me", old_token), 401)
    assert api.request("GET", "/users/me", new_token).json_body["email"] == NEW
    # The old address is free for someone else; the new one is hers.
    assert create(api, email=OLD, name="Another Mia")["email"] == OLD
    assert_error(api.request("POST", "/users", ADMIN, {"name": "Squatter", "email": NEW}), 409)
    assert api.request("GET", f"/users?email={NEW}", ADMIN).json_body["users"][0]["userId"] == mia["userId"]
    deliver_changes()
    history = api.request("GET", f"/users/{mia['userId']}/history", ADMIN).json_body["events"]
    assert [e["changed"] for e in history][-2:] == [["pendingEmail"], ["email", "pendingEmail"]]


def test_a_wrong_code_is_400_and_counts_until_the_limit(api: Api, mia: dict[str, Any], outbox: Path) -> None:
    assert request_change(api, mia, NEW).status_code == 200
    code = last_code(outbox, mia)
    for attempt in range(MAX_CODE_ATTEMPTS):
        body = assert_error(verify(api, mia, wrong(code)), 400)
        assert f"{MAX_CODE_ATTEMPTS - attempt - 1} attempt" in body["error"]
    # The limit reached, not even the right code confirms it.
    body = assert_error(verify(api, mia, code), 400)
    assert "Too many" in body["error"]
    assert stored(api, mia)["email"] == OLD
    # Asking again starts afresh.
    assert request_change(api, mia, NEW).status_code == 200
    assert verify(api, mia, last_code(outbox, mia)).status_code == 200


def test_malformed_codes_are_400_and_count_nothing(api: Api, mia: dict[str, Any], outbox: Path) -> None:
    assert request_change(api, mia, NEW).status_code == 200
    for body in ({}, {"code": 123456}, {"code": "12345"}, {"code": "abcdef"}, {"code": "123456", "x": 1}):
        response = api.request("POST", "/users/me/email-verification", token_of(mia), body)
        assert_error(response, 400)
    assert verify(api, mia, last_code(outbox, mia)).status_code == 200


def test_without_a_pending_change_a_code_is_409(api: Api, mia: dict[str, Any]) -> None:
    body = assert_error(verify(api, mia, "123456"), 409)
    assert "No email change is pending" in body["error"]


def test_a_second_request_replaces_the_first(api: Api, mia: dict[str, Any], outbox: Path) -> None:
    assert request_change(api, mia, NEW).status_code == 200
    first = last_code(outbox, mia)
    assert request_change(api, mia, "mia.other@example.com").status_code == 200
    second = last_code(outbox, mia)
    assert stored(api, mia)["pendingEmail"] == "mia.other@example.com"
    # The first address is released; the first code no longer confirms anything.
    assert create(api, email=NEW, name="Next")["email"] == NEW
    if first != second:
        assert_error(verify(api, mia, first), 400)
    assert verify(api, mia, second).json_body["user"]["email"] == "mia.other@example.com"


def test_an_expired_request_releases_the_address_and_confirms_nothing(
    api: Api, mia: dict[str, Any], outbox: Path, pool: str
) -> None:
    assert request_change(api, mia, NEW).status_code == 200
    code = last_code(outbox, mia)
    expire(mia, NEW)
    assert "pendingEmail" not in stored(api, mia)  # lazily: read as no longer pending
    assert_error(verify(api, mia, code), 409)
    taker = create(api, email=NEW, name="Taker")  # the address is free again
    assert taker["email"] == NEW
    assert stored(api, mia)["email"] == OLD and sign_in_email(pool, mia) == OLD


def test_an_admins_email_change_cancels_the_pending_one(
    api: Api, mia: dict[str, Any], outbox: Path, drift: Drift
) -> None:
    assert request_change(api, mia, NEW).status_code == 200
    code = last_code(outbox, mia)
    changed = api.request("PUT", f"/users/{mia['userId']}", ADMIN, {"email": "mia.admin@example.com"})
    assert changed.status_code == 200, changed.body
    assert "pendingEmail" not in changed.json_body["user"]
    assert_error(verify(api, mia, code), 409)
    assert create(api, email=NEW, name="Next")["email"] == NEW  # released with the pending change
    assert drift.check().clean


def test_an_admin_may_give_the_user_the_very_address_pending(
    api: Api, mia: dict[str, Any], outbox: Path, drift: Drift
) -> None:
    assert request_change(api, mia, NEW).status_code == 200
    changed = api.request("PUT", f"/users/{mia['userId']}", ADMIN, {"email": NEW})
    assert changed.status_code == 200, changed.body
    assert changed.json_body["user"]["email"] == NEW and "pendingEmail" not in changed.json_body["user"]
    assert_error(api.request("POST", "/users", ADMIN, {"name": "Squatter", "email": NEW}), 409)
    assert create(api, email=OLD, name="Old")["email"] == OLD
    assert drift.check().clean


def test_an_admins_recasing_of_the_address_keeps_the_pending_change_as_answered_and_stored(
    api: Api, mia: dict[str, Any], outbox: Path, drift: Drift
) -> None:
    """Found by `make fuzz`: the answer dropped the pending change while the record kept it."""
    assert request_change(api, mia, NEW).status_code == 200
    code = last_code(outbox, mia)
    changed = api.request("PUT", f"/users/{mia['userId']}", ADMIN, {"email": OLD.upper(), "role": "member"})
    assert changed.status_code == 200, changed.body
    assert changed.json_body["user"] == stored(api, mia)
    assert changed.json_body["user"]["pendingEmail"] == NEW and changed.json_body["user"]["email"] == OLD.upper()
    assert verify(api, mia, code).status_code == 200
    assert stored(api, mia)["email"] == NEW and drift.check().clean


def test_a_deleted_users_pending_address_is_released(api: Api, mia: dict[str, Any]) -> None:
    assert request_change(api, mia, NEW).status_code == 200
    assert api.request("DELETE", f"/users/{mia['userId']}", ADMIN).status_code == 200
    assert create(api, email=NEW, name="Next")["email"] == NEW


def test_an_admin_changes_their_own_email_by_code_too(
    api: Api, sign_in: Callable[..., str], outbox: Path, pool: str
) -> None:
    sub = sign_in(str(uuid.uuid4()), "boss@example.com", admin=True)
    boss_token = tokens.token(sub=sub, email="boss@example.com", groups=["admins"])
    assert api.request("PUT", "/users/me", boss_token, {"name": "Boss"}).status_code == 201
    boss = {"userId": sub, "email": "boss@example.com"}
    assert api.request("PUT", "/users/me", boss_token, {"email": "boss2@example.com"}).status_code == 200
    assert verify(api, boss, last_code(outbox, boss), token=boss_token).status_code == 200
    assert sign_in_email(pool, boss) == "boss2@example.com"


# --- resends, races and faults -------------------------------------------------------------------


def test_one_key_one_change(api: Api, mia: dict[str, Any], outbox: Path, deliver_changes: Deliver) -> None:
    first = request_change(api, mia, NEW, key="req-1")
    assert request_change(api, mia, NEW, key="req-1").json_body == first.json_body
    assert len(codes(outbox, mia)) == 1
    done = verify(api, mia, last_code(outbox, mia), key="ver-1")
    assert done.status_code == 200
    assert verify(api, mia, last_code(outbox, mia), key="ver-1").json_body == done.json_body
    deliver_changes()
    history = api.request("GET", f"/users/{mia['userId']}/history", ADMIN).json_body["events"]
    assert [e["type"] for e in history] == ["UserCreated", "UserUpdated", "UserUpdated"]


def test_two_users_asking_for_one_address_at_once_one_gets_it(api: Api, mia: dict[str, Any], drift: Drift) -> None:
    other = create(api, email="other@example.com", name="Other")
    answers: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def ask(index: int, user: dict[str, Any]) -> None:
        barrier.wait()
        answers[index] = request_change(api, user, NEW)

    # moto serves one AWS call at a time (its backends are not thread-safe: a cancelled transaction
    # restores a snapshot over a concurrent one), as the model test has it: the requests interleave
    # between calls, as on AWS.
    lock = threading.RLock()
    serialised = [Faults(aws.client("dynamodb"), lock), Faults(aws.client("cognito-idp"), lock)]
    threads = [threading.Thread(target=ask, args=(i, u)) for i, u in enumerate((mia, other))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for faults in serialised:
            faults.close()
    assert sorted(a.status_code for a in answers) == [200, 409], [a.body for a in answers]
    winner = next(a for a in answers if a.status_code == 200).json_body["user"]
    assert winner["pendingEmail"] == NEW
    # The table agrees: the address is reserved, pending, for the winner alone, whose record awaits it.
    ddb = aws.client("dynamodb")
    reservation = ddb.get_item(TableName=TABLE, Key={"userId": {"S": f"EMAIL#{NEW}"}}, ConsistentRead=True)["Item"]
    assert reservation["ownerId"]["S"] == winner["userId"] and "pendingUntil" in reservation
    for user in (mia, other):
        record = ddb.get_item(TableName=TABLE, Key={"userId": {"S": user["userId"]}}, ConsistentRead=True)["Item"]
        assert ("pendingEmailKey" in record) == (user["userId"] == winner["userId"]), record


@pytest.mark.parametrize("operation", ["TransactWriteItems", "GetItem"])
def test_a_failed_request_is_503_and_its_keyed_retry_completes(
    api: Api, mia: dict[str, Any], outbox: Path, faults: Faults, ddb: Any, operation: str
) -> None:
    before = table(ddb)
    faults.inject(operation, aws_error(500, "InternalServerError"))
    failed = request_change(api, mia, NEW, key="req-2")
    faults.clear()
    assert_error(failed, 503)
    assert table(ddb) == before
    retried = request_change(api, mia, NEW, key="req-2")
    assert retried.status_code == 200, retried.body
    assert verify(api, mia, last_code(outbox, mia)).status_code == 200


def test_a_lost_answer_after_the_request_was_recorded_mails_the_same_code_again(
    api: Api, mia: dict[str, Any], outbox: Path, faults: Faults
) -> None:
    faults.inject("TransactWriteItems", answered_late)  # written, every answer lost
    assert_error(request_change(api, mia, NEW, key="req-3"), 503)
    faults.clear()
    assert request_change(api, mia, NEW, key="req-3").status_code == 200
    sent = codes(outbox, mia)
    assert len({m["code"] for m in sent}) == 1
    assert verify(api, mia, sent[-1]["code"]).status_code == 200


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("dynamodb", "TransactWriteItems"),
        ("cognito-idp", "AdminUpdateUserAttributes"),
        ("cognito-idp", "AdminGetUser"),
    ],
)
def test_a_failed_verification_is_503_half_nothing_and_its_keyed_retry_completes(
    api: Api, mia: dict[str, Any], outbox: Path, pool: str, drift: Drift, service: str, operation: str
) -> None:
    assert request_change(api, mia, NEW).status_code == 200
    code = last_code(outbox, mia)
    injected = Faults(aws.client(service))
    try:
        error = "InternalServerError" if service == "dynamodb" else "InternalErrorException"
        injected.inject(operation, aws_error(500, error))
        failed = verify(api, mia, code, key="ver-2")
    finally:
        injected.close()
    assert_error(failed, 503)
    retried = verify(api, mia, code, key="ver-2")
    assert retried.status_code == 200, retried.body
    assert sign_in_email(pool, mia) == NEW and stored(api, mia)["email"] == NEW
    assert drift.check().clean


def test_a_slow_success_of_the_verification_counts_once(
    api: Api, mia: dict[str, Any], outbox: Path, faults: Faults, drift: Drift
) -> None:
    assert request_change(api, mia, NEW).status_code == 200
    faults.inject("TransactWriteItems", answered_late, times=1)
    response = verify(api, mia, last_code(outbox, mia))
    faults.clear()
    assert response.status_code == 200, response.body
    assert response.json_body["user"]["version"] == 3
    assert drift.check().clean


def test_a_slow_success_of_a_wrong_code_counts_once(
    api: Api, mia: dict[str, Any], outbox: Path, faults: Faults
) -> None:
    assert request_change(api, mia, NEW).status_code == 200
    code = last_code(outbox, mia)
    faults.inject("UpdateItem", answered_late, times=1)
    body = assert_error(verify(api, mia, wrong(code)), 400)
    faults.clear()
    assert f"{MAX_CODE_ATTEMPTS - 1} attempts left" in body["error"]
