"""User Management API: routes only. Each one checks access, parses, calls the service, shapes."""

from __future__ import annotations

import os
from typing import Any

from chalice import Chalice, CognitoUserPoolAuthorizer, CORSConfig, Response  # type: ignore[attr-defined]

from chalicelib import config, logs, pipeline
from chalicelib.access import require_admin, require_owner_or_admin
from chalicelib.bootstrap import get_service
from chalicelib.errors import UserNotFound
from chalicelib.http import handles_errors, json_response, parse_json_object
from chalicelib.models import (
    is_valid_user_id,
    parse_limit,
    parse_new_user,
    parse_profile_changes,
    parse_user_changes,
    public_user,
)
from chalicelib.pipeline import current_identity

app = Chalice(app_name="users-api")
app.debug = False  # never a stack trace in a response
logs.configure(os.environ.get("LOG_LEVEL", "INFO"))

authorizer = CognitoUserPoolAuthorizer("CognitoUserPool", provider_arns=[config.user_pool_arn()])
cors = CORSConfig(
    allow_origin=config.cors_allow_origin(),
    allow_headers=["Content-Type", "Authorization", "Idempotency-Key", "If-Match", "If-None-Match", "X-Correlation-Id"],
    expose_headers=["ETag", "Location"],
    max_age=600,
)
_CORS_HEADERS = cors.get_access_control_headers()
# Every /users route: a Cognito token, and in stages that set REQUIRE_API_KEY an API key of a usage plan.
protected: dict[str, Any] = {"authorizer": authorizer, "cors": cors, "api_key_required": config.require_api_key()}


@app.middleware("http")
def request_pipeline(event: Any, get_response: Any) -> Response:
    entry = app.routes.get(event.context.get("resourcePath", ""), {}).get(event.method)
    requires_auth = entry is not None and entry.authorizer is not None
    return pipeline.handle(event, get_response, requires_auth, _CORS_HEADERS)


def _request() -> Any:
    request = app.current_request
    assert request is not None  # always set while a view runs
    return request


def _body() -> dict[str, Any]:
    request = _request()
    limit = config.get_settings().max_body_bytes
    return parse_json_object(request.raw_body, request.headers.get("content-type"), limit)


def _location(user_id: str) -> str:
    path = str(_request().context.get("path") or "/users").rstrip("/")
    return f"{path.removesuffix('/me')}/{user_id}"


def _known_id(user_id: str) -> str:
    if not is_valid_user_id(user_id):
        raise UserNotFound()
    return user_id


@app.route("/hello", methods=["GET"], cors=cors)
def hello() -> Response:
    body = {"message": "Hello from serverless!", "timestamp": app.lambda_context.aws_request_id}
    return json_response(body, headers={"Cache-Control": "public, max-age=60"})


@app.route("/openapi.json", methods=["GET"], cors=cors)
def openapi_document() -> Response:
    from chalicelib.openapi import document

    return json_response(document(), headers={"Cache-Control": "public, max-age=300"})


@app.route("/users", methods=["POST"], **protected)
@handles_errors
def create_user() -> Response:
    require_admin(current_identity())
    user = get_service().create_user(parse_new_user(_body()))
    body = {"message": "User created successfully", "user": public_user(user)}
    return json_response(body, 201, {"Location": _location(user.user_id)})


@app.route("/users", methods=["GET"], **protected)
@handles_errors
def list_users() -> Response:
    require_admin(current_identity())
    params = _request().query_params or {}
    users, cursor = get_service().list_users(parse_limit(params.get("limit")), params.get("cursor"))
    return json_response({"users": [public_user(u) for u in users], "count": len(users), "nextCursor": cursor})


@app.route("/users/me", methods=["GET"], **protected)
@handles_errors
def get_profile() -> Response:
    return json_response(public_user(get_service().get_user(current_identity().sub)))


@app.route("/users/me", methods=["PUT"], **protected)
@handles_errors
def put_profile() -> Response:
    identity = current_identity()
    email = identity.email if identity.email_verified else None
    user, created = get_service().put_profile(identity.sub, email, parse_profile_changes(_body()))
    if created:
        body = {"message": "User created successfully", "user": public_user(user)}
        return json_response(body, 201, {"Location": _location(user.user_id)})
    return json_response({"message": "User updated successfully", "user": public_user(user)})


@app.route("/users/{userId}", methods=["GET"], **protected)
@handles_errors
def get_user(userId: str) -> Response:  # noqa: N803 - Chalice passes the path parameter by name
    require_owner_or_admin(current_identity(), userId)
    return json_response(public_user(get_service().get_user(_known_id(userId))))


@app.route("/users/{userId}", methods=["PUT"], **protected)
@handles_errors
def update_user(userId: str) -> Response:  # noqa: N803
    require_owner_or_admin(current_identity(), userId)
    user = get_service().update_user(_known_id(userId), parse_user_changes(_body()))
    return json_response({"message": "User updated successfully", "user": public_user(user)})


@app.route("/users/{userId}", methods=["DELETE"], **protected)
@handles_errors
def delete_user(userId: str) -> Response:  # noqa: N803
    require_admin(current_identity())
    get_service().delete_user(_known_id(userId))
    return json_response({"message": "User deleted successfully"})
