from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.cursor import MAX_CURSOR_LEN, CursorCodec, CursorScope
from chalicelib.domain.errors import InvalidCursor, ValidationError
from chalicelib.domain.search import NAME_KEY_MAX_BYTES, UserQuery

SECRET = b"0123456789abcdef-cursor-secret"
SCOPE = CursorScope(route="users", caller="admin-sub", query=UserQuery().fingerprint())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def digest(scope: CursorScope, secret: bytes = SECRET) -> str:
    material = "\x1f".join(("scope", scope.caller, scope.query)).encode()
    return b64(hmac.new(secret, material, hashlib.sha256).digest()[:12])


def forge(payload: object, secret: bytes = SECRET) -> str:
    """A cursor signed exactly as the codec signs, for payloads the codec would never issue."""
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    signature = hmac.new(secret, raw, hashlib.sha256).digest()[:16]
    return f"{b64(raw)}.{b64(signature)}"


def issued(after: str, scope: CursorScope = SCOPE) -> dict[str, object]:
    return {"v": 2, "r": scope.route, "s": digest(scope), "a": after}


def message(exc: pytest.ExceptionInfo[InvalidCursor]) -> str:
    (detail,) = exc.value.details
    assert detail["field"] == "cursor"
    return str(detail["message"])


@pytest.fixture
def codec() -> CursorCodec:
    return CursorCodec(SECRET)


@pytest.mark.parametrize(
    "position",
    ["u1", "2026-01-01T00:00:00.000Z#9b9942fc-43c6-49a9-b1a1-02a37590be06", "straße\x1fu1", "ada@example.com"],
)
def test_round_trip(codec: CursorCodec, position: str) -> None:
    cursor = codec.encode(position, SCOPE)
    assert codec.decode(cursor, SCOPE) == position
    assert cursor.count(".") == 1


def test_forge_helper_matches_codec(codec: CursorCodec) -> None:
    assert forge(issued("u1")) == codec.encode("u1", SCOPE)


def test_cursor_is_stable_and_url_safe(codec: CursorCodec) -> None:
    cursor = codec.encode("user-1", SCOPE)
    assert cursor == codec.encode("user-1", SCOPE)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_invalid_cursor_is_a_validation_error_naming_the_parameter(codec: CursorCodec) -> None:
    assert issubclass(InvalidCursor, ValidationError)
    with pytest.raises(InvalidCursor) as exc:
        codec.decode("A.A", SCOPE)
    assert "not a cursor this API issued" in message(exc)


# --- bound to a route, a caller and a query (issue 20, item 8) -----------------------------------


def test_a_cursor_of_another_route_is_refused(codec: CursorCodec) -> None:
    history = CursorScope(route="history", caller="admin-sub", query="user-1")
    cursor = codec.encode("2026-01-01T00:00:00.000Z#0000000000000000000000000000000000000001", history)
    with pytest.raises(InvalidCursor) as exc:
        codec.decode(cursor, SCOPE)
    assert message(exc) == "was issued for another route"
    with pytest.raises(InvalidCursor) as exc:
        codec.decode(codec.encode("u1", SCOPE), history)
    assert message(exc) == "was issued for another route"


@pytest.mark.parametrize(
    "other",
    [
        CursorScope(route="users", caller="another-admin", query=SCOPE.query),
        CursorScope(route="users", caller="admin-sub", query=UserQuery(role="admin").fingerprint()),
        CursorScope(route="users", caller="admin-sub", query=UserQuery(sort="name").fingerprint()),
        CursorScope(route="users", caller="admin-sub", query=UserQuery(enabled=True).fingerprint()),
        CursorScope(route="users", caller="admin-sub", query=UserQuery(q="ad").fingerprint()),
    ],
)
def test_a_cursor_of_another_caller_or_query_is_refused(codec: CursorCodec, other: CursorScope) -> None:
    with pytest.raises(InvalidCursor) as exc:
        codec.decode(codec.encode("u1", SCOPE), other)
    assert message(exc).startswith("was issued for another query or another caller")


def test_the_same_query_spelled_in_another_case_keeps_its_cursor(codec: CursorCodec) -> None:
    spelled = CursorScope("users", "admin-sub", UserQuery(q="Straße").fingerprint())
    folded = CursorScope("users", "admin-sub", UserQuery(q="STRASSE").fingerprint())
    assert codec.decode(codec.encode("strasse\x1fu1", spelled), folded) == "strasse\x1fu1"


@given(
    a=st.tuples(st.sampled_from(["users", "history"]), st.text(max_size=8), st.text(max_size=8)),
    b=st.tuples(st.sampled_from(["users", "history"]), st.text(max_size=8), st.text(max_size=8)),
)
def test_a_cursor_is_accepted_exactly_in_the_scope_it_was_issued_for(
    a: tuple[str, str, str], b: tuple[str, str, str]
) -> None:
    codec = CursorCodec(SECRET)
    cursor = codec.encode("pos", CursorScope(*a))
    if CursorScope(*a) == CursorScope(*b):
        assert codec.decode(cursor, CursorScope(*b)) == "pos"
    else:
        with pytest.raises(InvalidCursor):
            codec.decode(cursor, CursorScope(*b))


def test_the_scope_digest_does_not_reveal_the_caller_without_the_key() -> None:
    """Keyed: anyone may read a cursor's payload, but cannot test guesses of whose it is."""
    cursor = CursorCodec(SECRET).encode("u1", SCOPE)
    payload = json.loads(base64.urlsafe_b64decode(cursor.split(".")[0] + "=="))
    assert SCOPE.caller not in json.dumps(payload)
    assert payload["s"] != digest(SCOPE, b"some-other-key-of-enough-bytes")


def test_cursors_of_the_previous_release_are_refused(codec: CursorCodec) -> None:
    """Version 1 cursors were signed the same way but bound to nothing: they get 400 and the client
    starts again (they would expire at the next key rotation anyway)."""
    with pytest.raises(InvalidCursor) as exc:
        codec.decode(forge({"v": 1, "after": "u1"}), SCOPE)
    assert "earlier version" in message(exc)


# --- tampering ---------------------------------------------------------------------------------------


def test_tampered_payload_rejected(codec: CursorCodec) -> None:
    cursor = codec.encode("user-1", SCOPE)
    _, signature = cursor.split(".")
    other_payload = b64(json.dumps(issued("user-9"), separators=(",", ":")).encode())
    with pytest.raises(InvalidCursor):
        codec.decode(f"{other_payload}.{signature}", SCOPE)


def test_tampered_signature_rejected(codec: CursorCodec) -> None:
    cursor = codec.encode("user-1", SCOPE)
    payload, signature = cursor.split(".")
    # Change the first character: the last one may carry only padding bits.
    flipped = ("B" if signature[0] != "B" else "C") + signature[1:]
    with pytest.raises(InvalidCursor):
        codec.decode(f"{payload}.{flipped}", SCOPE)


def test_truncated_signature_rejected(codec: CursorCodec) -> None:
    payload, signature = codec.encode("user-1", SCOPE).split(".")
    with pytest.raises(InvalidCursor):
        codec.decode(f"{payload}.{signature[:-4]}", SCOPE)


def test_other_secret_rejected(codec: CursorCodec) -> None:
    cursor = CursorCodec(b"another-secret-of-enough-bytes").encode("user-1", SCOPE)
    with pytest.raises(InvalidCursor):
        codec.decode(cursor, SCOPE)


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
    ],
)
def test_garbage_rejected(codec: CursorCodec, garbage: str) -> None:
    with pytest.raises(InvalidCursor):
        codec.decode(garbage, SCOPE)


def test_the_longest_position_fits_and_anything_longer_is_refused(codec: CursorCodec) -> None:
    """A position is at most a name key (NAME_KEY_MAX_BYTES of UTF-8) and a user id: its cursor fits."""
    longest = "\U0001d160" * (NAME_KEY_MAX_BYTES // 4) + "\x1f" + "f" * 64
    cursor = codec.encode(longest, SCOPE)
    assert len(cursor) <= MAX_CURSOR_LEN
    assert codec.decode(cursor, SCOPE) == longest
    too_long = forge(issued("u" * MAX_CURSOR_LEN))
    with pytest.raises(InvalidCursor):
        codec.decode(too_long, SCOPE)


@pytest.mark.parametrize("version", [0, 3, "2", None, 2.5])
def test_wrong_version_rejected(codec: CursorCodec, version: object) -> None:
    with pytest.raises(InvalidCursor):
        codec.decode(forge({**issued("u1"), "v": version}), SCOPE)


@pytest.mark.parametrize(
    "payload",
    [
        {"v": 2, "r": "users", "s": digest(SCOPE)},
        {"v": 2, "r": "users", "s": digest(SCOPE), "a": ""},
        {"v": 2, "r": "users", "s": digest(SCOPE), "a": 5},
        {"v": 2, "r": "users", "a": "u1"},
        [1, "u1"],
        "u1",
        1,
    ],
)
def test_signed_but_malformed_payload_rejected(codec: CursorCodec, payload: object) -> None:
    with pytest.raises(InvalidCursor):
        codec.decode(forge(payload), SCOPE)


def test_signed_non_json_payload_rejected(codec: CursorCodec) -> None:
    raw = b"\xff\xfenot json"
    signature = hmac.new(SECRET, raw, hashlib.sha256).digest()[:16]
    with pytest.raises(InvalidCursor):
        codec.decode(f"{b64(raw)}.{b64(signature)}", SCOPE)


@pytest.mark.parametrize("secret", [b"", b"short", b"x" * 15])
def test_short_secret_rejected(secret: bytes) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        CursorCodec(secret)


def test_sixteen_byte_secret_accepted() -> None:
    codec = CursorCodec(b"x" * 16)
    assert codec.decode(codec.encode("u1", SCOPE), SCOPE) == "u1"
