"""`make token` and `make user` as a developer runs them against a running stack: a refusal is one
clear line on stderr and a non-zero exit, never a traceback, and leaves nothing half-made."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from devstack.__main__ import password_policy
from devstack.process import PROJECT_DIR
from tests.e2e.conftest import Stack
from tests.support.local_api import shell_env

STRONG = "Sup3r-secret-pass!"


def make(stack_file: Path, target: str, **variables: str) -> subprocess.CompletedProcess[str]:
    command = ["make", "-s", "--no-print-directory", target, *(f"{name}={value}" for name, value in variables.items())]
    return subprocess.run(
        command, cwd=PROJECT_DIR, env=shell_env(stack_file), capture_output=True, text=True, timeout=60
    )


def own_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without make's own report of the failed recipe (`make: *** [Makefile:..: token] Error 1`)."""
    assert "Traceback" not in result.stderr + result.stdout
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("make: ***")]


def test_make_token_prints_a_token(stack: Stack) -> None:
    result = make(stack.stack_file, "token")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2 and len(result.stdout.strip().splitlines()) == 1


@pytest.mark.parametrize("username", ["admin@example.com", "nobody@example.com"])
def test_make_token_with_a_wrong_password_says_so_in_one_line(stack: Stack, username: str) -> None:
    result = make(stack.stack_file, "token", USER=username, PASSWORD="wrong-password-1")
    assert result.returncode != 0 and result.stdout == ""
    (line,) = own_lines(result)
    assert line.startswith(f"make token: cannot sign in as {username}: "), line
    assert "wrong-password-1" not in line


def test_make_user_with_a_weak_password_says_so_and_leaves_nothing_behind(stack: Stack) -> None:
    email = f"weak-{uuid.uuid4().hex[:8]}@example.com"
    refused = make(stack.stack_file, "user", EMAIL=email, PASSWORD="short")
    assert refused.returncode != 0 and refused.stdout == ""
    (line,) = own_lines(refused)
    assert line == (
        "make user: The password does not meet the pool's password policy: at least 12 characters, with an "
        "uppercase letter, a lowercase letter, a number and a symbol (nothing was created)"
    )
    assert password_policy() in line  # the policy the pool was created with (infra/limits.json)
    with pytest.raises(ClientError) as missing:
        stack.client("cognito-idp").admin_get_user(UserPoolId=stack.info["user_pool_id"], Username=email)
    assert missing.value.response["Error"]["Code"] == "UserNotFoundException"
    # So the retry works (no UsernameExistsException from a half-made sign-in).
    created = make(stack.stack_file, "user", EMAIL=email, PASSWORD=STRONG)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(f"created {email} (member, userId ")
    assert make(stack.stack_file, "token", USER=email, PASSWORD=STRONG).returncode == 0


def test_make_user_with_an_email_in_use_says_so_in_one_line(stack: Stack) -> None:
    result = make(stack.stack_file, "user", EMAIL=stack.info["admin_username"], PASSWORD=STRONG)
    assert result.returncode != 0
    assert own_lines(result) == ["make user: Email already in use (nothing was created)"]


def test_a_stack_file_left_by_a_stopped_stack_is_named_as_such(stack: Stack, tmp_path: Path) -> None:
    stale = tmp_path / "stack.json"
    info = {**stack.info, "pid": 2**31 - 1}  # above any pid Linux hands out: no such process
    stale.write_text(json.dumps(info))
    for target, variables in (("token", {}), ("user", {"EMAIL": "x@example.com", "PASSWORD": STRONG})):
        result = make(stale, target, **variables)
        assert result.returncode != 0
        (line,) = own_lines(result)
        assert "is no longer running: start one with `make run`" in line, line


def test_an_invited_user_signs_in_from_the_outbox_with_make_token_and_a_new_password(stack: Stack) -> None:
    """The first hour's path for an invited user: POST /users, `make outbox` for the temporary
    password, `make token ... NEW_PASSWORD=...` answers Cognito's NEW_PASSWORD_REQUIRED."""
    import requests

    email = f"invited-{uuid.uuid4().hex[:8]}@example.com"
    created = requests.post(
        f"{stack.url}/users",
        json={"name": "Invited", "email": email},
        headers={"Authorization": f"Bearer {stack.token()}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    shown = make(stack.stack_file, "outbox")
    assert shown.returncode == 0, shown.stderr
    (invitation,) = [json.loads(line) for line in shown.stdout.splitlines() if email in line]
    temporary = invitation["temporaryPassword"]

    asked = make(stack.stack_file, "token", USER=email, PASSWORD=temporary)
    assert asked.returncode != 0 and asked.stdout == ""
    assert own_lines(asked) == [
        f"make token: cannot sign in as {email}: Cognito first asks for NEW_PASSWORD_REQUIRED "
        "(an invited user's first sign-in: add NEW_PASSWORD=...)"
    ]
    weak = make(stack.stack_file, "token", USER=email, PASSWORD=temporary, NEW_PASSWORD="short")
    assert weak.returncode != 0 and "short" not in "".join(own_lines(weak))
    (line,) = own_lines(weak)
    assert line.startswith(f"make token: cannot sign in as {email}: ") and line.endswith(
        f"; the pool's password policy: {password_policy()}"
    )

    signed_in = make(stack.stack_file, "token", USER=email, PASSWORD=temporary, NEW_PASSWORD=STRONG)
    assert signed_in.returncode == 0, signed_in.stderr
    me = requests.get(
        f"{stack.url}/users/me", headers={"Authorization": f"Bearer {signed_in.stdout.strip()}"}, timeout=10
    )
    assert (me.status_code, me.json()["email"], me.json()["userId"]) == (200, email, created.json()["user"]["userId"])
    # From now on the new password is the password.
    assert make(stack.stack_file, "token", USER=email, PASSWORD=STRONG).returncode == 0
