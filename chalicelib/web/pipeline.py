"""What every request goes through around its view: authentication, error shape, headers, a log
line and its metrics."""

from __future__ import annotations

import contextvars
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalice import Response  # type: ignore[attr-defined]

from chalicelib.config import get_telemetry
from chalicelib.domain.access import Identity
from chalicelib.domain.errors import AppError, Unauthorized
from chalicelib.telemetry import aws_calls as calls
from chalicelib.telemetry import logs, metrics
from chalicelib.web.authentication import Authenticator
from chalicelib.web.cors import CorsOrigins
from chalicelib.web.errors import error_body, error_response
from chalicelib.web.responses import json_response

logger = logging.getLogger("users_api.request")

_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("identity", default=None)

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff"}
# Responses carry user data unless a view says otherwise (public routes set their own).
DEFAULT_CACHE_CONTROL = "private, no-store"
CORRELATION_HEADER = "X-Correlation-Id"
# A caller's id is logged and echoed: anything longer or with other characters is replaced by
# the request id rather than refused, since tracing must never fail a request.
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:;=/+@-]{1,128}")
_cold_start = True


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
    # Their body is exactly {"Code": ..., "Message": ...}; the length test spares building a set per response.
    if isinstance(body, dict) and len(body) == 2 and set(body) == {"Code", "Message"}:
        headers = {key: str(value) for key, value in response.headers.items() if key.lower() != "content-type"}
        message = INTERNAL_ERROR if response.status_code >= 500 else str(body["Message"])
        return json_response(error_body(message), response.status_code, headers)
    return response


def correlation_id(headers: Mapping[str, str], request_id: str) -> str:
    """The caller's X-Correlation-Id if it is a plausible id, else this request's id."""
    given = (headers.get(CORRELATION_HEADER.lower()) or "").strip()
    return given if _CORRELATION_ID.fullmatch(given) else request_id


def _respond(
    request: Any, get_response: Callable[[Any], Response], authenticator: Authenticator | None
) -> tuple[Response, str | None]:
    """The view's response, or the error response; and the caller's sub if authenticated."""
    sub = None
    token = None
    try:
        if authenticator is not None:
            identity = authenticator(request.headers, request.context)
            sub = identity.sub
            token = _identity.set(identity)
        return _framework_error(get_response(request)), sub
    except AppError as exc:
        return error_response(exc), sub
    except Exception:
        logger.exception("unhandled error")
        return json_response(error_body(INTERNAL_ERROR), 500), sub
    finally:
        if token is not None:
            _identity.reset(token)


def _log_request(
    context: Mapping[str, Any],
    ids: dict[str, str],
    status: int,
    started: float,
    sub: str | None,
    cold_start: bool,
    made: list[calls.Call],
) -> None:
    """The request's one line: its ids, route, status, latency and caller, never a body, an email
    or a token; with metrics on, also its EMF metrics. It is written directly, not through
    `logging` (a third of the pipeline's time went there), and with metrics on even when
    LOG_LEVEL hides INFO, since it carries them."""
    telemetry = get_telemetry()
    if not telemetry.metrics and not logger.isEnabledFor(logging.INFO):
        return
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    record: dict[str, Any] = {
        "level": "INFO",
        "logger": logger.name,
        "message": "request",
        **ids,
        "Method": context.get("httpMethod") or "",
        # A metric dimension may not be empty; every route the app declares has a path.
        "Route": context.get("resourcePath") or "-",
        "status": status,
        "latencyMs": latency_ms,
        "sub": sub,
        "coldStart": cold_start,
        "awsCalls": len(made),
        "awsMs": round(sum(call.ms for call in made), 3),
    }
    emf = ""
    if telemetry.metrics:
        emf = metrics.add_metrics(
            record,
            namespace=telemetry.namespace,
            stage=telemetry.stage,
            status=status,
            latency_ms=latency_ms,
            cold_start=cold_start,
            calls=made,
            timestamp_ms=int(time.time() * 1000),
        )
    logs.write(record, emf)


def default_headers(cors_headers: Mapping[str, str]) -> tuple[tuple[str, str, str], ...]:
    """(lower-cased name, name, value) of the headers every response gets unless its view set
    them: worked out once, since `handle` applies them to every response."""
    headers = {**cors_headers, **SECURITY_HEADERS, "Cache-Control": DEFAULT_CACHE_CONTROL}
    return tuple((name.lower(), name, value) for name, value in headers.items())


def handle(
    request: Any,
    get_response: Callable[[Any], Response],
    authenticator: Authenticator | None,
    headers: tuple[tuple[str, str, str], ...],
    cors: CorsOrigins | None = None,
) -> Response:
    """The response to `request`: its view's (`get_response`), behind `authenticator` for a
    protected route (None: a public one), with `headers` and the CORS origin added, logged."""
    global _cold_start
    started = time.perf_counter()
    cold_start, _cold_start = _cold_start, False
    context = request.context or {}
    lambda_context = getattr(request, "lambda_context", None)
    request_id = str(getattr(lambda_context, "aws_request_id", None) or context.get("requestId") or "")
    ids = {"requestId": request_id, "correlationId": correlation_id(request.headers, request_id)}
    api_request_id = context.get("requestId")
    if api_request_id and api_request_id != request_id:  # API Gateway's: the access log's key
        ids["apiRequestId"] = str(api_request_id)
    bound = logs.bind(ids)
    try:
        made, recording = calls.start_recording()
        try:
            response, sub = _respond(request, get_response, authenticator)
        finally:
            calls.stop_recording(recording)
        present = {name.lower() for name in response.headers}
        for lower, name, value in headers:
            if lower not in present:
                response.headers[name] = value
        if cors is not None:
            cors.apply(response.headers, request.headers)
        response.headers[CORRELATION_HEADER] = ids["correlationId"]
        _log_request(context, ids, response.status_code, started, sub, cold_start, made)
        return response
    finally:
        logs.unbind(bound)
