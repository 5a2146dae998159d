"""Reading presigned S3 POST forms and GET URLs the way S3 does, to assert what they allow."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit


def post_policy(fields: dict[str, str]) -> dict[str, Any]:
    """The decoded `policy` field: {"expiration": ..., "conditions": [...]}."""
    return dict(json.loads(base64.b64decode(fields["policy"])))


def policy_expiry(policy: dict[str, Any]) -> datetime:
    return datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def exact_conditions(policy: dict[str, Any]) -> dict[str, Any]:
    """The {"field": value} conditions (exact matches), by field name."""
    return {key: value for c in policy["conditions"] if isinstance(c, dict) for key, value in c.items()}


def list_conditions(policy: dict[str, Any]) -> dict[str, list[Any]]:
    """The ["operator", ...] conditions (content-length-range, starts-with, eq), by operator."""
    return {c[0]: c[1:] for c in policy["conditions"] if isinstance(c, list)}


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def tiny_png() -> bytes:
    """A valid 1x1 PNG (one red pixel)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
