"""Users are Cognito identities: every lifecycle route through the app, with the sign-ins in
moto's Cognito and invitations in the local outbox. Tokens are the tests' own (so a token's
`iat` can be set), for the subs the pool gave."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.domain.errors import LastAdmin
from chalicelib.domain.revocation import Revoked
from tests.functional.conftest import TABLE, Api
from tests.functional.test_users_api import ADMIN, assert_error
from tests.support import tokens
from tests.support.counting import counting
from tests.support.dynamodb_faults import Faults, answered_late, aws_error


def cognito() -> Any:
    return aws.client("cognito-idp")


def sign_in(pool: str, sub: str) -> dict[str, Any]:
    return dict(cognito().admin_get_user(UserPoolId=pool, Username=sub))


def in_admins(pool: str, sub: str) -> bool:
    groups = cognito().admin_list_groups_for_user(UserPoolId=pool, Username=sub)["Groups"]
    return any(group["GroupName"] == "admins" for group in groups)


def token_for(user: dict[str, Any], issued_at: int, admin: bool = False) -> str:
    return tokens.token(
        sub=user["userId"],
        email=user["email"],
        groups=["admins"] if admin else None,
        iat=issued_at,
        auth_time=issued_at,
    )


def issued_after_now(pass_time: Callable[[float], None]) -> int:
    """The `iat` of a token issued after a change made just now: iat has whole seconds, and a token
    of the very second of a change counts as issued before it."""
    pass_time(1.05)
    return int(time.time())


def create(api: Api, email: str = "ada@example.com", role: str | None = None) -> dict[str, Any]:
    body = {"name": "Ada", "email": email, **({"role": role} if role else {})}
    response = api.request("POST", "/users", ADMIN, body)
    assert response.status_code == 201, response.body
    return dict(response.json_body["user"])


def put(api: Api, user: dict[str, Any], body: dict[str, Any], token: str = ADMIN) -> Any:
    return api.request("PUT", f"/users/{user['userId']}", token, body)


# --- create and invite ----------------------------------------------------------------------


def test_create_makes_a_verified_sign_in_whose_sub_is_the_user_id_and_invites_it(
    api: Api, pool: str, outbox: Path
) -> None:
    user = create(api)
    assert (user["role"], user["enabled"]) == ("member", True)
    found = sign_in(pool, user["userId"])
    attributes = {a["Name"]: a["Value"] for a in found["UserAttributes"]}
    assert attributes["sub"] == user["userId"]
    assert (attributes["email"], attributes["email_verified"]) == ("ada@example.com", "true")
    assert found["UserStatus"] == "FORCE_CHANGE_PASSWORD" and not in_admins(pool, user["userId"])
    (message,) = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert message["kind"] == "invitation" and message["to"] == "ada@example.com"
    assert message["userId"] == user["userId"] and len(message["temporaryPassword"]) >= 12


def test_an_admin_created_as_such_is_in_the_group(api: Api, pool: str) -> None:
    user = create(api, role="admin")
    assert user["role"] == "admin" and in_admins(pool, user["userId"])


@pytest.mark.parametrize("email", ["ada@example.com", "ADA@Example.COM"])
def test_a_duplicate_email_is_409_and_makes_no_second_sign_in(api: Api, pool: str, email: str) -> None:
    create(api)
    assert_error(api.request("POST", "/users", ADMIN, {"name": "Twin", "email": email}), 409)
    assert len(cognito().list_users(UserPoolId=pool)["Users"]) == 1


@pytest.mark.parametrize("fault", ["late", "error"])
def test_a_create_whose_record_write_fails_leaves_no_sign_in_for_a_refused_retry(
    api: Api, pool: str, faults: Faults, fault: str
) -> None:
    """The record write of a case variant of a taken address fails on every attempt (503): the
    sign-in it made is taken back at once (a consistent read shows no record), so the keyed retry,
    refused with 409, leaves the pool as it was. (Found by `make fuzz`: the retry adopted the
    sign-in, was refused, and nothing removed it. The emulator's aliases are case-sensitive, so the
    variant gets its own sign-in; on AWS a diverted sign-in's address does the same.)"""
    create(api)
    before = cognito().list_users(UserPoolId=pool)["Users"]
    body, key = {"name": "Twin", "email": "Ada@example.com"}, {"Idempotency-Key": f"twin-{fault}"}
    failing = answered_late if fault == "late" else aws_error(500, "InternalServerError")
    faults.inject("TransactWriteItems", failing, times=aws.MAX_ATTEMPTS)
    assert_error(api.request("POST", "/users", ADMIN, body, headers=key), 503)
    assert cognito().list_users(UserPoolId=pool)["Users"] == before
    assert_error(api.request("POST", "/users", ADMIN, body, headers=key), 409)
    assert cognito().list_users(UserPoolId=pool)["Users"] == before


def test_a_create_whose_record_write_fails_for_a_new_address_completes_on_its_keyed_retry(
    api: Api, pool: str, faults: Faults
) -> None:
    key = {"Idempotency-Key": "fresh"}
    faults.inject("TransactWriteItems", aws_error(500, "InternalServerError"), times=aws.MAX_ATTEMPTS)
    assert_error(api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada@example.com"}, headers=key), 503)
    assert cognito().list_users(UserPoolId=pool)["Users"] == []  # taken back: no record was written
    retry = api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada@example.com"}, headers=key)
    assert retry.status_code == 201, retry.body
    made = [u["Username"] for u in cognito().list_users(UserPoolId=pool)["Users"]]
    assert made == [retry.json_body["user"]["userId"]]


def test_a_keyed_retry_refused_after_its_first_attempt_moved_the_sign_in_gives_the_address_back(
    api: Api, pool: str
) -> None:
    """The only admin's email change with a demotion: its Cognito step is a slow success on every
    attempt (503, the sign-in already holds the new address), and its keyed retry is refused (the
    last enabled admin): the sign-in holds the record's address again. (Found by `make fuzz`.)"""
    admin = create(api, role="admin")
    body, key = {"email": "ada.new@example.com", "role": "member"}, {"Idempotency-Key": "demote"}
    faults = Faults(aws.client("cognito-idp"))
    try:
        faults.inject("AdminUpdateUserAttributes", answered_late, times=aws.MAX_ATTEMPTS)
        assert_error(api.request("PUT", f"/users/{admin['userId']}", ADMIN, body, headers=key), 503)
    finally:
        faults.close()
    assert email_of(sign_in(pool, admin["userId"])) == "ada.new@example.com"  # the first attempt's
    error = assert_error(api.request("PUT", f"/users/{admin['userId']}", ADMIN, body, headers=key), 409)
    assert error["error"] == LastAdmin.message
    assert email_of(sign_in(pool, admin["userId"])) == "ada@example.com"


def email_of(found: dict[str, Any]) -> str:
    return str(next(a["Value"] for a in found["UserAttributes"] if a["Name"] == "email"))


def test_an_invalid_role_is_400_and_creates_nothing(api: Api, pool: str) -> None:
    error = assert_error(
        api.request("POST", "/users", ADMIN, {"name": "A", "email": "a@example.com", "role": "root"}), 400
    )
    assert error["details"] == [{"field": "role", "message": "must be one of admin, member"}]
    assert cognito().list_users(UserPoolId=pool)["Users"] == []


# --- role, state and revocation -------------------------------------------------------------


def test_promotion_and_demotion_revoke_the_earlier_tokens_and_later_ones_carry_the_new_rights(
    api: Api, pool: str, pass_time: Callable[[float], None]
) -> None:
    create(api, email="boss@example.com", role="admin")  # so that Ada is not the last admin below
    user = create(api)
    before = token_for(user, int(time.time()) - 5)
    assert api.request("GET", "/users/me", before).status_code == 200
    assert put(api, user, {"role": "admin"}).json_body["user"]["role"] == "admin"
    assert in_admins(pool, user["userId"])
    error = assert_error(api.request("GET", "/users/me", before), 401)
    assert error["error"] == Revoked.message
    after = token_for(user, issued_after_now(pass_time), admin=True)
    assert api.request("GET", "/users", after).status_code == 200  # admin rights
    pass_time(1.05)  # the demotion comes later than `after` was issued, as in life
    assert put(api, user, {"role": "member"}).status_code == 200
    assert not in_admins(pool, user["userId"])
    assert_error(api.request("GET", "/users", after), 401)
    later = token_for(user, issued_after_now(pass_time))
    assert_error(api.request("GET", "/users", later), 403)  # member rights
    assert api.request("GET", "/users/me", later).status_code == 200


def test_a_token_still_listing_admins_after_a_demotion_acts_as_a_member(api: Api) -> None:
    """Were Cognito's group to lag behind the record, the record still decides."""
    create(api, email="boss@example.com", role="admin")
    user = create(api, email="lag@example.com", role="admin")
    assert put(api, user, {"role": "member"}).status_code == 200
    stale_group = token_for(user, int(time.time()) + 2, admin=True)
    assert_error(api.request("GET", "/users", stale_group), 403)


def test_disable_refuses_every_token_and_the_sign_in_and_enable_lets_back_in(api: Api, pool: str) -> None:
    user = create(api)
    assert put(api, user, {"enabled": False}).json_body["user"]["enabled"] is False
    assert sign_in(pool, user["userId"])["Enabled"] is False
    for issued in (int(time.time()) - 5, int(time.time()) + 2):
        assert_error(api.request("GET", "/users/me", token_for(user, issued)), 401)
    assert put(api, user, {"enabled": True}).status_code == 200
    assert sign_in(pool, user["userId"])["Enabled"] is True
    assert api.request("GET", "/users/me", token_for(user, int(time.time()) + 3)).status_code == 200


def test_an_admins_email_change_changes_the_sign_in(api: Api, pool: str) -> None:
    user = create(api)
    assert put(api, user, {"email": "lovelace@example.com"}).status_code == 200
    attributes = {a["Name"]: a["Value"] for a in sign_in(pool, user["userId"])["UserAttributes"]}
    assert (attributes["email"], attributes["email_verified"]) == ("lovelace@example.com", "true")


def test_an_email_held_by_a_sign_in_without_a_record_is_409_and_changes_nothing(api: Api, pool: str) -> None:
    user = create(api)
    cognito().admin_create_user(UserPoolId=pool, Username="console@example.com", MessageAction="SUPPRESS")
    assert_error(put(api, user, {"email": "console@example.com"}), 409)
    assert api.request("GET", f"/users/{user['userId']}", ADMIN).json_body["email"] == "ada@example.com"


@pytest.mark.parametrize("body", [{"role": "member"}, {"enabled": False}])
def test_admins_cannot_demote_or_disable_themselves(api: Api, body: dict[str, Any]) -> None:
    me = create(api, email="me@example.com", role="admin")
    mine = token_for(me, int(time.time()) + 2, admin=True)
    error = assert_error(put(api, me, body, token=mine), 403)
    assert "yourself" in error["error"] or "own" in error["error"]
    assert_error(api.request("DELETE", f"/users/{me['userId']}", mine), 403)


@pytest.mark.parametrize("change", ["demote", "disable", "delete"])
def test_the_last_enabled_admin_can_be_neither_demoted_disabled_nor_deleted(api: Api, pool: str, change: str) -> None:
    only = create(api, email="only@example.com", role="admin")
    path = f"/users/{only['userId']}"
    if change == "delete":
        response = api.request("DELETE", path, ADMIN)
    else:
        response = put(api, only, {"role": "member"} if change == "demote" else {"enabled": False})
    assert assert_error(response, 409)["error"] == LastAdmin.message
    assert api.request("GET", path, ADMIN).json_body["role"] == "admin" and in_admins(pool, only["userId"])
    create(api, email="second@example.com", role="admin")
    assert (
        api.request("DELETE", path, ADMIN) if change == "delete" else put(api, only, {"enabled": False})
    ).status_code == 200


# --- members --------------------------------------------------------------------------------


def test_a_member_changes_their_own_name_and_phone_only(api: Api, ddb: Any) -> None:
    user = create(api)
    mine = token_for(user, int(time.time()) + 2)
    assert put(api, user, {"name": "Ada L.", "phone": "+14155550100"}, token=mine).status_code == 200
    before = ddb.scan(TableName=TABLE)["Items"]
    for body in ({"email": "new@example.com"}, {"role": "admin"}, {"enabled": False}, {"name": "X", "role": "member"}):
        assert_error(put(api, user, body, token=mine), 403)
    assert ddb.scan(TableName=TABLE)["Items"] == before


# --- delete ---------------------------------------------------------------------------------


def test_delete_removes_the_sign_in_and_refuses_the_users_tokens(api: Api, pool: str) -> None:
    user = create(api)
    token = token_for(user, int(time.time()) - 5)
    assert api.request("DELETE", f"/users/{user['userId']}", ADMIN).status_code == 200
    with pytest.raises(cognito().exceptions.UserNotFoundException):
        sign_in(pool, user["userId"])
    assert_error(api.request("GET", "/users/me", token), 401)
    # The address is free for a new user, with a new sign-in.
    again = create(api)
    assert again["userId"] != user["userId"]


# --- what the revocation check costs --------------------------------------------------------


def test_the_revocation_check_reads_once_per_caller_then_nothing(api: Api, ddb: Any) -> None:
    user = create(api)
    token = token_for(user, int(time.time()) + 2)
    bootstrap.current().standing.clear()  # a container that has not served this caller yet
    with counting(ddb) as calls:
        api.request("GET", "/users/me", token)
        first = calls.take()
        for _ in range(3):
            api.request("GET", "/users/me", token)
        warm = calls.take()
    assert (first, warm) == (2, 3)  # the check's read + the profile's read, then the profile's only


# --- a Cognito step failing in the middle of a request ----------------------------------------


class CognitoFault:
    """Fails every attempt of one Cognito operation below botocore's retry handler (ServiceUnavailable
    after the retries), the way a Cognito outage would; the app's other calls go through."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.client = cognito()
        self.client.meta.events.register(f"before-call.cognito-identity-provider.{operation}", self._fail)

    def _fail(self, **_: Any) -> None:
        from botocore.exceptions import EndpointConnectionError

        raise EndpointConnectionError(endpoint_url="https://cognito-idp")

    def clear(self) -> None:
        self.client.meta.events.unregister(f"before-call.cognito-identity-provider.{self.operation}", self._fail)


@pytest.mark.parametrize("operation", ["AdminCreateUser", "AdminAddUserToGroup", "AdminSetUserPassword"])
def test_a_create_whose_cognito_step_fails_is_503_and_its_keyed_retry_ends_with_one_whole_user(
    api: Api, pool: str, ddb: Any, operation: str
) -> None:
    body, key = {"name": "Ada", "email": "ada@example.com", "role": "admin"}, {"Idempotency-Key": f"k-{operation}"}
    fault = CognitoFault(operation)
    assert_error(api.request("POST", "/users", ADMIN, body, headers=key), 503)
    fault.clear()
    retry = api.request("POST", "/users", ADMIN, body, headers=key)
    assert retry.status_code == 201, retry.body
    user_id = retry.json_body["user"]["userId"]
    assert [u["Username"] for u in cognito().list_users(UserPoolId=pool)["Users"]] == [user_id]
    assert in_admins(pool, user_id)
    records = [i for i in ddb.scan(TableName=TABLE)["Items"] if "listingId" in i]
    assert [r["userId"]["S"] for r in records] == [user_id]


@pytest.mark.parametrize(
    ("operation", "body"),
    [("AdminRemoveUserFromGroup", {"role": "member"}), ("AdminDisableUser", {"enabled": False})],
)
def test_a_change_whose_cognito_step_fails_already_took_the_rights_and_its_retry_completes(
    api: Api, pool: str, operation: str, body: dict[str, Any], pass_time: Callable[[float], None]
) -> None:
    create(api, email="boss@example.com", role="admin")
    user = create(api, role="admin")
    token = token_for(user, issued_after_now(pass_time), admin=True)
    fault = CognitoFault(operation)
    assert_error(put(api, user, body), 503)
    # The record changed: the old token is refused even though Cognito has not followed yet.
    assert_error(api.request("GET", "/users", token), 401)
    fault.clear()
    assert put(api, user, body).status_code == 200
    if operation == "AdminRemoveUserFromGroup":
        assert not in_admins(pool, user["userId"])
    else:
        assert sign_in(pool, user["userId"])["Enabled"] is False


def test_a_delete_whose_cognito_step_fails_is_finished_by_its_retry(api: Api, pool: str) -> None:
    user = create(api)
    key = {"Idempotency-Key": "k-delete"}
    fault = CognitoFault("AdminDeleteUser")
    assert_error(api.request("DELETE", f"/users/{user['userId']}", ADMIN, headers=key), 503)
    fault.clear()
    assert api.request("DELETE", f"/users/{user['userId']}", ADMIN, headers=key).status_code == 200
    assert cognito().list_users(UserPoolId=pool)["Users"] == []
