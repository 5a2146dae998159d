"""Issue 21 over real HTTP against the running local stack: docs/API.md's lines for the admins'
sign-in actions and a user's own email change, run by bash as written (the code read back with
`make -s outbox`), then what they did: tokens refused or accepted, the mails in the outbox, and
one change event per action on the bus."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import jwt

from devstack.process import PROJECT_DIR
from tests.e2e.conftest import Stack
from tests.support.local_api import call, shell_env
from tests.support.waiting import wait_until

API_MD = PROJECT_DIR / "docs" / "API.md"
PASSWORD = "E2e-passw0rd-21!"
DELIVERY_S = 30.0


def documented() -> list[str]:
    """The commands of API.md's first bash block, continuation lines joined, comments dropped."""
    block = re.findall(r"```bash\n(.*?)```", API_MD.read_text(), re.S)[0]
    commands: list[str] = []
    current: list[str] = []
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        code = line.split("  #", 1)[0].rstrip()
        current.append(code)
        if not code.endswith("\\"):
            commands.append("\n".join(current))
            current = []
    return commands


def run(stack: Stack, command: str, **env: str) -> str:
    done = subprocess.run(
        ["bash", "-c", command],
        env={**shell_env(stack.stack_file), "API": stack.url, **env},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def outbox(stack: Stack) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run(stack, "make -s outbox LAST=1000").splitlines() if line.strip()]


def published(stack: Stack, user_id: str) -> list[str]:
    path = Path(stack.info["events_file"])
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    return [entry["DetailType"] for entry in entries if json.loads(entry["Detail"])["userId"] == user_id]


def sub_of(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def test_the_documented_actions_and_email_change_run_as_written(stack: Stack) -> None:
    admin = stack.token()
    tag = uuid.uuid4().hex[:8]
    invited = call(stack, "POST", "/users", admin, {"name": "Ivy", "email": f"ivy-{tag}@example.com"})
    assert invited.status_code == 201, invited.text
    invited_id = invited.json()["user"]["userId"]
    sam_token = stack.add_user(f"sam-{tag}@example.com", PASSWORD)
    sam_id = sub_of(sam_token)
    mia_token = stack.add_user(f"mia-{tag}@example.com", PASSWORD)
    mia_id = sub_of(mia_token)

    commands = documented()
    actions = {
        action: next(c for c in commands if f"$USER_ID/{action}" in c)
        for action in ("invitation", "password-reset", "sign-out")
    }
    resent = json.loads(run(stack, actions["invitation"], TOKEN=admin, USER_ID=invited_id))
    assert resent["user"]["userId"] == invited_id and resent["user"]["version"] == 2
    # A user who has signed in gets no invitation (409) but a reset, then a sign-out.
    refused = json.loads(run(stack, actions["invitation"], TOKEN=admin, USER_ID=sam_id))
    assert "signed in already" in refused["error"]
    assert json.loads(run(stack, actions["password-reset"], TOKEN=admin, USER_ID=sam_id))["user"]["version"] == 2
    assert call(stack, "GET", "/users/me", sam_token).status_code == 401  # issued before the reset
    assert json.loads(run(stack, actions["sign-out"], TOKEN=admin, USER_ID=sam_id))["user"]["version"] == 3

    # Mia changes her own email: the request, then the code from the outbox.
    request = next(c for c in commands if '"email": "mia.new@example.com"' in c)
    verify = "\n".join(c for c in commands if c.startswith("CODE=") or "/users/me/email-verification" in c)
    pending = json.loads(run(stack, request, MEMBER=mia_token))["user"]
    assert (pending["email"], pending["pendingEmail"]) == (f"mia-{tag}@example.com", "mia.new@example.com")
    changed = json.loads(run(stack, verify, MEMBER=mia_token))["user"]
    assert changed["email"] == "mia.new@example.com" and "pendingEmail" not in changed
    assert call(stack, "GET", "/users/me", mia_token).status_code == 401  # carries the old address
    fresh = stack.token("mia.new@example.com", PASSWORD)  # she signs in with the new one
    assert call(stack, "GET", "/users/me", fresh).json()["email"] == "mia.new@example.com"
    taken = call(stack, "POST", "/users", admin, {"name": "Old", "email": f"mia-{tag}@example.com"})
    assert taken.status_code == 201, taken.text  # the old address was released

    mails = outbox(stack)
    assert [m["kind"] for m in mails if m["userId"] == invited_id] == ["invitation", "invitation"]
    assert [m["kind"] for m in mails if m["userId"] == sam_id] == ["passwordReset"]
    codes = [m for m in mails if m["userId"] == mia_id]
    assert [(m["kind"], m["to"]) for m in codes] == [("emailVerification", "mia.new@example.com")]

    assert wait_until(lambda: "InvitationResent" in published(stack, invited_id), DELIVERY_S)
    assert wait_until(lambda: published(stack, sam_id)[-2:] == ["PasswordReset", "SignedOut"], DELIVERY_S), published(
        stack, sam_id
    )
    assert published(stack, invited_id).count("InvitationResent") == 1
