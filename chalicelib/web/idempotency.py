"""Idempotent writes: a retry that carries the same Idempotency-Key gets the first response.

Built on conditional writes of our own rather than Powertools' idempotency utility: that one
wraps a whole Lambda handler or a function of JSON-serialisable arguments, scopes keys by a
JMESPath into the event, and adds a dependency to the package and its import to the cold
start; here the key must be scoped to the verified caller and the stored result is an HTTP
response, which is a few lines around a few conditional requests.

A key is claimed with a lock (in flight), then completed with the response. The record also
holds the request's write token, which every storage write of the request carries: so when a
request ends without knowing whether its write happened (a 503 after timeouts, an unexpected
error), the record is kept, unlocked, and the retry runs with the same token and finds what the
first try did (its own write, recognised) instead of doing it again. After a definite refusal
(a 4xx, nothing written) the record is released, so a retry runs afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalice import Response  # type: ignore[attr-defined]

from chalicelib.domain.errors import AppError, ServiceUnavailable, ValidationError
from chalicelib.domain.idempotency import IdempotencyStore, StoredResponse
from chalicelib.domain.models import new_write_token
from chalicelib.web.responses import json_text

logger = logging.getLogger("users_api.idempotency")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
# What keys are locked and checked by: epoch seconds (tests put a clock of their own here).
wall_clock: Callable[[], float] = time.time
_KEY_RE = re.compile(KEY_PATTERN)
# What a replay repeats besides status and body (CORS and security headers are added per request).
_KEPT_HEADERS = frozenset({"content-type", "location", "etag"})


def parse_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get(HEADER.lower())
    if key is None:
        return None
    if not _KEY_RE.fullmatch(key):
        raise ValidationError(
            f"Invalid {HEADER} header",
            details=[{"field": HEADER, "message": "must be 1 to 255 visible ASCII characters"}],
        )
    return key


def record_id(scope: str, key: str) -> str:
    """Where a caller's key is kept: hashed, so neither the key nor the caller is stored in clear."""
    return hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()


def fingerprint(operation: str, body: Mapping[str, Any]) -> str:
    """The request a key was first used for: the operation and the body, key order ignored."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{operation}\n{canonical}".encode()).hexdigest()


def _stored(response: Response) -> StoredResponse:
    body = response.body if isinstance(response.body, str) else json_text(response.body)  # as first sent
    headers = {name: str(value) for name, value in response.headers.items() if name.lower() in _KEPT_HEADERS}
    return StoredResponse(response.status_code, body, headers)


def _replay(stored: StoredResponse) -> Response:
    return Response(body=stored.body, status_code=stored.status, headers={**stored.headers, REPLAYED_HEADER: "true"})


def run_once(
    store: IdempotencyStore,
    scope: str,
    key: str,
    operation: str,
    body: Mapping[str, Any],
    produce: Callable[[str], Response],
    clock: Callable[[], float] | None = None,
) -> Response:
    """`produce(write_token)` once per (scope, key); later calls with the same request get its response."""
    clock = clock or wall_clock
    rid, lock = record_id(scope, key), secrets.token_hex(16)
    claimed = store.claim(rid, fingerprint(operation, body), lock, new_write_token(), int(clock()))
    if isinstance(claimed, StoredResponse):
        return _replay(claimed)
    try:
        response = produce(claimed.write_token)
    except ServiceUnavailable:
        _quietly(store.unlock, rid, lock)  # the write may have happened: keep its token for the retry
        raise
    except AppError:
        _quietly(store.release, rid, lock)  # refused before anything was written
        raise
    except BaseException:
        _quietly(store.unlock, rid, lock)
        raise
    if not 200 <= response.status_code < 300:
        _quietly(store.release, rid, lock)
        return response
    try:
        store.complete(rid, lock, _stored(response), int(clock()))
    except AppError:
        # The write happened and the client gets its answer; a later retry finds the record
        # locked (409, saying for how long) until the lock expires, then runs again with the
        # same write token and so recognises its own write instead of repeating it.
        logger.exception("could not store an idempotent response")
    return response


def _quietly(action: Callable[[str, str], None], rid: str, lock: str) -> None:
    try:
        action(rid, lock)
    except AppError:
        logger.exception("could not give up an idempotency claim; its lock expires by itself")
