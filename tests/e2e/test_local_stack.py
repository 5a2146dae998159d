"""The API over real HTTP against the embedded stack, with tokens issued by its Cognito."""

from __future__ import annotations

import signal
import stat
import uuid
from pathlib import Path

import pytest
import requests

from chalicelib.config import DEFAULT_LOCAL_ORIGINS
from tests.e2e.conftest import Stack, running_stack, stop_stack
from tests.support.listeners import listening
from tests.support.local_api import call
from tests.support.waiting import wait_until

TIMEOUT = 15


def test_stack_file_has_the_documented_keys(stack: Stack) -> None:
    required = {
        "api_url",
        "aws_endpoint_url",
        "region",
        "table_name",
        "user_pool_id",
        "user_pool_client_id",
        "admin_username",
        "admin_password",
    }
    assert required <= set(stack.info)
    assert stack.url.startswith("http://127.0.0.1:")
    assert stack.stack_file.stat().st_mode & 0o077 == 0


def test_every_file_the_stack_writes_is_readable_by_its_owner_only(stack: Stack) -> None:
    """The stack file (seeded passwords), its log (which prints them), the outbox (temporary
    passwords) and the change events, each 0600 from its first write (tests/unit/test_private_files.py)."""
    email = f"private-{uuid.uuid4().hex[:8]}@example.com"
    created = call(stack, "POST", "/users", stack.token(), {"name": "Pat", "email": email})
    assert created.status_code == 201, created.text
    outbox, events = Path(stack.info["outbox_file"]), Path(stack.info["events_file"])
    user_id = created.json()["user"]["userId"]
    assert wait_until(lambda: events.exists() and user_id in events.read_text(), 30.0)
    assert email in outbox.read_text()
    written = {path.name: stat.S_IMODE(path.stat().st_mode) for path in stack.stack_file.parent.iterdir()}
    assert {stack.stack_file.name, "stack.log", outbox.name, events.name} <= set(written)
    assert written == dict.fromkeys(written, 0o600)


def test_id_tokens_carry_email_and_groups(stack: Stack) -> None:
    import jwt

    claims = jwt.decode(stack.token(), options={"verify_signature": False})
    assert claims["token_use"] == "id"
    assert claims["email"] == stack.info["admin_username"]
    assert "admins" in claims["cognito:groups"]


def test_admin_walkthrough_create_list_page_read_update_delete(stack: Stack) -> None:
    admin = stack.token()
    assert call(stack, "GET", "/hello").json()["message"] == "Hello from serverless!"
    run = uuid.uuid4().hex[:8]
    ids = []
    for i in range(5):
        response = call(stack, "POST", "/users", admin, {"name": f"User {i}", "email": f"{run}-{i}@example.com"})
        assert response.status_code == 201, response.text
        assert response.headers["Location"] == f"/users/{response.json()['user']['userId']}"
        ids.append(response.json()["user"]["userId"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = call(stack, "GET", "/users", admin, params=params).json()
        seen += [user["userId"] for user in page["users"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    user_id = ids[0]
    assert call(stack, "GET", f"/users/{user_id}", admin).json()["name"] == "User 0"
    updated = call(stack, "PUT", f"/users/{user_id}", admin, {"phone": "+14155550123"})
    assert updated.status_code == 200 and updated.json()["user"]["phone"] == "+14155550123"
    assert call(stack, "DELETE", f"/users/{user_id}", admin).json() == {"message": "User deleted successfully"}
    assert call(stack, "GET", f"/users/{user_id}", admin).status_code == 404


def test_a_member_only_sees_and_changes_their_own_profile(stack: Stack) -> None:
    admin = stack.token()
    # Its own member: the contract test, which shares this stack, may delete any listed user.
    email = f"member-{uuid.uuid4().hex[:8]}@example.com"
    member = stack.add_user(email, "Sup3r-secret-pass!")
    other = call(stack, "POST", "/users", admin, {"name": "Other", "email": f"{uuid.uuid4().hex[:8]}@example.com"})
    other_id = other.json()["user"]["userId"]
    assert call(stack, "GET", "/users", member).status_code == 403
    assert call(stack, "GET", f"/users/{other_id}", member).status_code == 403
    assert call(stack, "PUT", f"/users/{other_id}", member, {"name": "Mallory"}).status_code == 403
    assert call(stack, "DELETE", f"/users/{other_id}", member).status_code == 403
    me = call(stack, "PUT", "/users/me", member, {"name": "Member"})
    assert me.status_code in (200, 201)
    profile = call(stack, "GET", "/users/me", member).json()
    assert profile["email"] == email
    assert call(stack, "GET", f"/users/{profile['userId']}", member).status_code == 200


def test_malformed_and_forged_tokens_get_a_401_response_not_a_dropped_connection(stack: Stack) -> None:
    admin = stack.token()
    header, payload, signature = admin.split(".")
    for authorization in [
        "garbage",
        "Bearer x.y",
        "Bearer !!!.###.$$$",
        f"{header}.{payload}.{signature[::-1]}",
        "Bearer ",
    ]:
        response = requests.get(stack.url + "/users", headers={"Authorization": authorization}, timeout=TIMEOUT)
        assert response.status_code == 401, authorization
        assert response.json()["error"]
    assert requests.get(stack.url + "/users", timeout=TIMEOUT).status_code == 401


@pytest.mark.parametrize("origin", DEFAULT_LOCAL_ORIGINS)
def test_cors_preflight_succeeds_without_a_token_for_each_local_origin(stack: Stack, origin: str) -> None:
    response = requests.options(
        stack.url + "/users",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response.headers["Vary"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    for header in ("authorization", "content-type", "idempotency-key", "if-match", "if-none-match", "x-correlation-id"):
        assert header in allowed


@pytest.mark.parametrize("origin", DEFAULT_LOCAL_ORIGINS)
def test_every_answer_names_the_allowed_origin_that_asked(stack: Stack, origin: str) -> None:
    headers = {"Origin": origin}
    for response in (
        call(stack, "GET", "/hello", headers=headers),
        call(stack, "GET", "/users", stack.token(), headers=headers),
        call(stack, "GET", "/users", headers=headers),  # 401
        call(stack, "GET", "/nowhere", headers=headers),  # the gateway's own 404
    ):
        assert response.headers["Access-Control-Allow-Origin"] == origin, response.url
        assert "Origin" in response.headers["Vary"]


def test_an_origin_not_allowed_is_never_named(stack: Stack) -> None:
    headers = {"Origin": "http://127.0.0.1:3001"}
    preflight = requests.options(
        stack.url + "/users", headers={**headers, "Access-Control-Request-Method": "POST"}, timeout=TIMEOUT
    )
    for response in (
        preflight,
        call(stack, "GET", "/hello", headers=headers),
        call(stack, "GET", "/x", headers=headers),
    ):
        assert "Access-Control-Allow-Origin" not in response.headers, response.url
        assert response.headers.get("Access-Control-Allow-Origin") != "*"


def test_the_openapi_document_names_the_api_where_it_was_found(stack: Stack) -> None:
    """Imported into Postman or any OpenAPI client, it needs no edits."""
    assert call(stack, "GET", "/openapi.json").json()["servers"] == [{"url": stack.url}]
    port = stack.url.rsplit(":", 1)[1]
    by_name = call(stack, "GET", "/openapi.json", headers={"Host": f"localhost:{port}"}).json()
    assert by_name["servers"] == [{"url": f"http://localhost:{port}"}]


def test_unknown_route_is_404_and_undeclared_method_405(stack: Stack) -> None:
    missing = requests.get(stack.url + "/does-not-exist", timeout=TIMEOUT)
    assert missing.status_code == 404 and missing.json() == {"error": "Not found"}
    assert missing.headers["X-Content-Type-Options"] == "nosniff"
    assert missing.headers["Cache-Control"] == "no-store"
    wrong = requests.patch(stack.url + "/users", headers={"Authorization": stack.token()}, timeout=TIMEOUT)
    assert wrong.status_code == 405 and wrong.json()["error"]


def test_make_user_makes_the_sign_in_and_its_record(stack: Stack) -> None:
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    token = stack.add_user(email, "Sup3r-secret-pass!")
    mine = call(stack, "GET", "/users/me", token)
    assert mine.status_code == 200 and mine.json()["email"] == email and mine.json()["role"] == "member"
    updated = call(stack, "PUT", "/users/me", token, {"name": "Newcomer"})
    assert updated.status_code == 200 and updated.json()["user"]["name"] == "Newcomer"


def test_a_sign_in_made_outside_the_api_creates_its_own_profile(stack: Stack) -> None:
    """As one made in the AWS console: no record until its first PUT /users/me."""
    email = f"console-{uuid.uuid4().hex[:8]}@example.com"
    idp = stack.client("cognito-idp")
    pool = stack.info["user_pool_id"]
    idp.admin_create_user(
        UserPoolId=pool,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool, Username=email, Password="Sup3r-secret-pass!", Permanent=True)
    token = stack.token(email, "Sup3r-secret-pass!")
    assert call(stack, "GET", "/users/me", token).status_code == 404
    created = call(stack, "PUT", "/users/me", token, {"name": "Newcomer"})
    assert created.status_code == 201
    assert created.json()["user"]["email"] == email


def test_ctrl_c_stops_everything_and_removes_the_stack_file(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        api_url, moto_url = stack.url, stack.info["aws_endpoint_url"]
        assert requests.get(api_url + "/hello", timeout=TIMEOUT).status_code == 200
        assert stop_stack(stack, signal.SIGINT) == 0
    assert not stack.stack_file.exists()
    assert not listening(api_url) and not listening(moto_url)
    assert "Stopped" in (tmp_path / "stack.log").read_text()
