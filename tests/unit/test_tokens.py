from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from chalicelib.domain.errors import Unauthorized
from chalicelib.web.tokens import (
    EMULATOR_KEY_MODULUS,
    JWKS_TTL_S,
    LEEWAY_S,
    MAX_JWKS_BYTES,
    MAX_TOKEN_BYTES,
    REFETCH_INTERVAL_S,
    TokenVerifier,
    bearer_token,
    url_fetcher,
)
from tests.support import emulator
from tests.support.doubles import FakeUrlopen
from tests.support.tokens import CLIENT_ID, ISSUER, KID, claims, jwks, private_key, sign, token
from tests.unit.fakes import FakeClock

OTHER_KEY = "other-key"  # a second test key; tests.support.tokens caches at most 4 keys


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def public_pem() -> bytes:
    return (
        private_key(KID)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


class CountingFetcher:
    def __init__(self, document: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.document = document if document is not None else jwks()
        self.error = error
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.document


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(10_000.0)


@pytest.fixture
def verifier(clock) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, client_id=CLIENT_ID, fetch_jwks=lambda: jwks(), clock=clock)


def rejected(verifier: TokenVerifier, header: str | None) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        verifier.verify(header)
    return info.value


# --- accepted tokens ---


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "BEARER ", ""])
def test_valid_token_accepted(verifier, prefix):
    raw = token(sub="user-1", email="ann@example.com", groups=["admins"])
    got = verifier.verify(prefix + raw)
    assert got["sub"] == "user-1"
    assert got["email"] == "ann@example.com"
    assert got["cognito:groups"] == ["admins"]
    assert got["token_use"] == "id"


def test_surrounding_whitespace_tolerated(verifier):
    assert verifier.verify("  Bearer   " + token(sub="u") + "  ")["sub"] == "u"


def test_keys_are_fetched_once_for_many_tokens(clock):
    fetcher = CountingFetcher()
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=fetcher, clock=clock)
    for _ in range(5):
        verifier.verify(token())
    assert fetcher.calls == 1
    assert verifier.fetch_count == 1


# --- bearer_token ---


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer ", "Bearer    "])
def test_missing_token(header):
    with pytest.raises(Unauthorized) as info:
        bearer_token(header)
    assert info.value.message in {"Missing authorization token", "Malformed authorization token"}


def test_bearer_token_strips_prefix():
    assert bearer_token("Bearer a.b.c") == "a.b.c"
    assert bearer_token("a.b.c") == "a.b.c"


# --- refused tokens ---


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_unauthorized(verifier, header):
    assert rejected(verifier, header).message == "Missing authorization token"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer abc",
        "Bearer a.b",
        "Bearer a.b.c.d",
        "garbage",
        "Basic dXNlcjpwYXNz",
        "Bearer ...",
        "Bearer a.b.c",
        "Bearer !!!.???.***",
        "Bearer " + segment({"alg": "RS256", "kid": KID}),
        "Bearer " + b64url(b"\xff\xfe") + ".e30.sig",
        "Bearer " + b64url(b"[1,2]") + ".e30.sig",
    ],
)
def test_malformed_unauthorized(verifier, header):
    rejected(verifier, header)


def test_token_with_other_prefix_unauthorized(verifier):
    rejected(verifier, "Token " + token())


def test_alg_none_unauthorized(verifier):
    payload = segment(claims(sub="intruder", groups=["admins"]))
    for header in ({"alg": "none", "kid": KID}, {"alg": "none"}, {"alg": "None", "typ": "JWT", "kid": KID}):
        rejected(verifier, f"Bearer {segment(header)}.{payload}.")


def test_hs256_signed_with_public_key_pem_unauthorized(verifier):
    header = segment({"alg": "HS256", "typ": "JWT", "kid": KID})
    payload = segment(claims(sub="intruder", groups=["admins"]))
    signing_input = f"{header}.{payload}".encode()
    signature = b64url(hmac.new(public_pem(), signing_input, hashlib.sha256).digest())
    rejected(verifier, f"Bearer {header}.{payload}.{signature}")


def test_rs256_header_with_hmac_signature_unauthorized(verifier):
    # Same attack with the header claiming RS256: the RSA check must fail.
    header = segment({"alg": "RS256", "typ": "JWT", "kid": KID})
    payload = segment(claims(sub="intruder"))
    signature = b64url(hmac.new(public_pem(), f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert rejected(verifier, f"Bearer {header}.{payload}.{signature}").message == "Invalid token"


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256", "ES256", "HS256"])
def test_other_algorithms_unauthorized(verifier, alg):
    header = segment({"alg": alg, "typ": "JWT", "kid": KID})
    rejected(verifier, f"Bearer {header}.{segment(claims())}.{b64url(b'sig')}")


def test_unknown_kid_unauthorized(verifier):
    assert rejected(verifier, "Bearer " + sign(claims(), headers={"kid": "unknown-kid"})).message == "Invalid token"


def test_missing_kid_unauthorized(verifier):
    raw = jwt.encode(claims(), private_key(KID), algorithm="RS256")
    assert "kid" not in jwt.get_unverified_header(raw)
    rejected(verifier, "Bearer " + raw)


@pytest.mark.parametrize("kid", ["", 123, None, ["test-key-1"]])
def test_bad_kid_values_unauthorized(verifier, kid):
    header = segment({"alg": "RS256", "typ": "JWT", "kid": kid})
    rejected(verifier, f"Bearer {header}.{segment(claims())}.{b64url(b'sig')}")


def test_tampered_payload_with_original_signature_unauthorized(verifier):
    original = token(sub="user-1")
    assert verifier.verify(original)["sub"] == "user-1"
    header, _, signature = original.split(".")
    forged = segment(claims(sub="user-1", groups=["admins"]))
    assert rejected(verifier, f"Bearer {header}.{forged}.{signature}").message == "Invalid token"


def test_empty_signature_unauthorized(verifier):
    header, payload, _ = token().split(".")
    rejected(verifier, f"Bearer {header}.{payload}.")


def test_wrong_issuer_unauthorized(verifier):
    rejected(verifier, "Bearer " + token(iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"))
    rejected(verifier, "Bearer " + token(iss=ISSUER + "/"))


def test_wrong_audience_unauthorized(verifier):
    rejected(verifier, "Bearer " + token(aud="another-client"))


def test_expired_unauthorized(verifier):
    now = int(time.time())
    err = rejected(verifier, "Bearer " + token(iat=now - 7200, exp=now - LEEWAY_S - 90))
    assert err.message == "Token expired"


def test_expired_within_leeway_accepted(verifier):
    now = int(time.time())
    assert verifier.verify(token(sub="u", iat=now - 3600, exp=now - 5))["sub"] == "u"


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_issued_in_the_future_beyond_leeway_unauthorized(verifier, claim):
    overrides: dict[str, Any] = {claim: int(time.time()) + LEEWAY_S + 90}
    rejected(verifier, "Bearer " + token(**overrides))


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_issued_in_the_future_within_leeway_accepted(verifier, claim):
    overrides: dict[str, Any] = {claim: int(time.time()) + 10}
    assert verifier.verify(token(sub="u", **overrides))["sub"] == "u"


def test_access_token_unauthorized(verifier):
    assert rejected(verifier, "Bearer " + token(token_use="access")).message == "An ID token is required"


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "token_use"])
def test_missing_required_claim_unauthorized(verifier, missing):
    overrides: dict[str, Any] = {missing: None}  # tests.support.tokens.claims drops None values
    rejected(verifier, "Bearer " + token(**overrides))


def test_missing_sub_unauthorized(verifier):
    payload = {k: v for k, v in claims().items() if k != "sub"}
    rejected(verifier, "Bearer " + sign(payload))


def test_signed_by_another_key_with_same_kid_unauthorized(verifier):
    forged = sign(claims(sub="intruder"), kid=OTHER_KEY, headers={"kid": KID})
    assert jwt.get_unverified_header(forged)["kid"] == KID
    assert rejected(verifier, "Bearer " + forged).message == "Invalid token"


def test_over_long_token_unauthorized(verifier):
    raw = token(padding="x" * MAX_TOKEN_BYTES)  # correctly signed, just too big
    assert len(raw) > MAX_TOKEN_BYTES
    assert rejected(verifier, "Bearer " + raw).message == "Malformed authorization token"
    rejected(verifier, "Bearer " + "a" * MAX_TOKEN_BYTES + ".b.c")


# --- JWKS fetching ---


def test_flood_of_unknown_kids_refetches_at_most_once_per_interval(clock):
    fetcher = CountingFetcher()
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=fetcher, clock=clock)
    verifier.verify(token())
    assert fetcher.calls == 1

    # Right after a fetch, unknown kids do not refetch at all.
    for _ in range(10):
        rejected(verifier, sign(claims(), headers={"kid": secrets.token_hex(8)}))
    assert fetcher.calls == 1

    clock.advance(REFETCH_INTERVAL_S)
    step = (REFETCH_INTERVAL_S - 1) / 50
    for _ in range(50):
        rejected(verifier, sign(claims(), headers={"kid": secrets.token_hex(8)}))
        clock.advance(step)
    assert fetcher.calls == 2
    assert verifier.fetch_count == 2

    verifier.verify(token())  # known keys are still served from the cache
    assert fetcher.calls == 2

    clock.advance(REFETCH_INTERVAL_S)
    rejected(verifier, sign(claims(), headers={"kid": secrets.token_hex(8)}))
    assert fetcher.calls == 3


def test_rotated_key_is_picked_up_after_the_refetch_interval(clock):
    fetcher = CountingFetcher(jwks(KID))
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=fetcher, clock=clock)
    verifier.verify(token())
    fetcher.document = jwks(KID, OTHER_KEY)
    rotated = sign(claims(sub="rotated"), kid=OTHER_KEY)
    rejected(verifier, rotated)  # within the interval: no refetch yet
    assert fetcher.calls == 1
    clock.advance(REFETCH_INTERVAL_S)
    assert verifier.verify(rotated)["sub"] == "rotated"
    assert fetcher.calls == 2
    assert verifier.verify(token(sub="old"))["sub"] == "old"


def test_keys_expire_after_the_jwks_ttl(clock):
    fetcher = CountingFetcher()
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=fetcher, clock=clock)
    verifier.verify(token())
    clock.advance(JWKS_TTL_S - 1)
    verifier.verify(token())
    assert fetcher.calls == 1
    clock.advance(1)
    verifier.verify(token())
    assert fetcher.calls == 2


def test_fetcher_that_raises_gives_unauthorized(clock):
    fetcher = CountingFetcher(error=OSError("connection refused"))
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=fetcher, clock=clock)
    assert rejected(verifier, "Bearer " + token()).message == "Invalid token"
    assert fetcher.calls == 1


def test_failing_refetch_keeps_the_cached_keys(clock):
    fetcher = CountingFetcher()
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=fetcher, clock=clock)
    verifier.verify(token())
    fetcher.error = OSError("down")
    clock.advance(REFETCH_INTERVAL_S)
    for _ in range(20):
        rejected(verifier, sign(claims(), headers={"kid": secrets.token_hex(8)}))
    assert fetcher.calls == 2
    assert verifier.verify(token(sub="still-ok"))["sub"] == "still-ok"


def test_failing_jwks_fetch_is_rate_limited_too(clock):
    # A failed fetch still counts against the refetch interval, so while the JWKS endpoint is
    # down requests do not each make their own JWKS request.
    fetcher = CountingFetcher(error=OSError("connection refused"))
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=fetcher, clock=clock)
    for _ in range(50):
        rejected(verifier, sign(claims(), headers={"kid": secrets.token_hex(8)}))
    assert fetcher.calls <= 2  # the first fetch, and at most one refetch per interval


@pytest.mark.parametrize("document", [{}, {"keys": []}, {"keys": [{"kty": "EC", "kid": KID}]}, {"keys": ["x", 1]}])
def test_jwks_without_a_usable_key_gives_unauthorized(clock, document):
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=lambda: document, clock=clock)
    rejected(verifier, "Bearer " + token())


def test_unusable_rsa_key_is_skipped(clock):
    good = jwks(KID)["keys"]
    document = {"keys": [{"kty": "RSA", "kid": "broken", "n": 5, "e": "AQAB"}, *good]}
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=lambda: document, clock=clock)
    assert verifier.verify(token(sub="u"))["sub"] == "u"
    rejected(verifier, sign(claims(), headers={"kid": "broken"}))


@pytest.mark.parametrize("keys", [None, 5, "abc"])
def test_malformed_jwks_document_gives_unauthorized(clock, keys):
    # A JWKS body such as {"keys": null} must give Unauthorized, not an error out of verify() (a 500).
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=lambda: {"keys": keys}, clock=clock)
    rejected(verifier, "Bearer " + token())


def test_pyjwt_itself_refuses_iat_in_the_future():
    # TokenVerifier relies on this (PyJWT >= 2.x raises ImmatureSignatureError for iat > now + leeway);
    # if an upgrade drops it, this fails and tokens.py must check iat itself.
    future = claims(iat=int(time.time()) + LEEWAY_S + 90)
    with pytest.raises(jwt.ImmatureSignatureError):
        jwt.decode(
            sign(future), private_key(KID).public_key(), algorithms=["RS256"], audience=CLIENT_ID, leeway=LEEWAY_S
        )


# --- the emulator's published key ---


def test_the_emulator_modulus_is_the_one_moto_publishes():
    assert [key["n"] for key in emulator.public_jwks()["keys"]] == [EMULATOR_KEY_MODULUS]


def emulator_jwks() -> dict[str, Any]:
    return {"keys": [*emulator.public_jwks()["keys"], *jwks()["keys"]]}


def test_emulator_signed_tokens_are_refused_by_default(clock):
    fetcher = CountingFetcher(emulator_jwks())
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=fetcher, clock=clock)
    forged = emulator.sign(claims(sub="intruder", groups=["admins"]))
    assert rejected(verifier, "Bearer " + forged).message == "Invalid token"
    assert verifier.verify(token(sub="real"))["sub"] == "real"  # the pool's own key still works


def test_emulator_signed_tokens_are_accepted_where_trusted(clock):
    verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=emulator_jwks, clock=clock, trust_emulator_keys=True)
    assert verifier.verify(emulator.sign(claims(sub="dev")))["sub"] == "dev"


@pytest.mark.parametrize("kid", ["dummy", KID + "-renamed", "prod-looking-kid"])
def test_the_emulator_key_is_recognised_by_its_modulus_not_its_kid(clock, kid):
    published = emulator.public_jwks()["keys"][0]
    # Same key under another kid, and with a leading zero byte in `n` (the same number).
    padded = b64url(b"\x00" + base64.urlsafe_b64decode(published["n"] + "=="))
    for n in (published["n"], padded):
        fetcher = CountingFetcher({"keys": [{**published, "kid": kid, "n": n}]})
        verifier = TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=fetcher, clock=clock)
        rejected(verifier, "Bearer " + emulator.sign(claims(), kid=kid))
        trusting = TokenVerifier(ISSUER, CLIENT_ID, fetcher, clock=clock, trust_emulator_keys=True)
        assert trusting.verify(emulator.sign(claims(sub="dev"), kid=kid))["sub"] == "dev"


def test_tokens_module_does_not_import_moto():
    code = "import sys, chalicelib.web.tokens; assert 'moto' not in sys.modules and 'jwt' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- url_fetcher ---


URL = "https://keys.example/jwks.json"


def test_url_fetcher_reads_only_its_url_with_a_timeout(monkeypatch):
    endpoint = FakeUrlopen({URL: jwks()}).install(monkeypatch)
    assert url_fetcher(URL, timeout_s=2.0)() == jwks()
    assert (endpoint.urls, endpoint.timeouts) == ([URL], [2.0])


@pytest.mark.parametrize(
    "body",
    [b"[]", b"null", b"<html>", b"{", b'{"keys": []}' + b" " * MAX_JWKS_BYTES],
    ids=["list", "null", "html", "truncated", "oversized"],
)
def test_url_fetcher_refuses_what_is_not_a_small_json_object(monkeypatch, body):
    FakeUrlopen({URL: body}).install(monkeypatch)
    with pytest.raises((ValueError, TypeError)):
        url_fetcher(URL)()
