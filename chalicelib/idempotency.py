"""Idempotent writes: a retry that carries the same Idempotency-Key gets the first response.

Built on conditional writes of our own rather than Powertools' idempotency utility: that one
wraps a whole Lambda handler or a function of JSON-serialisable arguments, scopes keys by a
JMESPath into the event, and adds a dependency to the package and its import to the cold
start; here the key must be scoped to the verified caller and the stored result is an HTTP
response, which is a few lines around three conditional requests.

A key is claimed with a lock (in flight), then completed with the response. Only successful
responses are kept: after an error the claim is released, so a retry runs again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chalice import Response  # type: ignore[attr-defined]

from chalicelib.errors import AppError, ValidationError

logger = logging.getLogger("users_api.idempotency")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
RECORD_TTL_S = 24 * 3600
# Longer than the Lambda timeout (28 s): a lock older than this belongs to a request that died.
LOCK_S = 30
_KEY_RE = re.compile(KEY_PATTERN)
# What a replay repeats besides status and body (CORS and security headers are added per request).
_KEPT_HEADERS = frozenset({"content-type", "location", "etag"})


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str  # the JSON text sent the first time
    headers: dict[str, str]

    def to_json(self) -> str:
        return json.dumps({"status": self.status, "body": self.body, "headers": self.headers})

    @classmethod
    def from_json(cls, text: str) -> StoredResponse:
        data = json.loads(text)
        return cls(int(data["status"]), str(data["body"]), {str(k): str(v) for k, v in data["headers"].items()})


class IdempotencyStore(Protocol):
    def claim(self, record_id: str, fingerprint: str, token: str, now: int) -> StoredResponse | None:
        """Claim `record_id` for one request: None when claimed (go ahead), or the response of
        the request that completed it. Raises IdempotencyKeyReused when it was claimed with
        another fingerprint, IdempotentRequestInFlight while another claim is live."""

    def complete(self, record_id: str, token: str, response: StoredResponse, now: int) -> None:
        """Store the response under our claim; raises AppError when it cannot."""

    def release(self, record_id: str, token: str) -> None:
        """Give up our claim, so a retry runs again; raises AppError when it cannot."""


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
    body = response.body if isinstance(response.body, str) else json.dumps(response.body)
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
    produce: Callable[[], Response],
    clock: Callable[[], float] = time.time,
) -> Response:
    """`produce()` once per (scope, key); later calls with the same request get its response."""
    rid, token = record_id(scope, key), secrets.token_hex(16)
    replay = store.claim(rid, fingerprint(operation, body), token, int(clock()))
    if replay is not None:
        return _replay(replay)
    try:
        response = produce()
    except BaseException:
        _release_quietly(store, rid, token)
        raise
    if not 200 <= response.status_code < 300:
        _release_quietly(store, rid, token)
        return response
    try:
        store.complete(rid, token, _stored(response), int(clock()))
    except AppError:
        # The write happened and the client gets its answer; only a later retry loses the
        # replay (it sees 409 until the lock expires, then runs again).
        logger.exception("could not store an idempotent response")
    return response


def _release_quietly(store: IdempotencyStore, rid: str, token: str) -> None:
    try:
        store.release(rid, token)
    except AppError:
        logger.exception("could not release an idempotency claim; it expires by itself")
