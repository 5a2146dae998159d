"""The OpenAPI 3 description of the API, built on first request."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.cursor import MAX_CURSOR_LEN
from chalicelib.models import (
    CONTROL_CHARS,
    E164_PATTERN,
    EMAIL_MAX,
    NAME_MAX,
    PAGE_DEFAULT,
    PAGE_MAX,
    USER_ID_PATTERN,
)

_ERROR_TEXT = {
    "400": "Invalid input: malformed JSON, wrong or unknown fields, bad limit or cursor",
    "401": "Missing, malformed, forged, expired or unverifiable token",
    "403": "Signed in but not allowed",
    "404": "No such user",
    "409": "Email already used by another user, or a concurrent change won",
    "413": "Request body above the configured limit",
    "415": "Request body is not application/json",
    "503": "DynamoDB unavailable after retries; retry after the Retry-After delay",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/E{code}"} for code in codes}


def _op(
    op_id: str,
    summary: str,
    responses: dict[str, Any],
    body: str | None = None,
    secure: bool = True,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses}
    op["security"] = [{"cognito": []}] if secure else []
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if parameters:
        op["parameters"] = parameters
    return op


_USER_ID = {
    "name": "userId",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": USER_ID_PATTERN},
}
_LOCATION = {"Location": {"description": "Path of the created user", "schema": {"type": "string"}}}
_WRITE = ("400", "401", "413", "415", "503")


def _schemas() -> dict[str, Any]:
    name = {
        "type": "string",
        "minLength": 1,
        "maxLength": NAME_MAX,
        # Some character that is neither space nor control, and no control anywhere.
        "pattern": f"^[^{CONTROL_CHARS}]*[^{CONTROL_CHARS}\\s][^{CONTROL_CHARS}]*$",
    }
    email = {"type": "string", "format": "email", "maxLength": EMAIL_MAX}
    phone = {"type": "string", "pattern": E164_PATTERN, "description": "E.164"}
    timestamp = {"type": "string", "format": "date-time"}
    return {
        "User": {
            "type": "object",
            "additionalProperties": False,
            "required": ["userId", "name", "email", "createdAt", "updatedAt", "version"],
            "properties": {
                "userId": {"type": "string"},
                "name": {"type": "string"},
                "email": {"type": "string"},
                "phone": {"type": "string"},
                "createdAt": timestamp,
                "updatedAt": timestamp,
                "version": {"type": "integer", "minimum": 1},
            },
        },
        "NewUser": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "email"],
            "properties": {"name": name, "email": email, "phone": phone},
        },
        "UserUpdate": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {"name": name, "email": email, "phone": {"oneOf": [phone, {"type": "null"}]}},
            "description": "Partial update; phone null removes the phone.",
        },
        "ProfileUpdate": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {"name": name, "phone": {"oneOf": [phone, {"type": "null"}]}},
            "description": "The first PUT creates the profile and requires name; the email comes from the token.",
        },
        "UserEnvelope": {
            "type": "object",
            "required": ["message", "user"],
            "properties": {"message": {"type": "string"}, "user": _ref("User")},
        },
        "UserList": {
            "type": "object",
            "required": ["users", "count", "nextCursor"],
            "properties": {
                "users": {"type": "array", "items": _ref("User")},
                "count": {"type": "integer", "minimum": 0},
                "nextCursor": {"type": ["string", "null"]},
            },
        },
        "Message": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
        "Hello": {
            "type": "object",
            "required": ["message", "timestamp"],
            "properties": {"message": {"type": "string"}, "timestamp": {"type": "string"}},
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        },
    }


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    envelope = _ref("UserEnvelope")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "User Management API",
            "version": "1.0.0",
            "description": "Users on API Gateway, Lambda, DynamoDB and Cognito. Undeclared methods get 405, "
            'unknown paths 404, all errors as {"error": ...}.',
        },
        "paths": {
            "/hello": {
                "get": _op("hello", "Liveness greeting", {"200": _json(_ref("Hello"), "Greeting")}, secure=False)
            },
            "/openapi.json": {
                "get": _op(
                    "openapi", "This document", {"200": _json({"type": "object"}, "OpenAPI document")}, secure=False
                )
            },
            "/users": {
                "post": _op(
                    "createUser",
                    "Create a user (admins)",
                    {"201": _json(envelope, "Created", _LOCATION), **_errors(*_WRITE, "403", "409")},
                    body="NewUser",
                ),
                "get": _op(
                    "listUsers",
                    "List users, a page at a time (admins)",
                    {"200": _json(_ref("UserList"), "A page of users"), **_errors("400", "401", "403", "503")},
                    parameters=[
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": PAGE_DEFAULT},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": MAX_CURSOR_LEN}},
                    ],
                ),
            },
            "/users/me": {
                "get": _op(
                    "getProfile",
                    "Your own profile",
                    {"200": _json(_ref("User"), "Your profile"), **_errors("401", "404", "503")},
                ),
                "put": _op(
                    "putProfile",
                    "Create (first call) or update your own profile",
                    {
                        "200": _json(envelope, "Updated"),
                        "201": _json(envelope, "Created", _LOCATION),
                        **_errors(*_WRITE, "403", "409"),
                    },
                    body="ProfileUpdate",
                ),
            },
            "/users/{userId}": {
                "get": _op(
                    "getUser",
                    "A user (admins, or the owner)",
                    {"200": _json(_ref("User"), "The user"), **_errors("401", "403", "404", "503")},
                    parameters=[_USER_ID],
                ),
                "put": _op(
                    "updateUser",
                    "Partially update a user (admins, or the owner)",
                    {"200": _json(envelope, "Updated"), **_errors(*_WRITE, "403", "404", "409")},
                    body="UserUpdate",
                    parameters=[_USER_ID],
                ),
                "delete": _op(
                    "deleteUser",
                    "Delete a user (admins)",
                    {"200": _json(_ref("Message"), "Deleted"), **_errors("401", "403", "404", "409", "503")},
                    parameters=[_USER_ID],
                ),
            },
        },
        "components": {
            "securitySchemes": {
                "cognito": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Cognito ID token, as `Bearer <token>` or the bare token.",
                }
            },
            "schemas": _schemas(),
            "responses": {
                f"E{code}": _json(
                    _ref("Error"), text, {"Retry-After": {"schema": {"type": "string"}}} if code == "503" else None
                )
                for code, text in _ERROR_TEXT.items()
            },
        },
    }
