"""Opaque, tamper-evident list cursors: the last key of a page, HMAC-signed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable

from chalicelib.domain.errors import InvalidCursor

_VERSION = 1
MAX_CURSOR_LEN = 512
# Unpadded base64url, checked before decoding: the decoder would otherwise skip stray
# characters and accept many spellings of one cursor.
# Public: the OpenAPI document states this very pattern.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
_CURSOR_RE = re.compile(CURSOR_PATTERN)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


MIN_SECRET_BYTES = 16


def _checked(secret: bytes) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"cursor secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


class CursorCodec:
    """Signs with `secret`, or with what `secret()` returns at each use: a deployed secret is
    fetched only when a list request needs it, never at a cold start, and `secret()` caches it
    (chalicelib.adapters.secret_store) so a rotation is picked up."""

    def __init__(self, secret: bytes | Callable[[], bytes]):
        self._secret: bytes | None = None
        self._source: Callable[[], bytes] | None = None
        if isinstance(secret, bytes):
            self._secret = _checked(secret)
        else:
            self._source = secret

    def _key(self) -> bytes:
        if self._secret is not None:
            return self._secret
        assert self._source is not None
        return _checked(self._source())

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key(), payload, hashlib.sha256).digest()[:16]

    def encode(self, last_user_id: str) -> str:
        payload = json.dumps({"v": _VERSION, "after": last_user_id}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, cursor: str) -> str:
        """Return the user id the page starts after; InvalidCursor for anything we did not issue."""
        if len(cursor) > MAX_CURSOR_LEN or not _CURSOR_RE.fullmatch(cursor):
            raise InvalidCursor()
        encoded_payload, encoded_sig = cursor.split(".")
        try:
            payload, signature = _unb64(encoded_payload), _unb64(encoded_sig)
        except (ValueError, TypeError) as exc:
            raise InvalidCursor() from exc
        if _b64(signature) != encoded_sig or not hmac.compare_digest(signature, self._sign(payload)):
            raise InvalidCursor()
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise InvalidCursor() from exc
        if not isinstance(data, dict) or data.get("v") != _VERSION:
            raise InvalidCursor()
        after = data.get("after")
        if not isinstance(after, str) or not after:
            raise InvalidCursor()
        return after
