"""What every request goes through around its view: authentication, error shape, headers, a log line."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from typing import Any

from chalice import Response  # type: ignore[attr-defined]

from chalicelib import bootstrap
from chalicelib.access import Identity
from chalicelib.authentication import authenticate
from chalicelib.errors import AppError, Unauthorized
from chalicelib.http import error_body, error_response, json_response

logger = logging.getLogger("users_api.request")

_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("identity", default=None)

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}
# Responses carry user data unless a view says otherwise (public routes set their own).
DEFAULT_CACHE_CONTROL = "no-store"


def current_identity() -> Identity:
    """The verified caller of the request being handled; Unauthorized if there is none."""
    identity = _identity.get()
    if identity is None:
        raise Unauthorized()
    return identity


INTERNAL_ERROR = "Internal server error"  # also the deployed gateway's DEFAULT_5XX body


def _framework_error(response: Response) -> Response:
    """Give Chalice's own errors (405, 415, and the 500 for a view's unhandled exception) our shape."""
    body = response.body
    if isinstance(body, dict) and set(body) == {"Code", "Message"}:
        headers = {key: str(value) for key, value in response.headers.items() if key.lower() != "content-type"}
        message = INTERNAL_ERROR if response.status_code >= 500 else str(body["Message"])
        return json_response(error_body(message), response.status_code, headers)
    return response


def handle(
    request: Any,
    get_response: Callable[[Any], Response],
    requires_auth: bool,
    cors_headers: dict[str, str],
) -> Response:
    started = time.perf_counter()
    identity: Identity | None = None
    token = None
    try:
        if requires_auth:
            identity = authenticate(request.headers, request.context, bootstrap.get_verify())
            token = _identity.set(identity)
        response = _framework_error(get_response(request))
    except AppError as exc:
        response = error_response(exc)
    except Exception:
        logger.exception("unhandled error")
        response = json_response(error_body(INTERNAL_ERROR), 500)
    finally:
        if token is not None:
            _identity.reset(token)
    present = {name.lower() for name in response.headers}
    for name, value in {**cors_headers, **SECURITY_HEADERS, "Cache-Control": DEFAULT_CACHE_CONTROL}.items():
        if name.lower() not in present:
            response.headers[name] = value
    context = request.context or {}
    lambda_context = getattr(request, "lambda_context", None)
    logger.info(
        "request",
        extra={
            "requestId": getattr(lambda_context, "aws_request_id", None),
            "method": context.get("httpMethod"),
            "route": context.get("resourcePath"),
            "status": response.status_code,
            "latencyMs": round((time.perf_counter() - started) * 1000, 2),
            "sub": identity.sub if identity else None,
        },
    )
    return response
