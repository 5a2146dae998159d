"""Errors to responses, in one place: the errors of the HTTP edge itself, and the one table that
says which status every error has. Every route gets it without asking (chalicelib/web/application.py
applies it to each view as it is registered), and the request pipeline uses it for what fails
before a view runs (authentication). A new error class needs one row here; a new route nothing."""

from __future__ import annotations

from typing import Any

from chalice import Response  # type: ignore[attr-defined]

from chalicelib.domain import errors
from chalicelib.domain.errors import AppError
from chalicelib.web.responses import json_response, json_text


class PayloadTooLarge(AppError):
    message = "Request body too large"


class UnsupportedMediaType(AppError):
    message = "Content-Type must be application/json"


class UnsupportedImportType(UnsupportedMediaType):
    message = (
        "Content-Type must be text/csv or application/x-ndjson (the file itself), or application/json "
        '({"upload": true} for an upload form)'
    )


# Subclasses before their bases: the first match wins.
STATUSES: tuple[tuple[type[AppError], int], ...] = (
    (errors.ValidationError, 400),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.UserNotFound, 404),
    (errors.AvatarNotFound, 404),
    (errors.JobNotFound, 404),
    (errors.EmailAlreadyExists, 409),
    (errors.UserAlreadyExists, 409),
    (errors.ConcurrentModification, 409),
    (errors.LastAdmin, 409),
    (errors.IdempotentRequestInFlight, 409),
    (errors.JobFinished, 409),
    (errors.SignInStateConflict, 409),
    (errors.NoEmailChangePending, 409),
    (errors.PreconditionFailed, 412),
    (PayloadTooLarge, 413),
    (UnsupportedMediaType, 415),
    (errors.IdempotencyKeyReused, 422),
    (errors.ServiceUnavailable, 503),
)
RETRY_AFTER_S = "1"


def status_for(exc: AppError) -> int:
    for cls, status in STATUSES:
        if isinstance(exc, cls):
            return status
    return 400


def error_body(message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return body


def error_json(message: str, details: list[dict[str, Any]] | None = None) -> str:
    """An error body as text, spaced as the app's own (for answers made outside a view, such as the
    local gateway's 404); the deployed gateway's and WAF's bodies are written the same way."""
    return json_text(error_body(message, details))


def error_response(exc: AppError) -> Response:
    """The JSON error response of `exc`: its message (never anything else of the exception) and
    details, its status, and the headers that status calls for."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="users-api"'
    if status == 503:
        headers["Retry-After"] = RETRY_AFTER_S
    if isinstance(exc, errors.IdempotentRequestInFlight):
        headers["Retry-After"] = str(exc.retry_after_s)
    return json_response(error_body(exc.message, exc.details), status, headers)
