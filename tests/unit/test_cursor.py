from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.errors import InvalidCursor, ValidationError

SECRET = b"0123456789abcdef-cursor-secret"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(payload: object, secret: bytes = SECRET) -> str:
    """A cursor signed exactly as the codec signs, for payloads the codec would never issue."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    signature = hmac.new(secret, raw, hashlib.sha256).digest()[:16]
    return f"{b64(raw)}.{b64(signature)}"


@pytest.fixture
def codec() -> CursorCodec:
    return CursorCodec(SECRET)


@pytest.mark.parametrize("user_id", ["u1", "9b9942fc-43c6-49a9-b1a1-02a37590be06", "a" * 64, "x-y-z"])
def test_round_trip(codec, user_id):
    cursor = codec.encode(user_id)
    assert codec.decode(cursor) == user_id
    assert cursor.count(".") == 1


def test_forge_helper_matches_codec(codec):
    assert forge({"v": 1, "after": "u1"}) == codec.encode("u1")
    assert codec.decode(forge({"v": 1, "after": "u1"})) == "u1"


def test_cursor_is_stable_and_url_safe(codec):
    cursor = codec.encode("user-1")
    assert cursor == codec.encode("user-1")
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_invalid_cursor_is_a_validation_error():
    assert issubclass(InvalidCursor, ValidationError)


def test_tampered_payload_rejected(codec):
    cursor = codec.encode("user-1")
    _, signature = cursor.split(".")
    other_payload = b64(json.dumps({"v": 1, "after": "user-9"}, separators=(",", ":")).encode())
    with pytest.raises(InvalidCursor):
        codec.decode(f"{other_payload}.{signature}")


def test_tampered_signature_rejected(codec):
    cursor = codec.encode("user-1")
    payload, signature = cursor.split(".")
    # Change the first character: the last one may carry only padding bits.
    flipped = ("B" if signature[0] != "B" else "C") + signature[1:]
    with pytest.raises(InvalidCursor):
        codec.decode(f"{payload}.{flipped}")


def test_truncated_signature_rejected(codec):
    payload, signature = codec.encode("user-1").split(".")
    with pytest.raises(InvalidCursor):
        codec.decode(f"{payload}.{signature[:-4]}")


def test_other_secret_rejected(codec):
    cursor = CursorCodec(b"another-secret-of-enough-bytes").encode("user-1")
    with pytest.raises(InvalidCursor):
        codec.decode(cursor)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "..",
        "abc",
        "abc.def.ghi",
        "not a cursor",
        "!!!.???",
        "a.b",
        "\u00e9\u00e9.\u00e9\u00e9",
        "Zm9v.",
        ".Zm9v",
        "A.A",
    ],
)
def test_garbage_rejected(codec, garbage):
    with pytest.raises(InvalidCursor):
        codec.decode(garbage)


def test_empty_string_rejected(codec):
    with pytest.raises(InvalidCursor):
        codec.decode("")


def test_too_long_rejected_even_if_signed(codec):
    cursor = forge({"v": 1, "after": "u" * 600})
    assert len(cursor) > 512
    with pytest.raises(InvalidCursor):
        codec.decode(cursor)
    with pytest.raises(InvalidCursor):
        codec.decode("A" * 300 + "." + "A" * 300)


@pytest.mark.parametrize("version", [0, 2, "1", None, 1.5])
def test_wrong_version_rejected(codec, version):
    with pytest.raises(InvalidCursor):
        codec.decode(forge({"v": version, "after": "u1"}))


def test_missing_version_rejected(codec):
    with pytest.raises(InvalidCursor):
        codec.decode(forge({"after": "u1"}))


@pytest.mark.parametrize("payload", [{"v": 1}, {"v": 1, "after": ""}, {"v": 1, "after": 5}, [1, "u1"], "u1", 1])
def test_signed_but_malformed_payload_rejected(codec, payload):
    with pytest.raises(InvalidCursor):
        codec.decode(forge(payload))


def test_signed_non_json_payload_rejected(codec):
    raw = b"\xff\xfenot json"
    signature = hmac.new(SECRET, raw, hashlib.sha256).digest()[:16]
    with pytest.raises(InvalidCursor):
        codec.decode(f"{b64(raw)}.{b64(signature)}")


@pytest.mark.parametrize("secret", [b"", b"short", b"x" * 15])
def test_short_secret_rejected(secret):
    with pytest.raises(ValueError, match="at least 16 bytes"):
        CursorCodec(secret)


def test_sixteen_byte_secret_accepted():
    codec = CursorCodec(b"x" * 16)
    assert codec.decode(codec.encode("u1")) == "u1"
