"""The OpenAPI document states the same bounds and patterns the server enforces."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chalicelib.domain import idempotency as idempotency_port
from chalicelib.domain.cursor import MAX_CURSOR_LEN, CursorCodec, CursorScope
from chalicelib.domain.errors import AppError, IdempotentRequestInFlight, InvalidCursor, ValidationError
from chalicelib.domain.models import User
from chalicelib.web import idempotency, inputs
from chalicelib.web.conditional import MAX_TAGS, etag, parse_preconditions
from chalicelib.web.errors import RETRY_AFTER_S, error_response, status_for
from chalicelib.web.openapi import document, document_for, server_url
from tests.support.class_tree import with_subclasses

SCHEMAS = document()["components"]["schemas"]
NAME_SAMPLES = ["Ada", "  Ada  ", "Zoë", "x" * 100, "", "   ", "a\nb", "a\x01b", "a\x7fb", "a\x9bb", "\x9b", "a\u2028b"]
# Invisible or direction-changing characters, and joiners and selectors that need a visible neighbour.
NAME_SAMPLES += ["\u200b", "\ufeff", "Ada\u202eX", "a\u2066b", "a\U000e0041", "\u200d", "\ufe0f", "\u2800", "\u3164"]
NAME_SAMPLES += ["a\u200db", "\u2764\ufe0f", "\u845b\U000e0100"]
PHONE_SAMPLES = ["+14155550123", "+1", "+12", "14155550123", "+0123", "+1234567890123456", "+1415555012a"]


def server_accepts(**body: str) -> bool:
    try:
        inputs.parse_new_user({"name": "Ada", "email": "ada@example.com", **body})
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", NAME_SAMPLES)
def test_documented_name_pattern_matches_the_server(name: str) -> None:
    schema = SCHEMAS["NewUser"]["properties"]["name"]
    documented = bool(re.search(schema["pattern"], name)) and len(name) <= schema["maxLength"]
    assert documented == server_accepts(name=name)


@pytest.mark.parametrize("phone", PHONE_SAMPLES)
def test_documented_phone_pattern_matches_the_server(phone: str) -> None:
    documented = bool(re.search(SCHEMAS["NewUser"]["properties"]["phone"]["pattern"], phone))
    assert documented == server_accepts(phone=phone)


def test_documented_page_bounds_are_the_parser_bounds() -> None:
    schema = _parameter("/users", "get", "limit")["schema"]
    assert inputs.parse_limit(None) == schema["default"]
    assert inputs.parse_limit(str(schema["maximum"])) == schema["maximum"]
    with pytest.raises(ValidationError):
        inputs.parse_limit(str(schema["maximum"] + 1))


def documented_match(pattern: str, value: str) -> bool:
    """A JSON Schema pattern, anchored as all of ours are: `$` never matches before a final newline."""
    return re.fullmatch(pattern, value) is not None


CURSOR = CursorCodec(b"k" * 32)
SCOPE = CursorScope(route="users", caller="admin", query="users")
CURSORS_OUTSIDE_THE_PATTERN = ["abc", ".def", "abc.", "a.b.c", "ab=.cd", "ab+.cd", "ab.cd\n", "", "x." + "y" * 2100]


@pytest.mark.parametrize("cursor", CURSORS_OUTSIDE_THE_PATTERN)
def test_a_cursor_outside_the_documented_pattern_is_refused(cursor: str) -> None:
    schema = _parameter("/users", "get", "cursor")["schema"]
    assert not (documented_match(schema["pattern"], cursor) and len(cursor) <= schema["maxLength"])
    with pytest.raises(InvalidCursor):
        CURSOR.decode(cursor, SCOPE)


def test_an_issued_cursor_matches_the_documented_pattern() -> None:
    schema = _parameter("/users", "get", "cursor")["schema"]
    issued = CURSOR.encode("2026-01-01T00:00:00.000Z#0b7d6a4e-3f1c-4d2a-9e8b-1a2b3c4d5e6f", SCOPE)
    assert documented_match(schema["pattern"], issued) and len(issued) <= schema["maxLength"]
    assert schema["maxLength"] == MAX_CURSOR_LEN


IF_MATCH_SAMPLES = [
    "*",
    " * ",
    '"1-x"',
    'W/"1-x"',
    '"1-x", "2-y"',
    '"1-x",W/"2-y"',
    '"1-x",',
    '""',
    '"' + "a" * 128 + '"',
    '"' + "a" * 129 + '"',
    ",".join(['"a"'] * MAX_TAGS),
    ",".join(['"a"'] * (MAX_TAGS + 1)),
    "1-x",
    '"a"b',
    '"a""b"',
    ',"a"',
    '"a",,"b"',
    '"a" "b"',
    '"a"\x0b',
    '"a"\n',
    "**",
    '"a b"',
    '"é"',
    "",
]


@pytest.mark.parametrize("header", IF_MATCH_SAMPLES)
def test_documented_if_match_pattern_matches_the_server(header: str) -> None:
    documented = documented_match(_component("parameters", "IfMatch")["schema"]["pattern"], header)
    try:
        parse_preconditions(header, None)
        parse_preconditions(None, header)  # a write's If-None-Match follows the same pattern
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert documented == accepted


IDEMPOTENCY_KEYS = ["k", "k\n", "order-42", "~!{}", "x" * 255, "x" * 256, "", "a b", "tab\tkey", "é", "a\x7f"]


@pytest.mark.parametrize("key", IDEMPOTENCY_KEYS)
def test_documented_idempotency_key_pattern_matches_the_server(key: str) -> None:
    documented = documented_match(_component("parameters", "IdempotencyKey")["schema"]["pattern"], key)
    try:
        idempotency.parse_key({"idempotency-key": key})
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert documented == accepted


def test_the_etag_sent_matches_the_documented_one_and_round_trips_through_if_match() -> None:
    user = User("u-1", "Ada", "ada@example.com", "2026-01-02T03:04:05.678901Z", "2026-01-02T03:04:05.678901Z", 7)
    header = _component("headers", "ETag")
    assert documented_match(header["schema"]["pattern"], etag(user)) and header["required"]
    assert parse_preconditions(etag(user), None).if_match == (user.revision,)


def test_documented_avatar_content_types_are_the_accepted_ones() -> None:
    documented = SCHEMAS["AvatarRequest"]["properties"]["contentType"]["enum"]
    for content_type in documented:
        assert inputs.parse_avatar_content_type({"contentType": content_type}) == content_type
    for other in ("image/gif", "IMAGE/PNG", "image/svg+xml", ""):
        with pytest.raises(ValidationError):
            inputs.parse_avatar_content_type({"contentType": other})


def test_the_retry_after_sent_matches_the_documented_one() -> None:
    assert documented_match(_component("headers", "Retry-After")["schema"]["pattern"], RETRY_AFTER_S)


@pytest.mark.parametrize("wait", [-3, 0, 1, 9, 10, idempotency_port.LOCK_S + 1])
def test_the_409_of_a_locked_key_documents_the_retry_after_it_sends(wait: int) -> None:
    conflict = document()["components"]["responses"]["E409"]
    header = conflict["headers"]["Retry-After"]["$ref"].rsplit("/", 1)[1]
    documented = _component("headers", header)
    assert not documented.get("required")  # the other 409s have none
    sent = str(error_response(IdempotentRequestInFlight(wait)).headers["Retry-After"])
    assert documented_match(documented["schema"]["pattern"], sent)
    assert (
        "Retry-After" in conflict["description"]
        and "Retry-After" in _component("parameters", "IdempotencyKey")["description"]
    )


def test_every_status_a_domain_error_maps_to_is_a_documented_error_response() -> None:
    responses = document()["components"]["responses"]
    # The status depends on the class alone: made without running its constructor's arguments.
    assert {f"E{status_for(cls.__new__(cls))}" for cls in with_subclasses(AppError)} <= set(responses)


def test_every_error_response_an_operation_lists_exists() -> None:
    responses = document()["components"]["responses"]
    listed = {
        response["$ref"].rsplit("/", 1)[1]
        for item in document()["paths"].values()
        for operation in item.values()
        for response in operation["responses"].values()
        if "$ref" in response
    }
    assert listed <= set(responses)


def _component(kind: str, name: str) -> dict[str, Any]:
    return dict(document()["components"][kind][name])


def _parameter(path: str, method: str, name: str) -> dict[str, Any]:
    for parameter in document()["paths"][path][method]["parameters"]:
        resolved = _component("parameters", parameter["$ref"].rsplit("/", 1)[1]) if "$ref" in parameter else parameter
        if resolved["name"] == name:
            return resolved
    raise KeyError(name)


@pytest.mark.parametrize(
    ("schema", "parse"),
    [
        ("NewUser", inputs.parse_new_user),
        ("UserUpdate", inputs.parse_user_changes),
        ("ProfileUpdate", inputs.parse_profile_changes),
        ("AvatarRequest", inputs.parse_avatar_content_type),
    ],
)
def test_every_documented_request_example_is_accepted_by_the_server(schema: str, parse: Any) -> None:
    examples = SCHEMAS[schema]["examples"]
    assert examples
    for example in examples:
        parse(example)


@pytest.mark.parametrize(
    ("stage", "context", "headers", "expected"),
    [
        # API Gateway's execute-api URL: the path as requested starts with the stage.
        (
            "prod",
            {"domainName": "abc123.execute-api.eu-west-1.amazonaws.com", "path": "/api/openapi.json"},
            {"host": "abc123.execute-api.eu-west-1.amazonaws.com"},
            "https://abc123.execute-api.eu-west-1.amazonaws.com/api",
        ),
        # A custom domain mapped under a base path.
        ("prod", {"domainName": "api.example.com", "path": "/v1/openapi.json"}, {}, "https://api.example.com/v1"),
        # make run, reached either way: Swagger UI on /docs then calls its own origin.
        ("local", {"path": "/openapi.json"}, {"host": "127.0.0.1:8000"}, "http://127.0.0.1:8000"),
        ("local", {"path": "/openapi.json"}, {"host": "localhost:8000"}, "http://localhost:8000"),
        # Nothing usable: no servers, so OpenAPI's default (the document's own origin) applies.
        ("local", {"path": "/openapi.json"}, {"host": "evil.example/x?"}, None),
        ("local", {"path": "/openapi.json"}, {}, None),
    ],
)
def test_servers_names_the_api_where_the_caller_found_it(
    stage: str, context: dict[str, str], headers: dict[str, str], expected: str | None
) -> None:
    assert server_url(stage, context, headers) == expected
    served = document_for(expected)
    assert list(served)[:3] == (["openapi", "info", "servers"] if expected else ["openapi", "info", "paths"])
    if expected:
        assert served["servers"] == [{"url": expected}]
    assert served["paths"] == document()["paths"]
