"""Opaque, tamper-evident list cursors: the last key of a page, HMAC-signed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from chalicelib.errors import InvalidCursor

_VERSION = 1
_MAX_CURSOR_LEN = 512


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise ValueError("cursor secret must be at least 16 bytes")
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def encode(self, last_user_id: str) -> str:
        payload = json.dumps({"v": _VERSION, "after": last_user_id}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, cursor: str) -> str:
        """Return the user id the page starts after; InvalidCursor for anything we did not issue."""
        if len(cursor) > _MAX_CURSOR_LEN or cursor.count(".") != 1:
            raise InvalidCursor()
        encoded_payload, encoded_sig = cursor.split(".")
        try:
            payload, signature = _unb64(encoded_payload), _unb64(encoded_sig)
        except (ValueError, TypeError) as exc:
            raise InvalidCursor() from exc
        if not hmac.compare_digest(signature, self._sign(payload)):
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
