"""Opaque, tamper-evident cursors: the position a page ended at, HMAC-signed, and bound to what it
was issued for.

A cursor names the route it came from ("users" or "history"), and carries a keyed digest of its
caller's sub and of its query (the filters and the sort of GET /users; the user whose history
it pages), so a cursor works only where it was issued: another route, another caller or another
query gets 400 naming `cursor`, as a forged or altered one does. Cursors of the previous format
(version 1, before cursors were bound) are refused the same way: a client starts again without one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import InvalidCursor

_VERSION = 2
# A position is at most an index sort key (1,024 bytes of UTF-8); in base64 with its envelope
# that stays under this.
MAX_CURSOR_LEN = 2048
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

    @staticmethod
    def _sign(key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, payload, hashlib.sha256).digest()[:16]

    @staticmethod
    def _digest(key: bytes, scope: CursorScope) -> str:
        material = "\x1f".join(("scope", scope.caller, scope.query)).encode()
        return _b64(hmac.new(key, material, hashlib.sha256).digest()[:12])

    def encode(self, after: str, scope: CursorScope) -> str:
        """A cursor for the page after position `after`, valid only for `scope`."""
        key = self._key()  # once per use: a lazy secret is read from its cache once
        document = {"v": _VERSION, "r": scope.route, "s": self._digest(key, scope), "a": after}
        payload = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        return f"{_b64(payload)}.{_b64(self._sign(key, payload))}"

    def decode(self, cursor: str, scope: CursorScope) -> str:
        """The position the page starts after; InvalidCursor for anything not issued for `scope`."""
        key = self._key()
        data = self._verified(key, cursor)
        if data.get("v") != _VERSION:
            raise _refused("was issued by an earlier version of the API: start again without it")
        if data.get("r") != scope.route:
            raise _refused("was issued for another route")
        if not hmac.compare_digest(str(data.get("s", "")).encode(), self._digest(key, scope).encode()):
            raise _refused("was issued for another query or another caller: start again without it")
        after = data.get("a")
        if not isinstance(after, str) or not after:
            raise _refused(_FORGED)
        return after

    def _verified(self, key: bytes, cursor: str) -> dict[str, Any]:
        """The signed payload of a cursor this API issued (any version), or InvalidCursor."""
        if len(cursor) > MAX_CURSOR_LEN or not _CURSOR_RE.fullmatch(cursor):
            raise _refused(_FORGED)
        encoded_payload, encoded_sig = cursor.split(".")
        try:
            payload, signature = _unb64(encoded_payload), _unb64(encoded_sig)
        except (ValueError, TypeError) as exc:
            raise _refused(_FORGED) from exc
        if _b64(signature) != encoded_sig or not hmac.compare_digest(signature, self._sign(key, payload)):
            raise _refused(_FORGED)
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise _refused(_FORGED) from exc
        if not isinstance(data, dict):
            raise _refused(_FORGED)
        return data


_FORGED = "is not a cursor this API issued (or was signed with a key since rotated): start again without it"


def _refused(why: str) -> InvalidCursor:
    return InvalidCursor(details=[{"field": "cursor", "message": why}])


@dataclass(frozen=True)
class CursorScope:
    """What a cursor is valid for: the route, the caller's sub, and the query (its fingerprint)."""

    route: str
    caller: str
    query: str
