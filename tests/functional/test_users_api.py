"""Every route and every status code, through the app's middleware and Chalice's test client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.adapters.dynamodb import user_to_item
from chalicelib.config import DEFAULT_MAX_BODY_BYTES
from chalicelib.domain.models import User
from tests.functional.conftest import ORIGIN, TABLE, Api
from tests.support import tokens
from tests.support.counting import counting

ADMIN = tokens.ADMIN
MEMBER_SUB = str(uuid.uuid4())
MEMBER = tokens.token(sub=MEMBER_SUB, email="member@example.com")
OTHER_SUB = str(uuid.uuid4())
OTHER = tokens.token(sub=OTHER_SUB, email="other@example.com")


def create(api: Api, email: str = "ada@example.com", name: str = "Ada", **extra: Any) -> dict[str, Any]:
    response = api.request("POST", "/users", ADMIN, {"name": name, "email": email, **extra})
    assert response.status_code == 201, response.body
    return dict(response.json_body["user"])


def all_users(api: Api) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    cursor = None
    while True:
        path = "/users?limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = api.request("GET", path, ADMIN).json_body
        users += page["users"]
        cursor = page["nextCursor"]
        if cursor is None:
            return users


def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == "application/json"
    body = dict(response.json_body)
    assert isinstance(body["error"], str) and body["error"]
    assert set(body) <= {"error", "details"}
    text = response.body.decode()
    for leak in ("Traceback", "botocore", "ClientError", "Exception", "dynamodb"):
        assert leak not in text
    return body


# --- public routes ---------------------------------------------------------------------------


def test_hello_returns_the_request_id(api: Api) -> None:
    response = api.request("GET", "/hello")
    assert response.status_code == 200
    body = response.json_body
    assert body["message"] == "Hello from serverless!"
    uuid.UUID(body["timestamp"])
    assert response.headers["Cache-Control"].startswith("public")


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer not-a-jwt",
        "a.b.c",
        "Bearer " + tokens.sign(tokens.claims(groups=["admins"]), kid="unknown-kid"),
        "Bearer " + tokens.sign(tokens.claims(groups=["admins"], exp=1)),
        "Bearer " + tokens.sign(tokens.claims(groups=["admins"], aud="another-client")),
        "Bearer " + tokens.sign(tokens.claims(groups=["admins"], iss="https://evil.example.com")),
        "Bearer " + tokens.sign(tokens.claims(groups=["admins"], token_use="access")),
    ],
    ids=["missing", "empty", "bearer-only", "garbage", "not-base64", "unknown-kid", "expired", "aud", "iss", "access"],
)
def test_bad_tokens_get_401_and_reach_no_handler(api: Api, ddb: Any, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with counting(ddb) as calls:
        response = api.request("POST", "/users", body={"name": "x", "email": "x@example.com"}, headers=headers)
        listing = api.request("GET", "/users", headers=headers)
    assert_error(response, 401)
    assert_error(listing, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert calls.total == 0


def test_forged_signature_is_refused(api: Api) -> None:
    header, _payload, signature = tokens.admin_token().split(".")
    forged_payload = tokens.token(sub="x", groups=["admins"]).split(".")[1]
    assert_error(api.request("GET", "/users", f"{header}.{forged_payload}.{signature}"), 401)


def test_bare_token_and_bearer_token_are_both_accepted(api: Api) -> None:
    assert api.request("GET", "/users", headers={"Authorization": ADMIN}).status_code == 200
    assert api.request("GET", "/users", headers={"Authorization": f"bearer {ADMIN}"}).status_code == 200


@pytest.mark.filterwarnings("ignore:CognitoUserPoolAuthorizer is not a supported:UserWarning")
def test_stock_chalice_gateway_claims_are_never_trusted_outside_lambda(stock_api: Api) -> None:
    # Chalice's local gateway decodes this unsigned-by-us token into admin "claims"; the app
    # must ignore them and verify the signature itself.
    forged = tokens.sign(tokens.claims(groups=["admins"]), kid=tokens.KID + "-other")
    assert_error(stock_api.request("GET", "/users", forged), 401)


@pytest.mark.filterwarnings("ignore:CognitoUserPoolAuthorizer is not a supported:UserWarning")
def test_in_lambda_the_api_gateway_claims_are_used(stock_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import bootstrap

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "users-api-test")
    bootstrap.reset()
    # In Lambda, API Gateway has verified the token: the (stock) gateway's claims stand in for its.
    response = stock_api.request("GET", "/users", tokens.admin_token())
    assert response.status_code == 200
    assert_error(stock_api.request("GET", "/users", tokens.token()), 403)
    assert_error(stock_api.request("GET", "/users"), 401)


# --- access ------------------------------------------------------------------------------------


def test_members_get_403_on_admin_routes(api: Api) -> None:
    user = create(api)
    assert_error(api.request("GET", "/users", MEMBER), 403)
    assert_error(api.request("POST", "/users", MEMBER, {"name": "x", "email": "x@example.com"}), 403)
    assert_error(api.request("DELETE", f"/users/{user['userId']}", MEMBER), 403)
    assert api.request("GET", f"/users/{user['userId']}", ADMIN).status_code == 200


def test_a_member_cannot_read_or_change_another_user_nor_tell_if_it_exists(api: Api) -> None:
    user = create(api)
    for user_id in (user["userId"], str(uuid.uuid4())):
        assert_error(api.request("GET", f"/users/{user_id}", MEMBER), 403)
        assert_error(api.request("PUT", f"/users/{user_id}", MEMBER, {"name": "Mallory"}), 403)
    assert api.request("GET", f"/users/{user['userId']}", ADMIN).json_body["name"] == "Ada"


def test_the_owner_can_read_and_update_their_record_by_id(api: Api, sign_in: Callable[..., str]) -> None:
    sign_in(MEMBER_SUB, "member@example.com")
    created = api.request("PUT", "/users/me", MEMBER, {"name": "Mia"})
    assert created.status_code == 201
    assert created.headers["Location"] == f"/users/{MEMBER_SUB}"
    assert api.request("GET", f"/users/{MEMBER_SUB}", MEMBER).json_body["email"] == "member@example.com"
    updated = api.request("PUT", f"/users/{MEMBER_SUB}", MEMBER, {"phone": "+14155550100"})
    assert updated.status_code == 200
    assert updated.json_body["user"]["phone"] == "+14155550100"
    assert_error(api.request("DELETE", f"/users/{MEMBER_SUB}", MEMBER), 403)


# --- create --------------------------------------------------------------------------------------


def test_create_returns_201_the_user_and_its_location(api: Api) -> None:
    response = api.request(
        "POST", "/users", ADMIN, {"name": "Ada", "email": "ada@example.com", "phone": "+441234567890"}
    )
    assert response.status_code == 201
    body = response.json_body
    assert body["message"] == "User created successfully"
    user = body["user"]
    assert set(user) == {"userId", "name", "email", "phone", "role", "enabled", "createdAt", "updatedAt", "version"}
    assert (user["role"], user["enabled"]) == ("member", True)
    assert (user["name"], user["email"], user["phone"], user["version"]) == (
        "Ada",
        "ada@example.com",
        "+441234567890",
        1,
    )
    assert user["createdAt"] == user["updatedAt"] and user["createdAt"].endswith("Z")
    assert response.headers["Location"] == f"/users/{user['userId']}"
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Location" in response.headers["Access-Control-Expose-Headers"]
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_duplicate_email_gets_409_case_insensitively(api: Api) -> None:
    create(api, email="ada@example.com")
    assert_error(api.request("POST", "/users", ADMIN, {"name": "Other", "email": "ADA@Example.com"}), 409)
    assert len(all_users(api)) == 1


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("missing name", {"email": "a@example.com"}, "name"),
    ("missing email", {"name": "A"}, "email"),
    ("empty name", {"name": "  ", "email": "a@example.com"}, "name"),
    ("name not a string", {"name": 42, "email": "a@example.com"}, "name"),
    ("email not a string", {"name": "A", "email": ["a@example.com"]}, "email"),
    ("bad email", {"name": "A", "email": "not-an-email"}, "email"),
    ("phone not E.164", {"name": "A", "email": "a@example.com", "phone": "555-1234"}, "phone"),
    ("long name", {"name": "x" * 101, "email": "a@example.com"}, "name"),
    ("long email", {"name": "A", "email": "a" * 60 + "@" + "b" * 200 + ".com"}, "email"),
    ("client sets userId", {"name": "A", "email": "a@example.com", "userId": "mine"}, "userId"),
    ("client sets createdAt", {"name": "A", "email": "a@example.com", "createdAt": "2020-01-01"}, "createdAt"),
    ("client sets updatedAt", {"name": "A", "email": "a@example.com", "updatedAt": "2020-01-01"}, "updatedAt"),
    ("client sets groups", {"name": "A", "email": "a@example.com", "groups": ["admins"]}, "groups"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_BODIES, ids=[case for case, _, _ in BAD_BODIES])
def test_invalid_create_bodies_get_400_with_details_and_change_nothing(
    api: Api, case: str, body: Any, field: str
) -> None:
    error = assert_error(api.request("POST", "/users", ADMIN, body), 400)
    assert field in {detail["field"] for detail in error["details"]}
    assert all_users(api) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), ('"text"', "JSON object"), ("", "required")],
)
def test_malformed_bodies_get_400(api: Api, raw: str, message: str) -> None:
    response = api.request("POST", "/users", ADMIN, raw=raw, headers={"Content-Type": "application/json"})
    assert message in assert_error(response, 400)["error"]


def test_non_json_content_type_gets_415(api: Api) -> None:
    body = json.dumps({"name": "A", "email": "a@example.com"})
    assert_error(api.request("POST", "/users", ADMIN, raw=body, headers={"Content-Type": "text/plain"}), 415)
    form = api.request(
        "POST", "/users", ADMIN, raw="name=A", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_error(form, 415)
    assert all_users(api) == []


def test_oversized_body_gets_413(api: Api) -> None:
    body = {"name": "A", "email": "a@example.com", "padding": "x" * DEFAULT_MAX_BODY_BYTES}
    assert_error(api.request("POST", "/users", ADMIN, body), 413)
    assert all_users(api) == []


# --- list ------------------------------------------------------------------------------------------


def test_paging_returns_every_user_exactly_once(api: Api) -> None:
    created = {create(api, email=f"user{i}@example.com")["userId"] for i in range(7)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/users?limit=3" + (f"&cursor={cursor}" if cursor else "")
        response = api.request("GET", path, ADMIN)
        assert response.status_code == 200
        page = response.json_body
        assert page["count"] == len(page["users"]) <= 3
        seen += [user["userId"] for user in page["users"]]
        cursor = page["nextCursor"]
        pages += 1
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(created)


def test_default_page_is_50(api: Api, ddb: Any) -> None:
    # Stored directly: what is under test is the listing, not 51 creates.
    for i in range(51):
        now = "2026-01-01T00:00:00.000Z"
        user = User(f"00000000-0000-4000-8000-{i:012d}", f"U{i}", f"u{i}@example.com", now, now, 1)
        ddb.put_item(TableName=TABLE, Item=user_to_item(user))
    page = api.request("GET", "/users", ADMIN).json_body
    assert page["count"] == 50 and page["nextCursor"]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=abc", "limit=-1", "limit=", "cursor=", "cursor=forged.cursor"]
)
def test_bad_limit_or_cursor_gets_400(api: Api, query: str) -> None:
    assert_error(api.request("GET", f"/users?{query}", ADMIN), 400)


def test_a_tampered_cursor_gets_400(api: Api) -> None:
    for i in range(3):
        create(api, email=f"u{i}@example.com")
    cursor = api.request("GET", "/users?limit=1", ADMIN).json_body["nextCursor"]
    payload, signature = cursor.split(".")
    tampered = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    assert_error(api.request("GET", f"/users?cursor={tampered}", ADMIN), 400)
    assert api.request("GET", f"/users?cursor={cursor}", ADMIN).status_code == 200


# --- read, update, delete ------------------------------------------------------------------------


def test_get_unknown_or_malformed_id_is_404(api: Api) -> None:
    assert_error(api.request("GET", f"/users/{uuid.uuid4()}", ADMIN), 404)
    assert_error(api.request("GET", "/users/EMAIL%23ada@example.com", ADMIN), 404)


def test_partial_update_changes_only_the_given_fields(api: Api) -> None:
    user = create(api, phone="+14155550100")
    response = api.request("PUT", f"/users/{user['userId']}", ADMIN, {"name": "Ada Lovelace"})
    assert response.status_code == 200
    body = response.json_body
    assert body["message"] == "User updated successfully"
    updated = body["user"]
    assert updated["name"] == "Ada Lovelace"
    assert (updated["email"], updated["phone"], updated["createdAt"]) == (
        user["email"],
        user["phone"],
        user["createdAt"],
    )
    assert updated["version"] == 2 and updated["updatedAt"] >= user["updatedAt"]
    removed = api.request("PUT", f"/users/{user['userId']}", ADMIN, {"phone": None}).json_body["user"]
    assert "phone" not in removed


def test_update_of_unknown_user_is_404_and_creates_nothing(api: Api) -> None:
    assert_error(api.request("PUT", f"/users/{uuid.uuid4()}", ADMIN, {"name": "Ghost"}), 404)
    assert all_users(api) == []


@pytest.mark.parametrize(
    "body", [{}, {"userId": "x"}, {"version": 9}, {"name": ""}, {"email": "bad"}, {"phone": "123"}, {"name": None}]
)
def test_invalid_updates_get_400_and_change_nothing(api: Api, body: Any) -> None:
    user = create(api)
    assert_error(api.request("PUT", f"/users/{user['userId']}", ADMIN, body), 400)
    assert api.request("GET", f"/users/{user['userId']}", ADMIN).json_body == user


def test_email_change_to_a_taken_email_is_409_and_frees_nothing(api: Api) -> None:
    ada = create(api, email="ada@example.com")
    create(api, email="bob@example.com", name="Bob")
    assert_error(api.request("PUT", f"/users/{ada['userId']}", ADMIN, {"email": "BOB@example.com"}), 409)
    assert api.request("GET", f"/users/{ada['userId']}", ADMIN).json_body["email"] == "ada@example.com"
    assert_error(api.request("POST", "/users", ADMIN, {"name": "X", "email": "ada@example.com"}), 409)


def test_email_change_releases_the_old_email(api: Api) -> None:
    ada = create(api, email="ada@example.com")
    response = api.request("PUT", f"/users/{ada['userId']}", ADMIN, {"email": "lovelace@example.com"})
    assert response.json_body["user"]["email"] == "lovelace@example.com"
    create(api, email="ada@example.com", name="New Ada")
    assert_error(api.request("POST", "/users", ADMIN, {"name": "X", "email": "Lovelace@example.com"}), 409)


def test_delete_removes_the_user_and_releases_the_email(api: Api) -> None:
    user = create(api)
    response = api.request("DELETE", f"/users/{user['userId']}", ADMIN)
    assert response.status_code == 200
    assert response.json_body == {"message": "User deleted successfully"}
    assert_error(api.request("GET", f"/users/{user['userId']}", ADMIN), 404)
    assert_error(api.request("DELETE", f"/users/{user['userId']}", ADMIN), 404)
    create(api, email=user["email"])


# --- /users/me ---------------------------------------------------------------------------------


def test_profile_lifecycle(api: Api, sign_in: Callable[..., str]) -> None:
    sign_in(MEMBER_SUB, "member@example.com")
    assert_error(api.request("GET", "/users/me", MEMBER), 404)
    assert_error(api.request("PUT", "/users/me", MEMBER, {"phone": "+14155550100"}), 400)  # first PUT needs a name
    created = api.request("PUT", "/users/me", MEMBER, {"name": "Mia", "phone": "+14155550100"})
    assert created.status_code == 201
    assert created.json_body["message"] == "User created successfully"
    profile = created.json_body["user"]
    assert (profile["userId"], profile["email"], profile["name"]) == (MEMBER_SUB, "member@example.com", "Mia")
    updated = api.request("PUT", "/users/me", MEMBER, {"name": "Mia B."})
    assert updated.status_code == 200
    assert updated.json_body["message"] == "User updated successfully"
    assert updated.json_body["user"]["version"] == 2
    assert api.request("GET", "/users/me", MEMBER).json_body["name"] == "Mia B."


@pytest.mark.parametrize("body", [{"email": "x@example.com", "name": "A"}, {"userId": "x", "name": "A"}, {}])
def test_profile_rejects_fields_outside_its_shape(api: Api, body: Any) -> None:
    assert_error(api.request("PUT", "/users/me", MEMBER, body), 400)
    assert_error(api.request("GET", "/users/me", MEMBER), 404)


def test_profile_needs_a_verified_email_and_a_free_one(api: Api, pool: str, sign_in: Callable[..., str]) -> None:
    unverified_sub = sign_in(str(uuid.uuid4()), "u@example.com", verified=False)
    assert_error(api.request("PUT", "/users/me", tokens.token(sub=unverified_sub), {"name": "U"}), 403)
    # A record holds other@ while its own sign-in was moved to another address in the console, and
    # a new console sign-in took other@: its profile cannot have the address another record holds.
    held = create(api, email="other@example.com")
    moved = [{"Name": "email", "Value": "moved@example.com"}, {"Name": "email_verified", "Value": "true"}]
    aws.client("cognito-idp").admin_update_user_attributes(
        UserPoolId=pool, Username=held["userId"], UserAttributes=moved
    )
    sign_in(OTHER_SUB, "other@example.com")
    assert_error(api.request("PUT", "/users/me", OTHER, {"name": "O"}), 409)


# --- methods, routes -------------------------------------------------------------------------------


def test_undeclared_method_gets_405_json(api: Api) -> None:
    response = api.request("PATCH", "/users", ADMIN)
    assert_error(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_unknown_route_gets_404_json(api: Api) -> None:
    assert_error(api.request("GET", "/nope", ADMIN), 404)


# --- DynamoDB requests per operation, through the whole pipeline ----------------------------------


def test_each_operation_makes_the_minimum_dynamodb_requests(api: Api, ddb: Any) -> None:
    counts: dict[str, int] = {}
    with counting(ddb) as calls:
        user = create(api)
        counts["create"] = calls.take()
        api.request("GET", f"/users/{user['userId']}", ADMIN)
        counts["get"] = calls.take()
        api.request("PUT", f"/users/{user['userId']}", ADMIN, {"name": "B"})
        counts["update"] = calls.take()
        api.request("GET", "/users", ADMIN)
        counts["list"] = calls.take()
        api.request("GET", "/users?role=member&enabled=true", ADMIN)
        counts["list, one state"] = calls.take()
        api.request("GET", f"/users?email={user['email']}", ADMIN)
        counts["find by email"] = calls.take()
        api.request("PUT", f"/users/{user['userId']}", ADMIN, {"email": "new@example.com"})
        counts["email change"] = calls.take()
        api.request("DELETE", f"/users/{user['userId']}", ADMIN)
        counts["delete"] = calls.take()
    # An email change: the update that finds another email, one transaction, then the read that
    # confirms the sign-in followed the latest record (chalicelib/domain/service.py, _follow).
    assert counts == {
        "create": 1,
        "get": 1,
        "update": 1,
        "list": 4,  # one Query per role#enabled partition, with this few users
        "list, one state": 1,
        "find by email": 2,  # the reservation, then its owner
        "email change": 3,
        "delete": 2,
    }
