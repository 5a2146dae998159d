"""A user's whole life over HTTP against the running stack, signing in through its Cognito:
invite, first sign-in, profile, promote, demote, disable, enable, delete; and the drift check."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from infra.stages import load_limits
from tests.e2e.conftest import Stack
from tests.support.local_api import call

NEW_PASSWORD = "A-new-Passw0rd-of-mine!"
PROJECT_DIR = Path(__file__).resolve().parents[2]


def sign_in(stack: Stack, email: str, password: str) -> dict[str, Any]:
    return dict(
        stack.client("cognito-idp").initiate_auth(
            ClientId=stack.info["user_pool_client_id"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
    )


def invitation_for(stack: Stack, email: str) -> dict[str, Any]:
    lines = Path(stack.info["outbox_file"]).read_text().splitlines()
    return next(m for m in map(json.loads, reversed(lines)) if m["to"] == email and m["kind"] == "invitation")


def fresh_token(stack: Stack, email: str) -> str:
    """A token issued after whatever just changed: `iat` has whole seconds, and a token of the very
    second of a change counts as issued before it."""
    time.sleep(1.05)
    return str(sign_in(stack, email, NEW_PASSWORD)["AuthenticationResult"]["IdToken"])


def test_invite_sign_in_promote_demote_disable_enable_delete(stack: Stack) -> None:
    admin = stack.token()
    email = f"life-{uuid.uuid4().hex[:8]}@example.com"

    # Invite: the admin creates the user; Cognito's mail lands in the local outbox.
    created = call(stack, "POST", "/users", admin, {"name": "Lin", "email": email})
    assert created.status_code == 201, created.text
    user = created.json()["user"]
    invitation = invitation_for(stack, email)
    assert invitation["userId"] == user["userId"]
    # Worded as the stage's invitation (infra/limits.json), with the validity the local pool gives.
    days = stack.client("cognito-idp").describe_user_pool(UserPoolId=stack.info["user_pool_id"])["UserPool"][
        "Policies"
    ]["PasswordPolicy"]["TemporaryPasswordValidityDays"]
    assert invitation["subject"] == load_limits()["invitation"]["email_subject"]
    assert f"Sign in as {email} with the temporary password {invitation['temporaryPassword']};" in invitation["message"]
    assert invitation["message"].endswith(f"expires in {days} days.")

    # First sign-in with the temporary password: Cognito asks for a new one.
    challenge = sign_in(stack, email, invitation["temporaryPassword"])
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    done = stack.client("cognito-idp").respond_to_auth_challenge(
        ClientId=stack.info["user_pool_client_id"],
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": NEW_PASSWORD},
    )
    member = done["AuthenticationResult"]["IdToken"]
    profile = call(stack, "GET", "/users/me", member)
    assert profile.status_code == 200 and profile.json() == user  # the record the admin created
    assert call(stack, "PUT", "/users/me", member, {"name": "Lin Y."}).status_code == 200
    assert call(stack, "GET", "/users", member).status_code == 403

    # Promote: the old token is refused, a new one carries admin rights.
    assert call(stack, "PUT", f"/users/{user['userId']}", admin, {"role": "admin"}).status_code == 200
    assert call(stack, "GET", "/users/me", member).status_code == 401
    as_admin = fresh_token(stack, email)
    assert call(stack, "GET", "/users", as_admin).status_code == 200

    # Demote: the admin token is refused within the minute (here at once), a new one is a member's.
    time.sleep(1.05)
    assert call(stack, "PUT", f"/users/{user['userId']}", admin, {"role": "member"}).status_code == 200
    assert call(stack, "GET", "/users", as_admin).status_code == 401
    as_member = fresh_token(stack, email)
    assert call(stack, "GET", "/users", as_member).status_code == 403
    assert call(stack, "GET", "/users/me", as_member).json()["role"] == "member"

    # Disable: Cognito refuses the sign-in, the API the token.
    assert call(stack, "PUT", f"/users/{user['userId']}", admin, {"enabled": False}).status_code == 200
    with pytest.raises(stack.client("cognito-idp").exceptions.NotAuthorizedException):
        sign_in(stack, email, NEW_PASSWORD)
    assert call(stack, "GET", "/users/me", as_member).status_code == 401

    # Enable: back in, with a new token.
    assert call(stack, "PUT", f"/users/{user['userId']}", admin, {"enabled": True}).status_code == 200
    assert call(stack, "GET", "/users/me", fresh_token(stack, email)).status_code == 200

    # Delete: the record, the sign-in, and every token.
    last = fresh_token(stack, email)
    assert call(stack, "DELETE", f"/users/{user['userId']}", admin).status_code == 200
    # The emulator says so; a deployed pool (PreventUserExistenceErrors) answers NotAuthorized.
    with pytest.raises(stack.client("cognito-idp").exceptions.UserNotFoundException):
        sign_in(stack, email, NEW_PASSWORD)
    assert call(stack, "GET", "/users/me", last).status_code == 401
    assert call(stack, "GET", f"/users/{user['userId']}", admin).status_code == 404


def make(target: str, stack: Stack, *variables: str) -> subprocess.CompletedProcess[str]:
    # The commands `make outbox` and `make drift` run, against this test's stack.
    command = {
        "outbox": [sys.executable, "-m", "devstack", "outbox"],
        "drift": [sys.executable, "-m", "infra", "drift", "local", *variables],
    }[target]
    env = {"STACK_FILE": str(stack.stack_file), "PATH": "/usr/bin:/bin", "OUTBOX_FILE": stack.info["outbox_file"]}
    return subprocess.run(command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_make_outbox_shows_the_latest_invitations(stack: Stack) -> None:
    email = f"outbox-{uuid.uuid4().hex[:8]}@example.com"
    assert call(stack, "POST", "/users", stack.token(), {"name": "Oz", "email": email}).status_code == 201
    shown = make("outbox", stack)
    assert shown.returncode == 0, shown.stderr
    assert email in shown.stdout and "temporaryPassword" in shown.stdout


def test_make_drift_reports_a_console_edit_and_fixes_it(stack: Stack) -> None:
    email = f"drift-{uuid.uuid4().hex[:8]}@example.com"
    user = call(stack, "POST", "/users", stack.token(), {"name": "Dee", "email": email}).json()["user"]
    stack.client("cognito-idp").admin_disable_user(UserPoolId=stack.info["user_pool_id"], Username=user["userId"])
    report = make("drift", stack)
    assert report.returncode == 1 and f"{user['userId']} {email}" in report.stdout
    fixed = make("drift", stack, "--fix")
    assert "the sign-in follows the record" in fixed.stdout, fixed.stdout + fixed.stderr
    assert f"{user['userId']} {email}" not in make("drift", stack).stdout
