"""Opaque, tamper-evident list cursors: the last key of a page, HMAC-signed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

from chalicelib.errors import InvalidCursor

_VERSION = 1
MAX_CURSOR_LEN = 512
# Unpadded base64url, checked before decoding: the decoder would otherwise skip stray
# characters and accept many spellings of one cursor.
_CURSOR_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


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
