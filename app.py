"""User Management API: the Lambda functions Chalice deploys. The API's routes (each checks access,
parses, calls the service and shapes its answer; the wiring is chalicelib/bootstrap.py's), the
request pipeline around them, the users table's stream consumer and the two pre-traffic hooks."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from chalice import CognitoUserPoolAuthorizer, Response  # type: ignore[attr-defined]

from chalicelib import bootstrap, config
from chalicelib.bootstrap import current as wired
from chalicelib.domain.access import (
    require_admin,
    require_may_change,
    require_not_own_password_reset,
    require_not_self,
    require_owner_or_admin,
)
from chalicelib.domain.errors import UserNotFound, ValidationError
from chalicelib.domain.models import Preconditions, User, is_valid_user_id, new_write_token, public_user
from chalicelib.domain.pacing import WORKER_MAX_CONCURRENCY
from chalicelib.telemetry import logs
from chalicelib.web import idempotency, pipeline
from chalicelib.web.application import Application, FixedCORSConfig
from chalicelib.web.conditional import etag, none_match_hits, parse_preconditions
from chalicelib.web.cors import CorsOrigins
from chalicelib.web.inputs import (
    parse_avatar_content_type,
    parse_email_code,
    parse_limit,
    parse_new_user,
    parse_profile_changes,
    parse_user_changes,
    parse_user_query,
)
from chalicelib.web.pipeline import current_identity
from chalicelib.web.requests import IMPORT_CONTENT_TYPES, parse_json_object
from chalicelib.web.responses import json_response

CREATED, UPDATED = "User created successfully", "User updated successfully"
EMAIL_CODE_SENT = "A code was sent to the new address; confirm it with POST /users/me/email-verification"
EMAIL_CHANGED = "Email changed"

app = Application(app_name="users-api")
app.debug = False  # never a stack trace in a response
logs.configure(os.environ.get("LOG_LEVEL", "INFO"))
# Lambda's INIT of the API function: it is wired, and the clients of its every request made, now
# rather than by its first request (AWS's advice; provisioned concurrency pre-pays only INIT).
# Locally and in tests nothing is wired at import: they set their environment and give their own
# parts after importing the app.
if config.initialising_api_function():
    bootstrap.prepare()

authorizer = CognitoUserPoolAuthorizer("CognitoUserPool", provider_arns=[config.user_pool_arn()])
# Chalice's CORSConfig names one origin; a local stage's other allowed origins are answered per
# request by the pipeline (and by the local gateway's own preflights, devstack/gateway.py).
cors_origins = CorsOrigins(config.cors_allow_origins())
cors = FixedCORSConfig(
    allow_origin=cors_origins.allowed[0],
    allow_headers=["Content-Type", "Authorization", "Idempotency-Key", "If-Match", "If-None-Match", "X-Correlation-Id"],
    expose_headers=["ETag", "Location", "Retry-After", idempotency.REPLAYED_HEADER, pipeline.CORRELATION_HEADER],
    max_age=600,
)
_DEFAULT_HEADERS = pipeline.default_headers(cors.get_access_control_headers())
# Every /users route: a Cognito token, and in stages that set REQUIRE_API_KEY an API key of a usage plan.
protected: dict[str, Any] = {"authorizer": authorizer, "cors": cors, "api_key_required": config.require_api_key()}


@app.middleware("http")
def request_pipeline(event: Any, get_response: Any) -> Response:
    entry = app.routes.get(event.context.get("resourcePath", ""), {}).get(event.method)
    protected_route = entry is not None and entry.authorizer is not None
    authenticator = wired().authenticator if protected_route else None
    return pipeline.handle(event, get_response, authenticator, _DEFAULT_HEADERS, cors_origins)


def _request() -> Any:
    request = app.current_request
    assert request is not None  # always set while a view runs
    return request


def _body() -> dict[str, Any]:
    request = _request()
    limit = wired().settings.max_body_bytes
    return parse_json_object(request.raw_body, request.headers.get("content-type"), limit)


def _location(user_id: str) -> str:
    path = str(_request().context.get("path") or "/users").rstrip("/")
    return f"{path.removesuffix('/me')}/{user_id}"


def _known_id(user_id: str) -> str:
    if not is_valid_user_id(user_id):
        raise UserNotFound()
    return user_id


def _user_response(user: User, message: str | None = None, status: int = 200) -> Response:
    """A user, or a message with one, with its ETag (and its Location when created)."""
    headers = {"ETag": etag(user)}
    if status == 201:
        headers["Location"] = _location(user.user_id)
    body = public_user(user) if message is None else {"message": message, "user": public_user(user)}
    return json_response(body, status, headers)


def _readable(user: User) -> Response:
    """The user, or 304 when If-None-Match names the version the client already has."""
    if none_match_hits(_request().headers.get("if-none-match"), user):
        return Response(body="", status_code=304, headers={"ETag": etag(user)})
    return _user_response(user)


def _preconditions() -> Preconditions:
    headers = _request().headers
    return parse_preconditions(headers.get("if-match"), headers.get("if-none-match"))


def _idempotent(operation: str, body: dict[str, Any] | None, produce: Callable[[str], Response]) -> Response:
    """`produce(write_token)`: with an Idempotency-Key, once for this caller (a retry gets the first
    response, or after an unknown outcome runs again with the same write token); without, once."""
    headers = _request().headers
    key = idempotency.parse_key(headers)
    if key is None:
        return produce(new_write_token())
    request = {"body": body, "ifMatch": headers.get("if-match"), "ifNoneMatch": headers.get("if-none-match")}
    return idempotency.run_once(wired().idempotency, current_identity().sub, key, operation, request, produce)


@app.route("/hello", methods=["GET"], cors=cors)
def hello() -> Response:
    body = {"message": "Hello from serverless!", "timestamp": app.lambda_context.aws_request_id}
    return json_response(body, headers={"Cache-Control": "public, max-age=60"})


@app.route("/openapi.json", methods=["GET"], cors=cors)
def openapi_document() -> Response:
    from chalicelib.web.openapi import document_for, server_url

    request = _request()
    base_url = server_url(config.get_telemetry().stage, request.context or {}, request.headers)
    # Varies with the host the caller used (the stage's own domain or a custom one, 127.0.0.1 or localhost).
    headers = {"Cache-Control": "public, max-age=300", "Vary": "Host"}
    return json_response(document_for(base_url), headers=headers)


@app.route("/users", methods=["POST"], **protected)
def create_user() -> Response:
    identity = current_identity()
    require_admin(identity)
    body = _body()
    new = parse_new_user(body)

    def create(token: str) -> Response:
        return _user_response(wired().service.create_user(new, token=token, actor=identity.sub), CREATED, 201)

    return _idempotent("createUser", body, create)


@app.route("/users", methods=["GET"], **protected)
def list_users() -> Response:
    identity = current_identity()
    require_admin(identity)
    params = _request().query_params or {}
    query, limit = parse_user_query(params), parse_limit(params.get("limit"))
    users, cursor = wired().service.list_users(query, limit, params.get("cursor"), caller=identity.sub)
    return json_response({"users": [public_user(u) for u in users], "count": len(users), "nextCursor": cursor})


@app.route("/users/me", methods=["GET"], **protected)
def get_profile() -> Response:
    return _readable(wired().service.get_user(current_identity().sub))


@app.route("/users/me", methods=["PUT"], **protected)
def put_profile() -> Response:
    identity = current_identity()
    body = _body()
    changes, conditions = parse_profile_changes(body), _preconditions()
    if changes.email is not None:
        email = changes.email

        def request_change(token: str) -> Response:
            user = wired().service.request_email_change(identity.sub, email, token=token)
            return _user_response(user, EMAIL_CODE_SENT)

        return _idempotent("putProfile", body, request_change)

    def save(token: str) -> Response:
        user, created = wired().service.put_profile(identity.sub, changes, conditions, token=token)
        return _user_response(user, CREATED, 201) if created else _user_response(user, UPDATED)

    return _idempotent("putProfile", body, save)


@app.route("/users/me/email-verification", methods=["POST"], **protected)
def verify_email() -> Response:
    identity = current_identity()
    body = _body()
    code = parse_email_code(body)

    def verify(token: str) -> Response:
        return _user_response(wired().service.verify_email(identity.sub, code, token=token), EMAIL_CHANGED)

    return _idempotent("verifyEmail", body, verify)


@app.route("/users/{userId}", methods=["GET"], **protected)
def get_user(userId: str) -> Response:  # noqa: N803 - Chalice passes the path parameter by name
    require_owner_or_admin(current_identity(), userId)
    return _readable(wired().service.get_user(_known_id(userId)))


@app.route("/users/{userId}", methods=["PUT"], **protected)
def update_user(userId: str) -> Response:  # noqa: N803
    identity = current_identity()
    require_owner_or_admin(identity, userId)
    user_id, body = _known_id(userId), _body()
    changes, conditions = parse_user_changes(body), _preconditions()
    require_may_change(identity, user_id, changes)

    def update(token: str) -> Response:
        user = wired().service.update_user(user_id, changes, conditions, token=token, actor=identity.sub)
        return _user_response(user, UPDATED)

    return _idempotent(f"updateUser {user_id}", body, update)


@app.route("/users/{userId}", methods=["DELETE"], **protected)
def delete_user(userId: str) -> Response:  # noqa: N803
    identity = current_identity()
    require_admin(identity)
    require_not_self(identity, userId)
    user_id, conditions = _known_id(userId), _preconditions()

    def delete(token: str) -> Response:
        wired().service.delete_user(user_id, conditions, token=token, actor=identity.sub)
        return json_response({"message": "User deleted successfully"})

    return _idempotent(f"deleteUser {user_id}", None, delete)


def _sign_in_action(user_id: str, action: str, message: str, self_check: bool = False) -> Response:
    """POST /users/{id}/<action>: admins only; one change event per action, once per Idempotency-Key."""
    identity = current_identity()
    require_admin(identity)
    if _request().raw_body and _body():
        # The action takes no body: one sent is a client's mistake, refused before anything happens.
        raise ValidationError(
            "This action takes no request body", details=[{"field": k, "message": "unknown field"} for k in _body()]
        )
    if self_check:
        require_not_own_password_reset(identity, user_id)
    known = _known_id(user_id)
    service = wired().service
    run = {
        "invitation": service.resend_invitation,
        "password-reset": service.reset_password,
        "sign-out": service.sign_out,
    }[action]

    def act(token: str) -> Response:
        return _user_response(run(known, token=token, actor=identity.sub), message)

    return _idempotent(f"{action} {known}", None, act)


@app.route("/users/{userId}/invitation", methods=["POST"], **protected)
def resend_invitation(userId: str) -> Response:  # noqa: N803
    return _sign_in_action(userId, "invitation", "Invitation sent again with a new temporary password")


@app.route("/users/{userId}/password-reset", methods=["POST"], **protected)
def reset_password(userId: str) -> Response:  # noqa: N803
    return _sign_in_action(userId, "password-reset", "Password reset: the user was sent a code to set a new one", True)


@app.route("/users/{userId}/sign-out", methods=["POST"], **protected)
def sign_out(userId: str) -> Response:  # noqa: N803
    return _sign_in_action(userId, "sign-out", "Signed out everywhere")


@app.route("/users/{userId}/avatar", methods=["POST"], **protected)
def create_avatar_upload(userId: str) -> Response:  # noqa: N803
    require_owner_or_admin(current_identity(), userId)
    user_id, content_type = _known_id(userId), parse_avatar_content_type(_body())
    wired().service.get_user(user_id)  # 404 unless the user exists
    upload = wired().avatars.presigned_upload(user_id, content_type)
    return json_response({"uploadUrl": upload.url, "fields": upload.fields, "fileKey": upload.key})


@app.route("/users/{userId}/avatar", methods=["GET"], **protected)
def get_avatar(userId: str) -> Response:  # noqa: N803
    require_owner_or_admin(current_identity(), userId)
    user_id = _known_id(userId)
    # A form issued before the user was deleted can still upload: a deleted user's avatar is
    # never handed out, whatever S3 holds.
    wired().service.get_user(user_id)
    return json_response({"downloadUrl": wired().avatars.download_url(user_id)})


@app.route("/users/{userId}/history", methods=["GET"], **protected)
def get_user_history(userId: str) -> Response:  # noqa: N803
    identity = current_identity()
    require_owner_or_admin(identity, userId)
    user_id, params = _known_id(userId), _request().query_params or {}
    limit = parse_limit(params.get("limit"))
    entries, cursor = wired().history.page(user_id, limit, params.get("cursor"), caller=identity.sub)
    return json_response({"events": [e.public() for e in entries], "count": len(entries), "nextCursor": cursor})


# --- Bulk jobs: imports and exports (chalicelib/domain/imports.py, exports.py); admins only ---
# Their modules are imported by their routes: the API's INIT loads none of them (few containers
# serve a job route; tests/unit/test_lambda_import.py holds it).


def _job_location(job_id: str) -> str:
    return f"{str(_request().context.get('path') or '').rstrip('/')}/{job_id}"


def _page() -> tuple[int, str | None]:
    params = _request().query_params or {}
    return parse_limit(params.get("limit")), params.get("cursor")


@app.route("/users/imports", methods=["POST"], content_types=IMPORT_CONTENT_TYPES, **protected)
def start_import() -> Response:
    from chalicelib.web.bulk_requests import import_fingerprint, parse_import_request

    identity = current_identity()
    require_admin(identity)
    request = _request()
    limit = wired().settings.max_body_bytes
    asked = parse_import_request(request.raw_body, request.headers.get("content-type"), request.query_params, limit)

    def start(token: str) -> Response:
        job, form = wired().imports.start(identity.sub, asked, token)
        body = {**job.public(), **({"upload": form.public()} if form is not None else {})}
        return json_response(body, 202, {"Location": _job_location(job.job_id)})

    return _idempotent("startImport", import_fingerprint(asked), start)


@app.route("/users/imports/{jobId}", methods=["GET"], **protected)
def get_import(jobId: str) -> Response:  # noqa: N803
    require_admin(current_identity())
    limit, cursor = _page()
    job, rows, after = wired().imports.report(jobId, limit, cursor, failed_only=True)
    errors = [error for row in rows for error in row.errors()]
    return json_response({**job.public(), "errors": errors, "count": len(errors), "nextCursor": after})


@app.route("/users/imports/{jobId}/rows", methods=["GET"], **protected)
def get_import_rows(jobId: str) -> Response:  # noqa: N803
    require_admin(current_identity())
    limit, cursor = _page()
    job, rows, after = wired().imports.report(jobId, limit, cursor, failed_only=False)
    body = {"jobId": job.job_id, "rows": [row.public() for row in rows], "count": len(rows), "nextCursor": after}
    return json_response(body)


@app.route("/users/imports/{jobId}", methods=["DELETE"], **protected)
def cancel_import(jobId: str) -> Response:  # noqa: N803
    require_admin(current_identity())
    return json_response(wired().imports.cancel(jobId).public())


@app.route("/users/exports", methods=["POST"], **protected)
def start_export() -> Response:
    from chalicelib.web.bulk_requests import parse_export_request

    identity = current_identity()
    require_admin(identity)
    request = _request()
    limit = wired().settings.max_body_bytes
    fmt = parse_export_request(request.raw_body, request.headers.get("content-type"), limit)

    def start(token: str) -> Response:
        job = wired().exports.start(identity.sub, fmt, token)
        return json_response(job.public(), 202, {"Location": _job_location(job.job_id)})

    return _idempotent("startExport", {"format": fmt}, start)


@app.route("/users/exports/{jobId}", methods=["GET"], **protected)
def get_export(jobId: str) -> Response:  # noqa: N803
    from chalicelib.domain.jobs import job_timestamp

    require_admin(current_identity())
    job, url, expires_at = wired().exports.get(jobId)
    body = job.public()
    if url is not None and expires_at is not None:
        body["download"] = {"url": url, "expiresAt": job_timestamp(expires_at)}
    return json_response(body)


# The worker of imports and exports: one message of the job queue per invocation, at most
# WORKER_MAX_CONCURRENCY at once (Cognito's UserCreation quota: chalicelib/domain/jobs.py). A
# message it cannot handle raises, so SQS hands it over again (the templates add the queue, its
# dead-letter queue and the bucket's notification of new import files: infra/cloudformation.py,
# infra/terraform/jobs.tf).
@app.on_sqs_message(
    queue=config.jobs_queue_name(), name="bulk_jobs", batch_size=1, maximum_concurrency=WORKER_MAX_CONCURRENCY
)
def bulk_jobs(event: Any) -> None:
    """Plan an import, create a batch of its users, or write an export (chalicelib/domain/job_worker.py)."""
    bootstrap.job_worker().handle(event.to_dict()["Records"], event.context.get_remaining_time_in_millis)


# TRIM_HORIZON: a new mapping starts with the oldest record the stream keeps (24 hours), so no
# change made before it existed is missed. Partial batch responses, retries, the dead-letter queue
# and the filter that keeps other items' records away are set by the templates
# (infra/cloudformation.py, infra/terraform/events.tf): the decorator has no arguments for them.
@app.on_dynamodb_record(stream_arn=config.users_stream_arn(), name="user_changes", starting_position="TRIM_HORIZON")
def user_changes(event: Any) -> dict[str, list[dict[str, str]]]:
    """The users table's stream: change events to the bus and the audit trail, avatars of expired
    deleted users removed (chalicelib/domain/change_consumer.py). No route leads here."""
    response = bootstrap.changes().handle(event.to_dict()["Records"])
    if response["batchItemFailures"] and not config.reports_batch_item_failures():
        # A mapping without ReportBatchItemFailures reads any answer as success: fail the whole
        # batch instead, so it is retried rather than lost.
        raise RuntimeError("a stream record failed; the batch is retried")
    return response


@app.lambda_function(name="pre_traffic_hook")
def pre_traffic_hook(event: dict[str, Any], context: Any) -> dict[str, str]:
    """CodeDeploy's check of a new API version before it gets traffic; no route leads here."""
    from chalicelib.traffic_hook import handle  # imported here: the API function never loads it

    return handle(event)


@app.lambda_function(name="changes_pre_traffic_hook")
def changes_pre_traffic_hook(event: dict[str, Any], context: Any) -> dict[str, str]:
    """CodeDeploy's check of a new version of the stream consumer before its mapping reads with it."""
    from chalicelib.traffic_hook import handle_stream_check  # imported here: the API function never loads it

    return handle_stream_check(event)
