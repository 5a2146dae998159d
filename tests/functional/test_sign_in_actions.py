"""POST /users/{id}/invitation, /password-reset and /sign-out (issue 21, admins act on sign-ins):
through the app on moto with the real adapters. Each is admins-only, safe to resend, one change
event per action (once per Idempotency-Key), and a reset or sign-out refuses every token issued
before it and accepts one issued after its answer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters import aws
from ops.drift import Drift
from tests.functional.conftest import TABLE, Api
from tests.functional.test_lifecycle import sign_in as stored_sign_in
from tests.functional.test_users_api import ADMIN, MEMBER, assert_error, create
from tests.support import tokens
from tests.support.dynamodb_faults import Faults, answered_late, aws_error

Deliver = Callable[[], None]
PASSWORD = "Signed-in-passw0rd!"


def act(api: Api, user: dict[str, Any], action: str, token: str = ADMIN, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return api.request("POST", f"/users/{user['userId']}/{action}", token, headers=headers)


def signed_in(pool: str, user: dict[str, Any]) -> dict[str, Any]:
    """The user has used their invitation (their password is theirs now)."""
    aws.client("cognito-idp").admin_set_user_password(
        UserPoolId=pool, Username=user["userId"], Password=PASSWORD, Permanent=True
    )
    return user


def mails(outbox: Path, kind: str, user: dict[str, Any]) -> list[dict[str, Any]]:
    if not outbox.exists():
        return []
    sent = [json.loads(line) for line in outbox.read_text().splitlines()]
    return [m for m in sent if m["kind"] == kind and m["userId"] == user["userId"]]


def events(api: Api, user: dict[str, Any], deliver: Deliver) -> list[tuple[str, list[str]]]:
    deliver()
    body = api.request("GET", f"/users/{user['userId']}/history", ADMIN).json_body
    return [(e["type"], e["changed"]) for e in body["events"]]


def token_at(user: dict[str, Any], issued_at: int) -> str:
    return tokens.token(sub=user["userId"], email=user["email"], iat=issued_at, auth_time=issued_at)


def item(user: dict[str, Any]) -> dict[str, Any]:
    return dict(aws.client("dynamodb").get_item(TableName=TABLE, Key={"userId": {"S": user["userId"]}})["Item"])


@pytest.fixture
def drift(ddb: Any, pool: str) -> Drift:
    return Drift(TABLE, pool, aws.client("dynamodb"), aws.client("cognito-idp"))


# --- access -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["invitation", "password-reset", "sign-out"])
def test_only_admins_act_on_sign_ins_and_unknown_users_are_404(api: Api, action: str) -> None:
    ada = create(api)
    assert_error(act(api, ada, action, MEMBER), 403)
    assert_error(act(api, {"userId": str(uuid.uuid4())}, action), 404)
    assert_error(act(api, {"userId": "not an id"}, action), 404)
    assert api.request("GET", f"/users/{ada['userId']}", ADMIN).json_body["version"] == 1


def test_an_admin_may_not_reset_their_own_password_but_may_sign_themselves_out(
    api: Api, pool: str, sign_in: Callable[..., str]
) -> None:
    sub = sign_in(str(uuid.uuid4()), "boss@example.com", admin=True)
    boss_token = tokens.token(sub=sub, email="boss@example.com", groups=["admins"])
    assert api.request("PUT", "/users/me", boss_token, {"name": "Boss"}).status_code == 201
    boss = {"userId": sub, "email": "boss@example.com"}
    body = assert_error(act(api, boss, "password-reset", boss_token), 403)
    assert "own password" in body["error"]
    assert act(api, boss, "sign-out", boss_token).status_code == 200
    # Signed out: the caller's own token is refused now, and they sign in again.
    assert_error(api.request("GET", "/users/me", boss_token), 401)
    assert api.request("GET", "/users/me", token_at(boss, int(time.time()))).status_code == 200


# --- invitation ----------------------------------------------------------------------------------------


def test_the_invitation_goes_again_with_a_new_password_until_the_user_signs_in(
    api: Api, pool: str, outbox: Path, deliver_changes: Deliver
) -> None:
    ada = create(api)
    response = act(api, ada, "invitation")
    assert response.status_code == 200, response.body
    assert response.json_body["user"]["version"] == 2
    assert response.headers["ETag"] != ""
    sent = mails(outbox, "invitation", ada)
    assert len(sent) == 2 and sent[0]["temporaryPassword"] != sent[1]["temporaryPassword"]
    assert stored_sign_in(pool, ada["userId"])["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    signed_in(pool, ada)
    body = assert_error(act(api, ada, "invitation"), 409)
    assert "signed in already" in body["error"]
    assert len(mails(outbox, "invitation", ada)) == 2
    assert events(api, ada, deliver_changes) == [
        ("UserCreated", ["name", "email", "role", "enabled"]),
        ("InvitationResent", []),
    ]


def test_a_disabled_user_gets_no_invitation(api: Api, outbox: Path) -> None:
    ada = create(api)
    assert api.request("PUT", f"/users/{ada['userId']}", ADMIN, {"enabled": False}).status_code == 200
    assert_error(act(api, ada, "invitation"), 409)
    assert len(mails(outbox, "invitation", ada)) == 1


def test_one_key_one_invitation_and_one_event(api: Api, outbox: Path, deliver_changes: Deliver) -> None:
    ada = create(api)
    first = act(api, ada, "invitation", key="resend-1")
    again = act(api, ada, "invitation", key="resend-1")
    assert first.status_code == again.status_code == 200
    assert again.json_body == first.json_body
    assert len(mails(outbox, "invitation", ada)) == 2
    assert [kind for kind, _ in events(api, ada, deliver_changes)] == ["UserCreated", "InvitationResent"]
    # Without a key, each request is another action: sent again, another event.
    assert act(api, ada, "invitation").status_code == 200
    assert [kind for kind, _ in events(api, ada, deliver_changes)].count("InvitationResent") == 2


# --- password reset and sign-out: revocation -------------------------------------------------------


@pytest.mark.parametrize(("action", "status"), [("password-reset", "RESET_REQUIRED"), ("sign-out", "CONFIRMED")])
def test_tokens_issued_before_are_refused_and_one_issued_after_the_answer_accepted(
    api: Api, pool: str, outbox: Path, deliver_changes: Deliver, action: str, status: str, drift: Drift
) -> None:
    ada = signed_in(pool, create(api))
    before = token_at(ada, int(time.time()))  # issued in the very second of the action
    assert api.request("GET", "/users/me", before).status_code == 200
    response = act(api, ada, action)
    assert response.status_code == 200, response.body
    after = token_at(ada, int(time.time()))  # issued once the answer came
    assert_error(api.request("GET", "/users/me", before), 401)
    assert api.request("GET", "/users/me", after).status_code == 200
    assert stored_sign_in(pool, ada["userId"])["UserStatus"] == status
    assert int(item(ada)["tokensValidAfter"]["N"]) < int(time.time()) + 1
    kind = {"password-reset": "PasswordReset", "sign-out": "SignedOut"}[action]
    assert [k for k, _ in events(api, ada, deliver_changes)] == ["UserCreated", kind]
    assert len(mails(outbox, "passwordReset", ada)) == (1 if action == "password-reset" else 0)
    assert drift.check().clean


def test_a_password_reset_needs_a_user_who_signed_in(api: Api, pool: str) -> None:
    ada = create(api)
    body = assert_error(act(api, ada, "password-reset"), 409)
    assert "never signed in" in body["error"]
    assert api.request("GET", f"/users/{ada['userId']}", ADMIN).json_body["version"] == 1


def test_a_disabled_user_is_signed_out_but_not_reset(api: Api, pool: str) -> None:
    ada = signed_in(pool, create(api))
    assert api.request("PUT", f"/users/{ada['userId']}", ADMIN, {"enabled": False}).status_code == 200
    assert_error(act(api, ada, "password-reset"), 409)
    assert act(api, ada, "sign-out").status_code == 200


# --- faults below botocore's retry handler ------------------------------------------------------------


@pytest.mark.parametrize("action", ["invitation", "password-reset", "sign-out"])
def test_a_failed_record_write_is_503_and_its_keyed_retry_records_it_once(
    api: Api, pool: str, faults: Faults, deliver_changes: Deliver, action: str
) -> None:
    ada = create(api)
    if action != "invitation":
        signed_in(pool, ada)
    faults.inject("TransactWriteItems", aws_error(500, "InternalServerError"))
    failed = act(api, ada, action, key="k-1")
    faults.clear()
    assert_error(failed, 503)
    assert failed.headers["Retry-After"]
    assert api.request("GET", f"/users/{ada['userId']}", ADMIN).json_body["version"] == 1
    retried = act(api, ada, action, key="k-1")
    assert retried.status_code == 200, retried.body
    assert retried.json_body["user"]["version"] == 2
    assert len([k for k, _ in events(api, ada, deliver_changes) if k != "UserCreated"]) == 1


@pytest.mark.parametrize("action", ["invitation", "password-reset", "sign-out"])
def test_a_slow_success_is_recorded_once(
    api: Api, pool: str, faults: Faults, deliver_changes: Deliver, action: str
) -> None:
    ada = create(api)
    if action != "invitation":
        signed_in(pool, ada)
    faults.inject("TransactWriteItems", answered_late, times=1)  # applied, answer lost, resent
    response = act(api, ada, action)
    faults.clear()
    assert response.status_code == 200, response.body
    assert response.json_body["user"]["version"] == 2
    assert len([k for k, _ in events(api, ada, deliver_changes) if k != "UserCreated"]) == 1


def test_a_keyed_retry_after_the_answer_was_lost_does_not_act_again(
    api: Api, pool: str, faults: Faults, outbox: Path, deliver_changes: Deliver
) -> None:
    """The record was written on every attempt's first try but never answered: 503. The retry
    finds its own action among the record's and answers without a second invitation or event."""
    ada = create(api)
    faults.inject("TransactWriteItems", answered_late)
    failed = act(api, ada, "invitation", key="k-2")
    faults.clear()
    assert_error(failed, 503)  # every attempt's answer lost: the outcome is unknown to the API
    retried = act(api, ada, "invitation", key="k-2")
    assert retried.status_code == 200, retried.body
    assert len(mails(outbox, "invitation", ada)) == 2
    assert [k for k, _ in events(api, ada, deliver_changes)] == ["UserCreated", "InvitationResent"]


def test_a_cognito_failure_changes_nothing_and_the_retry_completes(
    api: Api, pool: str, deliver_changes: Deliver
) -> None:
    ada = signed_in(pool, create(api))
    before = token_at(ada, int(time.time()) - 2)
    cognito = Faults(aws.client("cognito-idp"))
    try:
        cognito.inject("AdminUserGlobalSignOut", aws_error(500, "InternalErrorException"))
        failed = act(api, ada, "sign-out", key="k-3")
    finally:
        cognito.close()
    assert_error(failed, 503)
    assert api.request("GET", f"/users/{ada['userId']}", ADMIN).json_body["version"] == 1
    assert api.request("GET", "/users/me", before).status_code == 200  # nothing revoked yet
    assert act(api, ada, "sign-out", key="k-3").status_code == 200
    assert_error(api.request("GET", "/users/me", before), 401)
    assert [k for k, _ in events(api, ada, deliver_changes)] == ["UserCreated", "SignedOut"]
