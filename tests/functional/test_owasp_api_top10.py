"""The OWASP API Security Top 10 (2023), item by item, as it applies to this API.

Each section checks its item directly through the app (Chalice's test client, the app's own token
verification, DynamoDB on moto). Routes are read from the app, so routes added later are covered.
Covered in more depth elsewhere:
- API2 (authentication): tests/functional/test_token_attacks.py sends every forged, stale and
  malformed token to every protected route; tests/unit/test_tokens.py checks the verifier itself.
- API3/API4 (field shapes and bounds): tests/unit/test_models.py and test_users_api.py.
- API4 (rate limits): API Gateway throttling and usage plans are checked on the generated templates
  in tests/infra; the app's own share is the bounds below.
- API8 (CORS origin setting): tests/unit/test_config.py.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.config import LOCAL_STAGES, ConfigurationError, cors_allow_origin, get_settings, load_settings
from chalicelib.domain.cursor import MAX_CURSOR_LEN
from chalicelib.domain.models import EMAIL_MAX, NAME_MAX, PAGE_MAX
from chalicelib.web.openapi import document
from chalicelib.web.tokens import MAX_TOKEN_BYTES, TokenVerifier, url_fetcher
from tests.functional.conftest import ORIGIN, PROJECT_DIR, TABLE, Api
from tests.support import routes, tokens
from tests.support.doubles import FakeUrlopen, SpyService

ADMIN = tokens.ADMIN
MEMBER_SUB = str(uuid.uuid4())
MEMBER = tokens.token(sub=MEMBER_SUB, email="member@example.com")


JWKS_URL = f"{tokens.ISSUER}/.well-known/jwks.json"
EVIL_ORIGIN = "https://evil.example"


@pytest.fixture(autouse=True)
def member_sign_in(sign_in: Callable[..., str]) -> None:
    """The member's sign-in, made outside the API: their first PUT /users/me takes its email."""
    sign_in(MEMBER_SUB, "member@example.com")


def create(api: Api, email: str, name: str = "Ada", phone: str = "+14155550100") -> dict[str, Any]:
    response = api.request("POST", "/users", ADMIN, {"name": name, "email": email, "phone": phone})
    assert response.status_code == 201, response.body
    return dict(response.json_body["user"])


def member_profile(api: Api) -> dict[str, Any]:
    response = api.request("PUT", "/users/me", MEMBER, {"name": "Mia", "phone": "+14155550199"})
    assert response.status_code == 201, response.body
    return dict(response.json_body["user"])


def table_items(ddb: Any) -> list[dict[str, Any]]:
    """Every item in the table, users and email reservations alike, in a stable order."""
    items = ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


def json_body_routes() -> list[tuple[str, str]]:
    """(path, method) of the operations the OpenAPI document says take a JSON body."""
    found = []
    for path, operations in document()["paths"].items():
        for method, operation in operations.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                found.append((path, method.upper()))
    return sorted(found)


def body_for(path: str, method: str) -> dict[str, Any] | None:
    if method not in {"POST", "PUT", "PATCH"}:
        return None
    if (path, method) == ("/users", "POST"):
        return {"name": "Eve", "email": "eve@example.com"}
    return {"name": "Eve"}


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.body
    body = dict(response.json_body)
    assert set(body) <= {"error", "details"} and isinstance(body["error"], str)
    return body


# --- API1:2023 Broken Object Level Authorization ----------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_api1_a_member_cannot_touch_another_user_nor_tell_whether_it_exists(api: Api, ddb: Any, method: str) -> None:
    other = create(api, "other@example.com")
    before = table_items(ddb)
    body = {"name": "Mallory", "email": "mallory@example.com"} if method == "PUT" else None
    targets = [other["userId"], str(uuid.uuid4()), "EMAIL%23other@example.com"]
    responses = [api.request(method, f"/users/{target}", MEMBER, body) for target in targets]
    assert [response.status_code for response in responses] == [403, 403, 403]
    # Same body and same headers: nothing tells an existing user from a missing one.
    assert len({response.body for response in responses}) == 1
    assert len({frozenset(response.headers) for response in responses}) == 1
    assert table_items(ddb) == before
    assert api.request("GET", f"/users/{other['userId']}", ADMIN).json_body == other


def test_api1_every_user_route_refuses_a_member_acting_on_another_user(api: Api, ddb: Any) -> None:
    other = create(api, "other@example.com")
    before = table_items(ddb)
    checked = []
    for path, method in routes.declared(protected=True):
        if "{" not in path:
            continue
        response = api.request(method, routes.concrete(path, other["userId"]), MEMBER, body_for(path, method))
        assert response.status_code == 403, (path, method, response.body)
        checked.append((path, method))
    assert {("/users/{userId}", m) for m in ("GET", "PUT", "DELETE")} <= set(checked)
    assert table_items(ddb) == before


# --- API2:2023 Broken Authentication (in depth: test_token_attacks.py) ---------------------------


def test_api2_only_a_verified_token_authenticates(api: Api) -> None:
    header, _, signature = tokens.token(sub=MEMBER_SUB).split(".")
    promoted = tokens.admin_token(sub=MEMBER_SUB).split(".")[1]
    for forged in (f"{header}.{promoted}.{signature}", f"{header}.{promoted}.", "eyJhbGciOiJub25lIn0.e30."):
        response = api.request("GET", "/users", forged)
        error_of(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert api.request("GET", "/users", ADMIN).status_code == 200


# --- API3:2023 Broken Object Property Level Authorization --------------------------------------

# Fields a client must never set: server-managed, internal storage attributes, or privileges.
FORBIDDEN_FIELDS: dict[str, Any] = {
    "userId": "someone-else",
    "createdAt": "2000-01-01T00:00:00.000Z",
    "updatedAt": "2000-01-01T00:00:00.000Z",
    "version": 99,
    "groups": ["admins"],
    "cognito:groups": ["admins"],
    "isAdmin": True,
    "emailKey": "victim@example.com",
    "listingId": "someone-else",
    "ownerId": "someone-else",
}


def property_targets(api: Api) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, path, token, valid body) of every write that takes user fields."""
    ada = create(api, "ada@example.com")
    member_profile(api)
    return [
        ("POST", "/users", ADMIN, {"name": "Eve", "email": "eve@example.com"}),
        ("PUT", f"/users/{ada['userId']}", ADMIN, {"name": "Eve"}),
        ("PUT", f"/users/{MEMBER_SUB}", MEMBER, {"name": "Eve"}),
        ("PUT", "/users/me", MEMBER, {"name": "Eve"}),
    ]


def test_api3_no_field_outside_the_input_shapes_is_accepted(api: Api, ddb: Any) -> None:
    targets = property_targets(api)
    before = table_items(ddb)
    for method, path, token, valid in targets:
        for field, value in FORBIDDEN_FIELDS.items():
            response = api.request(method, path, token, {**valid, field: value})
            error = error_of(response, 400)
            assert field in {detail["field"] for detail in error.get("details", [])}, (path, field)
    assert table_items(ddb) == before
    # The same bodies without the extra field are accepted: the field alone was the problem.
    for method, path, token, valid in targets:
        assert api.request(method, path, token, valid).status_code in {200, 201}, path


@pytest.mark.parametrize(("field", "value"), [("role", "admin"), ("enabled", True), ("email", "mine@example.com")])
def test_api3_a_member_cannot_set_their_own_role_state_or_email(api: Api, ddb: Any, field: str, value: Any) -> None:
    member_profile(api)
    before = table_items(ddb)
    error = error_of(api.request("PUT", f"/users/{MEMBER_SUB}", MEMBER, {"name": "Eve", field: value}), 403)
    assert field in error["error"]
    # On /users/me these are not even fields.
    error_of(api.request("PUT", "/users/me", MEMBER, {"name": "Eve", field: value}), 400)
    assert table_items(ddb) == before


INTERNAL_HINTS = {
    "pk",
    "sk",
    "emailKey",
    "listingId",
    "ownerId",
    "expiresAt",
    "groups",
    "isAdmin",
    "writeToken",
    "createToken",
    "writtenBy",
    "tokensValidAfter",
}


def test_api3_responses_carry_exactly_the_documented_user_fields(api: Api, ddb: Any) -> None:
    schema = document()["components"]["schemas"]["User"]
    documented, required = set(schema["properties"]), set(schema["required"])
    expected = required | {"phone"}  # every user here has a phone
    assert expected <= documented
    ada = create(api, "ada@example.com")
    member_profile(api)
    user_id = ada["userId"]
    users: list[Any] = []
    responses = {
        "create": api.request("POST", "/users", ADMIN, {"name": "B", "email": "b@example.com", "phone": "+3312345"}),
        "list": api.request("GET", "/users", ADMIN),
        "get": api.request("GET", f"/users/{user_id}", ADMIN),
        "get own": api.request("GET", f"/users/{MEMBER_SUB}", MEMBER),
        "profile": api.request("GET", "/users/me", MEMBER),
        "update": api.request("PUT", f"/users/{user_id}", ADMIN, {"name": "Ada L."}),
        "update profile": api.request("PUT", "/users/me", MEMBER, {"name": "Mia B."}),
    }
    for name, response in responses.items():
        assert response.status_code in {200, 201}, (name, response.body)
        body = response.json_body
        if name == "list":
            assert set(body) == {"users", "count", "nextCursor"}
            users += body["users"]
        elif "user" in body:
            assert set(body) == {"message", "user"}, name
            users.append(body["user"])
        else:
            users.append(body)
    assert len(users) >= 8
    for user in users:
        assert set(user) == expected, user
    # Whatever else the table stores about a user never leaves the API under any name.
    stored = {name for item in table_items(ddb) for name in item}
    internal = (stored | INTERNAL_HINTS) - documented
    assert {"emailKey", "listingId"} <= internal
    for name, response in responses.items():
        text = response.body.decode()
        assert not [attr for attr in internal if f'"{attr}"' in text], name


# --- API4:2023 Unrestricted Resource Consumption ---------------------------------------------


def email_of_length(length: int) -> str:
    # 64-character local part, three labels of at most 63 characters, ".com".
    last = length - (64 + 1 + 63 + 1 + 63 + 1 + 4)
    assert 1 <= last <= 63
    return f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * last}.com"


def test_api4_page_size_is_bounded(api: Api) -> None:
    for limit in (PAGE_MAX + 1, 1000, 10**9):
        error_of(api.request("GET", f"/users?limit={limit}", ADMIN), 400)
    assert api.request("GET", f"/users?limit={PAGE_MAX}", ADMIN).status_code == 200


def test_api4_bodies_above_the_limit_get_413_on_every_json_route(api: Api, ddb: Any) -> None:
    member_profile(api)
    before = table_items(ddb)
    limit = get_settings().max_body_bytes
    targets = json_body_routes()
    assert {("/users", "POST"), ("/users/me", "PUT"), ("/users/{userId}", "PUT")} <= set(targets)
    for path, method in targets:
        oversized = {"name": "A", "padding": "x" * limit}
        response = api.request(method, routes.concrete(path, MEMBER_SUB), ADMIN, oversized)
        error_of(response, 413)
    assert table_items(ddb) == before


def test_api4_field_lengths_are_bounded(api: Api, ddb: Any) -> None:
    assert len(email_of_length(EMAIL_MAX)) == EMAIL_MAX
    error_of(api.request("POST", "/users", ADMIN, {"name": "x" * (NAME_MAX + 1), "email": "a@example.com"}), 400)
    error_of(api.request("POST", "/users", ADMIN, {"name": "A", "email": email_of_length(EMAIL_MAX + 1)}), 400)
    assert table_items(ddb) == []
    create(api, email_of_length(EMAIL_MAX), name="x" * NAME_MAX)  # the bounds themselves are accepted


def test_api4_oversized_tokens_get_401(api: Api) -> None:
    big = tokens.admin_token()
    big = tokens.sign(tokens.claims(groups=["admins"], padding="x" * (MAX_TOKEN_BYTES + 1 - len(big))))
    assert len(big) > MAX_TOKEN_BYTES
    response = api.request("GET", "/users", big)
    error_of(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_api4_overlong_cursors_get_400(api: Api) -> None:
    for length in (MAX_CURSOR_LEN + 1, 64 * 1024):
        error_of(api.request("GET", f"/users?cursor={'a' * length}", ADMIN), 400)


# --- API5:2023 Broken Function Level Authorization --------------------------------------------


def test_api5_members_get_403_on_the_admin_functions(api: Api, ddb: Any) -> None:
    member_profile(api)
    before = table_items(ddb)
    error_of(api.request("POST", "/users", MEMBER, {"name": "Eve", "email": "eve@example.com"}), 403)
    error_of(api.request("GET", "/users", MEMBER), 403)
    error_of(api.request("DELETE", f"/users/{MEMBER_SUB}", MEMBER), 403)  # not even themselves
    assert table_items(ddb) == before


def test_api5_admin_only_routes_are_exactly_the_ones_documented_as_such(api: Api) -> None:
    """A member acting on their own record gets 403 only from the admin functions; the admin does not."""
    member_profile(api)
    operations = document()["paths"]
    admin_only = set()
    for path, method in routes.declared(protected=True):
        target = routes.concrete(path, MEMBER_SUB)
        if api.request(method, target, MEMBER, body_for(path, method)).status_code == 403:
            admin_only.add((path, method))
            assert api.request(method, target, ADMIN, body_for(path, method)).status_code != 403, (path, method)
    assert {("/users", "POST"), ("/users", "GET"), ("/users/{userId}", "DELETE")} <= admin_only
    documented = {
        (path, method.upper())
        for path, ops in operations.items()
        for method, op in ops.items()
        if op["summary"].endswith("(admins)")
    }
    assert admin_only == documented


def test_api5_only_the_documented_public_routes_need_no_token(api: Api) -> None:
    assert routes.declared(protected=False) == [("/hello", "GET"), ("/openapi.json", "GET")]
    for path, method in routes.declared(protected=True):
        error_of(api.request(method, routes.concrete(path, MEMBER_SUB), body=body_for(path, method)), 401)


# --- API6:2023 Unrestricted Access to Sensitive Business Flows ----------------------------------
# The sensitive flow is creating accounts: admins only, except that a signed-in Cognito user may
# create their own profile once, keyed by their token's `sub` and carrying its verified email.


def test_api6_self_service_creates_only_the_callers_own_single_record(api: Api, ddb: Any) -> None:
    for attempt in range(5):
        response = api.request("PUT", "/users/me", MEMBER, {"name": f"Mia {attempt}"})
        assert response.status_code == (201 if attempt == 0 else 200)
    users = [item for item in table_items(ddb) if "listingId" in item]
    assert [user["userId"]["S"] for user in users] == [MEMBER_SUB]
    assert users[0]["email"]["S"] == "member@example.com"


def test_api6_self_service_needs_a_verified_email_and_cannot_choose_one(
    api: Api, ddb: Any, sign_in: Callable[..., str]
) -> None:
    # The sign-in's email decides, not the token's claim (which says verified here).
    unverified = sign_in(str(uuid.uuid4()), "someone@example.com", verified=False)
    error_of(api.request("PUT", "/users/me", tokens.token(sub=unverified, email_verified=True), {"name": "U"}), 403)
    error_of(api.request("PUT", "/users/me", MEMBER, {"name": "U", "email": "ceo@example.com"}), 400)
    assert table_items(ddb) == []


# --- API7:2023 Server Side Request Forgery ---------------------------------------------------
# The only outbound request the app makes from request data is the JWKS fetch, and its URL comes
# from configuration alone; no input field is ever fetched.


def test_api7_keys_are_fetched_only_from_the_configured_url(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWKS_URL", raising=False)
    bootstrap.reset()  # wire the verifier from settings, as the app does
    endpoint = FakeUrlopen({JWKS_URL: tokens.jwks()}).install(monkeypatch)
    forged = tokens.sign(
        tokens.claims(groups=["admins"]),
        kid="attacker",
        headers={"jku": "http://169.254.169.254/latest/meta-data/", "x5u": "http://127.0.0.1:9/x"},
    )
    error_of(api.request("GET", "/users", forged), 401)
    assert api.request("GET", "/users", ADMIN).status_code == 200
    assert get_settings().jwks_url == JWKS_URL
    assert endpoint.urls and set(endpoint.urls) == {JWKS_URL}


def test_api7_deployed_stages_refuse_any_other_jwks_source() -> None:
    environ = {
        "STAGE": "prod",
        "TABLE_NAME": "users",
        "USER_POOL_ID": tokens.POOL_ID,
        "USER_POOL_CLIENT_ID": tokens.CLIENT_ID,
        "CURSOR_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cursor-AbCdEf",
        "AWS_REGION": tokens.REGION,
    }
    assert load_settings({**environ, "AWS_ENDPOINT_URL": "http://169.254.169.254"}).jwks_url == JWKS_URL
    with pytest.raises(ConfigurationError):
        load_settings({**environ, "JWKS_URL": "http://169.254.169.254/latest/meta-data/"})


# --- API8:2023 Security Misconfiguration -----------------------------------------------------


def deployed_stage_environments() -> dict[str, dict[str, str]]:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    common = config.get("environment_variables", {})
    return {
        name: {**common, **stage.get("environment_variables", {}), "STAGE": name}
        for name, stage in config["stages"].items()
        if name not in LOCAL_STAGES
    }


def test_api8_no_deployed_stage_allows_any_origin() -> None:
    stages = deployed_stage_environments()
    assert stages
    for name, environ in stages.items():
        origin = cors_allow_origin(environ)
        assert origin != "*" and origin.startswith("https://"), name
        with pytest.raises(ConfigurationError):
            cors_allow_origin({**environ, "CORS_ALLOW_ORIGIN": "*"})


def test_api8_a_foreign_origin_is_never_echoed(api: Api) -> None:
    headers = {"Origin": EVIL_ORIGIN}
    for path, method in routes.declared():
        target = routes.concrete(path, MEMBER_SUB)
        for token in (None, MEMBER, ADMIN):
            response = api.request(method, target, token, body_for(path, method), headers=dict(headers))
            assert response.headers.get("Access-Control-Allow-Origin") == ORIGIN, (path, method, token)
        # Through the gateway directly: Chalice's test client cannot read a preflight's empty body.
        preflight = api.client.http._local_gateway.handle_request(
            "OPTIONS", target, {**headers, "Access-Control-Request-Method": method}, b""
        )
        assert preflight["headers"].get("Access-Control-Allow-Origin") == ORIGIN, (path, "OPTIONS")


SECRET_MESSAGE = "password=hunter2 AKIAIOSFODNN7EXAMPLE arn:aws:dynamodb:us-east-1:123456789012:table/users"


@pytest.fixture
def app_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.ERROR)
    # The app's own logger, and Chalice's (named after the app), which logs exceptions from views.
    loggers = [logging.getLogger("users_api"), logging.getLogger("users-api")]
    for logger in loggers:
        logger.addHandler(handler)
    yield records
    for logger in loggers:
        logger.removeHandler(handler)


def test_api8_unexpected_errors_reveal_nothing(api: Api, app_log: list[logging.LogRecord]) -> None:
    from app import app

    assert app.debug is False
    failing = SpyService(error=RuntimeError(SECRET_MESSAGE))
    bootstrap.override(service=failing.as_service())
    reached = []
    for path, method in routes.declared(protected=True):
        before = len(failing.calls)
        response = api.request(method, routes.concrete(path, MEMBER_SUB), ADMIN, body_for(path, method))
        text = response.body.decode()
        for leak in ("hunter2", "AKIA", "arn:aws", "Traceback", "RuntimeError", 'File "'):
            assert leak not in text, (path, method)
        if len(failing.calls) > before:
            reached.append((path, method))
            assert response.status_code == 500, (path, method)
            assert response.headers["Content-Type"] == "application/json"
            assert response.json_body == {"error": "Internal server error"}  # as the deployed gateway says
            assert response.headers["Cache-Control"] == "private, no-store"
    assert {("/users", "POST"), ("/users", "GET"), ("/users/me", "GET"), ("/users/{userId}", "DELETE")} <= set(reached)
    # Logged for the operator, not returned to the client.
    assert any(record.exc_info for record in app_log)


def test_api8_user_data_responses_are_never_cached_nor_sniffed(api: Api) -> None:
    ada = create(api, "ada@example.com")
    member_profile(api)
    seen = set()
    for path, method in routes.declared(protected=True):
        for token, user_id in ((None, ada["userId"]), (MEMBER, ada["userId"]), (ADMIN, ada["userId"]),
                               (ADMIN, str(uuid.uuid4())), (MEMBER, MEMBER_SUB)):  # fmt: skip
            response = api.request(method, routes.concrete(path, user_id), token, body_for(path, method))
            seen.add(response.status_code)
            assert response.headers["X-Content-Type-Options"] == "nosniff", (path, method, response.status_code)
            assert "no-store" in response.headers["Cache-Control"], (path, method, response.status_code)
    for response in (
        api.request("PUT", "/users/me", MEMBER, raw="{", headers={"Content-Type": "application/json"}),
        api.request("PUT", "/users/me", MEMBER, raw="x=1", headers={"Content-Type": "text/plain"}),
        api.request("PUT", "/users/me", MEMBER, {"name": "x" * get_settings().max_body_bytes}),
        api.request("PATCH", "/users", ADMIN),
    ):
        seen.add(response.status_code)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in response.headers["Cache-Control"]
    assert {200, 201, 400, 401, 403, 404, 405, 413, 415} <= seen


# --- API9:2023 Improper Inventory Management -------------------------------------------------


def test_api9_openapi_documents_exactly_the_routes_the_app_has(api: Api) -> None:
    served = api.request("GET", "/openapi.json").json_body
    assert served["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in served["paths"].items() for method in ops}
    assert documented == set(routes.declared())
    for path, ops in served["paths"].items():
        for method, op in ops.items():
            entry = routes.entry(path, method.upper())
            assert bool(op["security"]) == (entry.authorizer is not None), (path, method)
            if op["security"]:
                assert "401" in op["responses"]
    statuses = {code for ops in served["paths"].values() for op in ops.values() for code in op["responses"]}
    assert {"200", "201", "400", "401", "403", "404", "409", "413", "415", "503"} <= statuses


def test_api9_undocumented_methods_and_paths_do_not_exist(api: Api) -> None:
    methods: dict[str, set[str]] = {}
    for path, method in routes.declared():
        methods.setdefault(path, set()).add(method)
    for path, declared in methods.items():
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - declared:
            response = api.request(method, routes.concrete(path, MEMBER_SUB), ADMIN)
            assert response.status_code in {404, 405}, (path, method)
    for path in ("/v1/users", "/admin", "/users/me/../../admin", "/debug", "/swagger.json"):
        assert api.request("GET", path, ADMIN).status_code in {403, 404}, path


# --- API10:2023 Unsafe Consumption of APIs ---------------------------------------------------
# The app consumes Cognito's JWKS: whatever that endpoint answers, or fails to, a request gets a
# clean 401, never a 500 or a key the pool did not publish.

JWKS_ANSWERS: dict[str, Any] = {
    "html": b"<html><body>Bad gateway</body></html>",
    "truncated": b'{"keys": [',
    "keys-null": {"keys": None},
    "keys-not-a-list": {"keys": "abc"},
    "not-an-object": [1, 2, 3],
    "oversized": b'{"keys": []}' + b" " * (1024 * 1024),
    "no-rsa-key": {"keys": [{"kty": "EC", "kid": tokens.KID, "crv": "P-256", "x": "AA", "y": "AA"}]},
    "broken-rsa-key": {"keys": [{"kty": "RSA", "kid": tokens.KID, "n": 5, "e": "AQAB"}]},
    "connection-refused": ConnectionRefusedError("refused"),
    "timeout": TimeoutError("timed out"),
}


@pytest.mark.parametrize("answer", list(JWKS_ANSWERS))
def test_api10_a_bad_or_missing_jwks_gives_401_not_500(api: Api, monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    endpoint = FakeUrlopen({JWKS_URL: JWKS_ANSWERS[answer]}).install(monkeypatch)
    bootstrap.override(verifier=TokenVerifier(tokens.ISSUER, tokens.CLIENT_ID, url_fetcher(JWKS_URL)))
    for path, method in (("/users", "GET"), ("/users/me", "GET"), ("/users", "POST")):
        response = api.request(method, path, ADMIN, body_for(path, method))
        error_of(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert endpoint.urls == [JWKS_URL]  # and the failure did not turn into one fetch per request


def test_api10_a_symmetric_key_in_the_jwks_cannot_sign_tokens(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import jwt

    secret = b"k" * 32
    oct_key = {"kty": "oct", "kid": tokens.KID, "alg": "HS256", "k": jwt.utils.base64url_encode(secret).decode()}
    FakeUrlopen({JWKS_URL: {"keys": [oct_key]}}).install(monkeypatch)
    bootstrap.override(verifier=TokenVerifier(tokens.ISSUER, tokens.CLIENT_ID, url_fetcher(JWKS_URL)))
    forged = jwt.encode(tokens.claims(groups=["admins"]), secret, algorithm="HS256", headers={"kid": tokens.KID})
    error_of(api.request("GET", "/users", forged), 401)


def test_api10_jwks_answers_are_read_with_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = FakeUrlopen({JWKS_URL: tokens.jwks()}).install(monkeypatch)
    url_fetcher(JWKS_URL)()
    assert endpoint.timeouts and 0 < endpoint.timeouts[0] <= 5
