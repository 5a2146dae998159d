from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain import errors
from chalicelib.web import errors as web_errors
from chalicelib.web.application import answers_errors
from chalicelib.web.errors import error_body, error_response, status_for
from chalicelib.web.requests import parse_json_object
from chalicelib.web.responses import json_response

LIMIT = 1024
JSON = "application/json"


def test_parses_an_object():
    assert parse_json_object(b'{"name": "Ann", "n": 1}', JSON, LIMIT) == {"name": "Ann", "n": 1}


def test_unicode_body():
    body = json.dumps({"name": "Zoë 雪"}, ensure_ascii=False).encode()
    assert parse_json_object(body, JSON, LIMIT) == {"name": "Zoë 雪"}


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON", " application/json "],
)
def test_json_content_type_variants_accepted(content_type):
    assert parse_json_object(b'{"a": 1}', content_type, LIMIT) == {"a": 1}


def test_body_over_the_limit_is_413():
    body = b'{"a": "' + b"x" * LIMIT + b'"}'
    with pytest.raises(web_errors.PayloadTooLarge) as info:
        parse_json_object(body, JSON, LIMIT)
    assert status_for(info.value) == 413


def test_body_at_the_limit_is_accepted():
    body = b'{"a": "' + b"x" * (LIMIT - 9) + b'"}'
    assert len(body) == LIMIT
    assert parse_json_object(body, JSON, LIMIT) == {"a": "x" * (LIMIT - 9)}


def test_size_is_checked_before_content_type():
    with pytest.raises(web_errors.PayloadTooLarge):
        parse_json_object(b"x" * (LIMIT + 1), "text/plain", LIMIT)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonp",
        "text/json",
        "multipart/form-data",
    ],
)
def test_wrong_or_missing_content_type_is_415(content_type):
    with pytest.raises(web_errors.UnsupportedMediaType) as info:
        parse_json_object(b'{"a": 1}', content_type, LIMIT)
    assert status_for(info.value) == 415


@pytest.mark.parametrize("body", [None, b"", b"   ", b"\n\t"])
def test_empty_body_is_a_validation_error(body):
    with pytest.raises(errors.ValidationError) as info:
        parse_json_object(body, JSON, LIMIT)
    assert info.value.message == "Request body is required"


@pytest.mark.parametrize("body", [b"{", b"{'a': 1}", b'{"a": }', b"nope", b'{"a": 1} trailing', b"\x00"])
def test_invalid_json_is_a_validation_error(body):
    with pytest.raises(errors.ValidationError) as info:
        parse_json_object(body, JSON, LIMIT)
    assert info.value.message == "Request body is not valid JSON"


@pytest.mark.parametrize("body", [b'{"name": "\xff\xfe"}', b"\xc3\x28", b'{"a": "\xed\xa0\x80"}'])
def test_invalid_utf8_is_a_validation_error(body):
    with pytest.raises(errors.ValidationError) as info:
        parse_json_object(body, JSON, LIMIT)
    assert info.value.message == "Request body is not valid JSON"


@pytest.mark.parametrize("body", [b"[]", b'[{"a": 1}]', b'"string"', b"42", b"1.5", b"true", b"null"])
def test_json_that_is_not_an_object_is_a_validation_error(body):
    with pytest.raises(errors.ValidationError) as info:
        parse_json_object(body, JSON, LIMIT)
    assert info.value.message == "Request body must be a JSON object"
    assert status_for(info.value) == 400


@pytest.mark.parametrize("body", [b"[" * 8000, b'{"a":' * 1300 + b"1" + b"}" * 1300])
def test_deeply_nested_json_is_a_validation_error(body):
    # BUG: json.loads raises RecursionError on deep nesting, which parse_json_object does not
    # catch; such a body fits in the default 8 KiB limit and becomes a 500, not a 400.
    with pytest.raises(errors.ValidationError):
        parse_json_object(body, JSON, 8 * 1024)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.ValidationError(), 400),
        (errors.InvalidCursor(), 400),
        (errors.Unauthorized(), 401),
        (errors.Forbidden(), 403),
        (errors.UserNotFound(), 404),
        (errors.EmailAlreadyExists(), 409),
        (errors.UserAlreadyExists(), 409),
        (errors.ConcurrentModification(), 409),
        (web_errors.PayloadTooLarge(), 413),
        (web_errors.UnsupportedMediaType(), 415),
        (errors.ServiceUnavailable(), 503),
        (errors.AppError(), 400),
    ],
)
def test_status_for(exc, status):
    assert status_for(exc) == status


def test_every_error_class_has_a_status():
    classes = [
        cls
        for module in (errors, web_errors)
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, errors.AppError)
    ]
    assert len(classes) >= 16
    for cls in classes:
        # The status depends on the class alone: made without its constructor's arguments.
        assert 400 <= status_for(cls.__new__(cls)) < 600


def test_error_response_401_has_www_authenticate():
    response = error_response(errors.Unauthorized("Token expired"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="users-api"'
    assert response.headers["Content-Type"] == "application/json"
    assert "Retry-After" not in response.headers
    assert response.body == {"error": "Token expired"}


def test_error_response_503_has_retry_after():
    response = error_response(errors.ServiceUnavailable())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "WWW-Authenticate" not in response.headers
    assert response.body == {"error": errors.ServiceUnavailable.message}
    # A write that timed out may have been applied: the client is told so, and how to retry safely.
    assert "may or may not have been applied" in response.body["error"]
    assert "same Idempotency-Key" in response.body["error"]


@pytest.mark.parametrize(
    "exc", [errors.ValidationError(), errors.Forbidden(), errors.UserNotFound(), errors.EmailAlreadyExists()]
)
def test_other_errors_have_neither_header(exc):
    response = error_response(exc)
    assert "WWW-Authenticate" not in response.headers
    assert "Retry-After" not in response.headers
    assert response.body == {"error": exc.message}


def test_error_response_includes_details_when_present():
    details = [{"field": "name", "message": "is required"}]
    response = error_response(errors.ValidationError("Invalid request body", details=details))
    assert response.status_code == 400
    assert response.body == {"error": "Invalid request body", "details": details}


def test_error_body_without_details():
    assert error_body("x") == {"error": "x"}
    assert error_body("x", []) == {"error": "x"}


def test_default_messages():
    assert errors.UserNotFound().message == "User not found"
    assert str(errors.Forbidden("custom")) == "custom"
    assert errors.Forbidden("custom").details == []


def test_json_response_headers():
    response = json_response({"a": 1}, 201, {"Location": "/users/1"})
    assert response.status_code == 201
    assert response.headers == {"Content-Type": "application/json", "Location": "/users/1"}
    assert response.body == {"a": 1}


def test_answers_errors_turns_app_errors_into_responses():
    @answers_errors
    def view(fail: bool) -> Any:
        if fail:
            raise errors.UserNotFound()
        return "ok"

    assert view(False) == "ok"
    response = view(True)
    assert response.status_code == 404
    assert response.body == {"error": "User not found"}


def test_answers_errors_lets_other_exceptions_through():
    @answers_errors
    def view() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        view()
