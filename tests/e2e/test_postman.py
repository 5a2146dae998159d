"""The shipped Postman collection (docs/postman/users-api.postman_collection.json): one folder per
route the app declares, every request with tests, and newman (npm, pinned in package.json and
installed by the Makefile) runs it green against the local stack.

A route added to the app without its folder fails test_every_declared_route_has_its_folder, so the
collection keeps up with the API.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from devstack.process import PROJECT_DIR
from tests.e2e.conftest import Stack
from tests.support import routes
from tests.support.local_api import shell_env

COLLECTION = PROJECT_DIR / "docs" / "postman" / "users-api.postman_collection.json"
NEWMAN = PROJECT_DIR / "node_modules" / ".bin" / "newman"
NEWMAN_TIMEOUT_S = 300
# The failure cases a client must meet, each asserted by at least one request.
ERROR_STATUSES = {400, 401, 403, 404, 409, 412}


def collection() -> dict[str, Any]:
    return dict(json.loads(COLLECTION.read_text()))


def folders() -> dict[str, list[dict[str, Any]]]:
    return {folder["name"]: folder["item"] for folder in collection()["item"]}


def requests_of(name: str) -> list[dict[str, Any]]:
    return folders()[name]


def route_of(request: dict[str, Any]) -> tuple[str, str]:
    """(path, method) of the app route a request calls: `{{variable}}` segments are parameters."""
    segments = request["request"]["url"]["path"]
    pattern = "/" + "/".join(
        r"\{[^}]+\}" if re.fullmatch(r"\{\{.+\}\}", part) else re.escape(part) for part in segments
    )
    method = request["request"]["method"]
    # The app routes a literal segment (/users/me) before a parameter (/users/{userId}).
    literal = "/" + "/".join(segments)
    if (literal, method) in routes.declared():
        return literal, method
    matches = [(path, m) for path, m in routes.declared() if m == method and re.fullmatch(pattern, path)]
    assert len(matches) == 1, (request["name"], matches)
    return matches[0]


def scripts(request: dict[str, Any], listen: str) -> str:
    return "\n".join(
        "\n".join(event["script"]["exec"]) for event in request.get("event", []) if event["listen"] == listen
    )


def test_the_collection_has_the_variables_a_user_sets() -> None:
    variables = {variable["key"] for variable in collection()["variable"]}
    assert {"baseUrl", "token", "memberToken"} <= variables
    assert collection()["auth"]["bearer"][0]["value"] == "{{token}}"
    for items in folders().values():
        for request in items:
            assert request["request"]["url"]["host"] == ["{{baseUrl}}"], request["name"]


def test_every_declared_route_has_its_folder_and_nothing_else_does() -> None:
    declared = {f"{method} {path}" for path, method in routes.declared()}
    assert declared - set(folders()) == set(), "add a folder named 'METHOD /path' for each new route"
    assert set(folders()) - declared == set()


def test_every_request_calls_its_folders_route_and_has_tests() -> None:
    for name, items in folders().items():
        assert items, name
        for request in items:
            method, path = name.split(" ", 1)
            assert route_of(request) == (path, method), (name, request["name"])
            tests = scripts(request, "test")
            checks_status = "to.have.status(" in tests or "pm.response.code" in tests
            assert "pm.test(" in tests and checks_status, (name, request["name"])


def test_the_failure_cases_are_covered_and_the_created_user_is_reused() -> None:
    every = [request for items in folders().values() for request in items]
    asserted = {
        int(code) for request in every for code in re.findall(r"to\.have\.status\((\d+)\)", scripts(request, "test"))
    }
    assert asserted >= ERROR_STATUSES, ERROR_STATUSES - asserted
    create = requests_of("POST /users")[0]
    assert 'pm.collectionVariables.set("userId"' in scripts(create, "test")
    reused = [request for request in every if "{{userId}}" in request["request"]["url"]["path"]]
    assert {route_of(request) for request in reused} >= {
        (path, method) for path, method in routes.declared() if "{userId}" in path
    }


@pytest.fixture(scope="module")
def report(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not NEWMAN.exists():
        raise RuntimeError(f"{NEWMAN} is missing: `make test` installs it (npm ci, package-lock.json)")
    member = stack.add_user(f"postman-member-{uuid.uuid4().hex[:8]}@example.com", "Sup3r-secret-pass!")
    out: Path = tmp_path_factory.mktemp("newman") / "report.json"
    result = subprocess.run(
        [
            str(NEWMAN),
            "run",
            str(COLLECTION),
            "--env-var",
            f"baseUrl={stack.url}",
            "--env-var",
            f"token={stack.token()}",
            "--env-var",
            f"memberToken={member}",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(out),
            "--color",
            "off",
            "--disable-unicode",
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=NEWMAN_TIMEOUT_S,
    )
    assert out.exists(), result.stdout + result.stderr
    return {"returncode": result.returncode, "output": result.stdout + result.stderr, **json.loads(out.read_text())}


def test_newman_runs_the_collection_green_against_the_stack(report: dict[str, Any]) -> None:
    stats = report["run"]["stats"]
    assert report["returncode"] == 0 and stats["assertions"]["failed"] == 0, report["output"][-6000:]
    assert stats["requests"]["failed"] == 0 and stats["testScripts"]["failed"] == 0
    assert report["run"]["failures"] == []


def test_newman_ran_every_request_and_each_asserted_something(report: dict[str, Any]) -> None:
    names = [request["name"] for items in folders().values() for request in items]
    executions = report["run"]["executions"]
    assert [execution["item"]["name"] for execution in executions] == names
    for execution in executions:
        assert execution.get("assertions"), execution["item"]["name"]
        assert all("error" not in assertion for assertion in execution["assertions"]), execution["item"]["name"]


def documented_newman_command() -> str:
    """docs/LOCAL.md's newman command, as a user copies it."""
    local = (PROJECT_DIR / "docs" / "LOCAL.md").read_text()
    (block,) = [block for block in re.findall(r"```bash\n(.*?)```", local, re.S) if "newman run" in block]
    return str(block)


def test_the_documented_newman_command_runs_the_collection_green(stack: Stack) -> None:
    """As typed against `make run`, but for the port: the stack here is on one of its own."""
    command = documented_newman_command()
    assert "--env-var baseUrl=http://127.0.0.1:8000" in command
    assert {"token", "memberToken"} <= set(re.findall(r"--env-var (\w+)=", command))
    if not NEWMAN.exists():
        raise RuntimeError(f"{NEWMAN} is missing: `make test` installs it (npm ci, package-lock.json)")
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + command.replace("http://127.0.0.1:8000", stack.url)],
        cwd=PROJECT_DIR,
        env=shell_env(stack.stack_file),
        capture_output=True,
        text=True,
        timeout=NEWMAN_TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    # newman's summary table: every request sent, every assertion passed.
    executed = sum(len(items) for items in folders().values())
    assert re.search(rf"│\s+requests\s+│\s+{executed}\s+│\s+0\s+│", output), output[-3000:]
    assert re.search(r"│\s+assertions\s+│\s+\d+\s+│\s+0\s+│", output), output[-3000:]
