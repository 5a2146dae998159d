"""HTTP edges: JSON bodies in, JSON responses out, and the one map from errors to statuses."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from chalice import Response  # type: ignore[attr-defined]

from chalicelib.domain import errors

logger = logging.getLogger("users_api.http")

JSON = "application/json"

# The only place a domain error becomes a status code (subclasses before their bases).
_STATUS: tuple[tuple[type[errors.AppError], int], ...] = (
    (errors.ValidationError, 400),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.UserNotFound, 404),
    (errors.RouteNotFound, 404),
    (errors.AvatarNotFound, 404),
    (errors.EmailAlreadyExists, 409),
    (errors.UserAlreadyExists, 409),
    (errors.ConcurrentModification, 409),
    (errors.LastAdmin, 409),
    (errors.IdempotentRequestInFlight, 409),
    (errors.PreconditionFailed, 412),
    (errors.IdempotencyKeyReused, 422),
    (errors.PayloadTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.ServiceUnavailable, 503),
)
RETRY_AFTER_S = "1"


def status_for(exc: errors.AppError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": JSON, **(headers or {})})


def error_body(message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return body


def error_response(exc: errors.AppError) -> Response:
    status = status_for(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="users-api"'
    if status == 503:
        headers["Retry-After"] = RETRY_AFTER_S
    return json_response(error_body(exc.message, exc.details), status, headers)


F = TypeVar("F", bound=Callable[..., Any])


def handles_errors(view: F) -> F:
    """Turn domain errors raised by a view into their JSON error responses."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except errors.AppError as exc:
            return error_response(exc)

    return wrapper  # type: ignore[return-value]


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_json_object(raw_body: bytes | None, content_type: str | None, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, or the error that explains why it is not one."""
    body = raw_body or b""
    if len(body) > max_bytes:
        raise errors.PayloadTooLarge(f"Request body exceeds {max_bytes} bytes")
    if not body.strip():
        raise errors.ValidationError("Request body is required")
    if _media_type(content_type) != JSON:
        raise errors.UnsupportedMediaType()
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.ValidationError("Request body is not valid JSON") from exc
    except RecursionError as exc:  # "[[[[..." fits under the size limit but nests too deep
        raise errors.ValidationError("Request body nests too deeply") from exc
    if not isinstance(data, dict):
        raise errors.ValidationError("Request body must be a JSON object")
    try:
        # JSON may escape a lone UTF-16 surrogate ("\\ud800"), which no UTF-8 text can hold: refused
        # here, before it can reach a fingerprint, a log line or an AWS request.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise errors.ValidationError(
            "Request body holds a string that is not valid Unicode (a lone surrogate)"
        ) from exc
    return data
