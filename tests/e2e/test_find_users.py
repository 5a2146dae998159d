"""GET /users over real HTTP against the embedded stack: its table has the search indexes, and
filters, sorts and their errors answer as on AWS. Each test makes users of its own run (a tag in
their emails and names), since other tests share the stack."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

from tests.e2e.conftest import Stack
from tests.support.local_api import call, shell_env

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_filters_and_sorts_find_this_runs_users(stack: Stack) -> None:
    admin, run = stack.token(), f"fu{uuid.uuid4().hex[:8]}"
    made = []
    for n, (name, role) in enumerate((("Zed", "member"), ("Åsa", "admin"), ("ada", "member"))):
        body = {"name": f"{run} {name}", "email": f"{run}.{n}@example.com", "role": role}
        response = call(stack, "POST", "/users", admin, body)
        assert response.status_code == 201, response.text
        made.append(response.json()["user"])
    disabled = call(stack, "PUT", f"/users/{made[0]['userId']}", admin, {"enabled": False})
    assert disabled.status_code == 200

    def found(**params: str) -> list[str]:
        response = call(stack, "GET", "/users", admin, params={"q": run.upper(), **params})
        assert response.status_code == 200, response.text
        return [user["name"].removeprefix(f"{run} ") for user in response.json()["users"]]

    # Each user matches twice (name and email both start with the run's tag): listed once.
    assert found() == ["ada", "Zed", "Åsa"]  # by name key: "ada" < "zed" < "åsa"
    assert found(role="admin") == ["Åsa"]
    assert found(enabled="false") == ["Zed"]
    assert found(role="member", enabled="true") == ["ada"]
    by_email = call(stack, "GET", "/users", admin, params={"email": f"{run}.1@EXAMPLE.com"}).json()
    assert [u["userId"] for u in by_email["users"]] == [made[1]["userId"]] and by_email["nextCursor"] is None
    newest = call(stack, "GET", "/users", admin, params={"limit": "100"}).json()["users"]
    mine = [u["userId"] for u in newest if u["email"].startswith(run)]
    assert mine == [u["userId"] for u in reversed(made)]  # newest first


def test_bad_parameters_and_crossed_cursors_get_400_naming_them(stack: Stack) -> None:
    admin = stack.token()
    for params, field in (
        ({"sort": "email"}, "sort"),
        ({"q": "a"}, "q"),
        ({"role": "root"}, "role"),
        ({"enabled": "maybe"}, "enabled"),
        ({"email": "nope"}, "email"),
        ({"page": "2"}, "page"),
    ):
        response = call(stack, "GET", "/users", admin, params=params)
        assert response.status_code == 400, (params, response.text)
        assert field in {d["field"] for d in response.json()["details"]}
    cursor = call(stack, "GET", "/users", admin, params={"limit": "1"}).json()["nextCursor"]
    assert cursor is not None
    crossed = call(stack, "GET", "/users", admin, params={"limit": "1", "sort": "name", "cursor": cursor})
    assert crossed.status_code == 400 and crossed.json()["details"][0]["field"] == "cursor"
    some_user = call(stack, "GET", "/users", admin, params={"limit": "1"}).json()["users"][0]["userId"]
    history = call(stack, "GET", f"/users/{some_user}/history", admin, params={"cursor": cursor})
    assert history.status_code == 400 and history.json()["details"] == [
        {"field": "cursor", "message": "was issued for another route"}
    ]


def test_make_reindex_as_typed_on_the_running_stack(stack: Stack) -> None:
    """docs/DEPLOY.md's `make reindex` (STAGE defaults to the running `make run`): every user of the
    stack already has its keys (this release wrote them all), so it counts them and changes none."""
    admin = stack.token()
    assert call(stack, "POST", "/users", admin, {"name": "Rex", "email": f"rx-{uuid.uuid4().hex[:8]}@example.com"})
    shown = subprocess.run(
        ["make", "--no-print-directory", "reindex"],
        cwd=PROJECT_DIR,
        env=shell_env(stack.stack_file),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert re.search(
        r"local: \d+ users: 0 given their search keys, \d+ already had them, 0 kept changing", shown.stdout
    )


def test_the_api_docs_search_examples_run_as_written(stack: Stack) -> None:
    """docs/API.md's lines that find users, run by bash with its API and TOKEN, after its Lin."""
    admin = stack.token()
    lin = call(stack, "POST", "/users", admin, {"name": "Lin", "email": "lin@example.com"})
    assert lin.status_code in (201, 409), lin.text  # the contract test may have made her already
    lines = [
        line.split("  #", 1)[0]
        for line in (PROJECT_DIR / "docs" / "API.md").read_text().splitlines()
        if line.startswith('curl -s "$API/users?') and ("email=" in line or "q=" in line or "sort=" in line)
    ]
    assert len(lines) == 3
    env = {**shell_env(stack.stack_file), "API": stack.url, "TOKEN": admin}
    for line in lines:
        out = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=30, check=True)
        body = json.loads(out.stdout)
        assert set(body) == {"users", "count", "nextCursor"}, (line, body)
    assert (
        "lin@example.com"
        in subprocess.run(
            ["bash", "-c", lines[0]], env=env, capture_output=True, text=True, timeout=30, check=True
        ).stdout
    )
