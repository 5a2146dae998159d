"""Every error a client can meet has one body: `{"error":"<message>"}`, with `"details":[{"field",
"message"}]` for field problems, in JSON with no spaces, as application/json: the app's own errors
(the one map, chalicelib/web/errors.py), Chalice's (405, a body that is not JSON), the local
gateway's 404 for an unknown path, the authentication a protected route runs, and what the
deployed API answers before the app (API Gateway's gateway responses: no route, bad token,
throttled, too large; WAF's blocks)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from chalicelib.config import DEFAULT_MAX_BODY_BYTES
from chalicelib.web.errors import error_body, error_json
from infra.cloudformation import _waf
from infra.stages import load_limits, load_stage
from tests.functional.conftest import PROJECT_DIR, Api
from tests.support import tokens
from tests.support.dynamodb_faults import Faults, aws_error

ADMIN = tokens.ADMIN
MEMBER = tokens.token(email="member@example.com")
JSON_TYPE = {"Content-Type": "application/json"}
TOO_LARGE = b" " * (DEFAULT_MAX_BODY_BYTES + 1)


def assert_error_shape(body: bytes | str, status: int | None = None) -> dict[str, Any]:
    """The body is exactly the app's error shape, serialised as the app serialises it."""
    text = body.decode() if isinstance(body, bytes) else body
    parsed = json.loads(text)
    assert isinstance(parsed, dict) and isinstance(parsed.get("error"), str) and parsed["error"], (status, text)
    assert set(parsed) <= {"error", "details"}, (status, text)
    for detail in parsed.get("details", []):
        assert set(detail) == {"field", "message"}, (status, text)
    # One spacing: what error_json (and Chalice, for a view's dict) writes.
    assert text == error_json(parsed["error"], parsed.get("details")), (status, text)
    return dict(parsed)


def created(api: Api) -> dict[str, Any]:
    response = api.request("POST", "/users", ADMIN, {"name": "Ada", "email": f"ada-{uuid.uuid4().hex[:6]}@example.com"})
    assert response.status_code == 201
    return dict(json.loads(response.body)["user"])


def test_every_error_the_app_answers_has_one_shape_and_spacing(api: Api, faults: Faults) -> None:
    user = created(api)
    user_path = f"/users/{user['userId']}"
    etag = api.request("GET", user_path, ADMIN).headers["ETag"]
    api.request("PUT", user_path, ADMIN, {"name": "Ada K"}, headers={"If-Match": etag})
    key = {"Idempotency-Key": uuid.uuid4().hex}
    api.request("POST", "/users", ADMIN, {"name": "Bo", "email": "bo@example.com"}, headers=key)
    calls: dict[str, tuple[int, Any]] = {
        "field problems": (400, lambda: api.request("POST", "/users", ADMIN, {"name": ""})),
        "not JSON": (400, lambda: api.request("POST", "/users", ADMIN, raw=b"{not json", headers=JSON_TYPE)),
        "bad query": (400, lambda: api.request("GET", "/users?limit=0", ADMIN)),
        "no token": (401, lambda: api.request("GET", "/users/me")),
        "forged token": (401, lambda: api.request("GET", "/users/me", ADMIN[:-4] + "AAAA")),
        "not a bearer token": (401, lambda: api.request("GET", "/users/me", headers={"Authorization": "Basic eA=="})),
        "member lists users": (403, lambda: api.request("GET", "/users", MEMBER)),
        "no such user": (404, lambda: api.request("GET", f"/users/{uuid.uuid4()}", ADMIN)),
        "no such path": (404, lambda: api.request("GET", "/no/such/path", ADMIN)),
        "undeclared method": (405, lambda: api.request("DELETE", "/hello")),
        "email taken": (409, lambda: api.request("POST", "/users", ADMIN, {"name": "A", "email": user["email"]})),
        "stale ETag": (412, lambda: api.request("PUT", user_path, ADMIN, {"name": "X"}, headers={"If-Match": etag})),
        "too large": (413, lambda: api.request("POST", "/users", ADMIN, raw=TOO_LARGE, headers=JSON_TYPE)),
        "not JSON content": (
            415,
            lambda: api.request("POST", "/users", ADMIN, raw=b"x", headers={"Content-Type": "text/plain"}),
        ),
        "key reused": (
            422,
            lambda: api.request("POST", "/users", ADMIN, {"name": "Cy", "email": "cy@example.com"}, headers=key),
        ),
    }
    for name, (status, call) in calls.items():
        response = call()
        assert response.status_code == status, (name, response.status_code, response.body)
        assert response.headers["Content-Type"] == "application/json", name
        parsed = assert_error_shape(response.body, status)
        if name == "field problems":
            assert parsed["details"], parsed
    # AWS not answering: 503, after the retries.
    faults.inject("GetItem", aws_error(500, "InternalServerError"))
    response = api.request("GET", user_path, ADMIN)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert_error_shape(response.body, 503)


def rendered(template: str, message: str) -> str:
    """A gateway response template as API Gateway fills it: $context.error.messageString is the
    message as a JSON string, quotes included."""
    return template.replace("$context.error.messageString", json.dumps(message))


@pytest.mark.parametrize("kind", sorted(load_limits()["gateway_responses"]))
def test_what_the_deployed_gateway_answers_before_the_app_has_the_same_shape(kind: str) -> None:
    spec = load_limits()["gateway_responses"][kind]
    body = rendered(spec["body"], "Missing Authentication Token")
    assert_error_shape(body, int(spec.get("status", 400)))


def test_what_waf_answers_has_the_same_shape() -> None:
    bodies = _waf(load_stage("prod"), load_limits())["WebAcl"]["Properties"]["CustomResponseBodies"]
    assert set(bodies) == {"too-many-requests", "too-large"}
    for body in bodies.values():
        assert body["ContentType"] == "APPLICATION_JSON"
        assert_error_shape(body["Content"])
    # The Terraform package's WAF writes them with jsonencode, which adds no spaces either.
    waf_tf = (PROJECT_DIR / "infra" / "terraform" / "waf.tf").read_text()
    assert re.findall(r"content\s+=\s+(.*)", waf_tf) == [
        'jsonencode({ error = "Too many requests" })',
        'jsonencode({ error = "Request body too large" })',
    ]


def test_error_json_writes_what_chalice_writes_for_a_views_dict() -> None:
    from chalice import Response  # type: ignore[attr-defined]

    body = error_body("Invalid request", [{"field": "email", "message": "must be an email address"}])
    assert Response(body=body).to_dict()["body"] == error_json(body["error"], body["details"])
    assert error_json("Not found") == '{"error":"Not found"}'


def test_a_replayed_answer_is_the_same_bytes_as_the_first(api: Api) -> None:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.request("POST", "/users", ADMIN, {"name": "Di", "email": "di@example.com"}, headers=headers)
    again = api.request("POST", "/users", ADMIN, {"name": "Di", "email": "di@example.com"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201) and "Idempotency-Replayed" not in first.headers
    assert again.body == first.body
