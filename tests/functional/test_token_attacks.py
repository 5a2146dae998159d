"""Forged, stale, misdirected and malformed tokens, through the app's own verification.

Every attack is sent to every protected route (read from the app, so new routes are covered) and
must get 401 with a JSON error and WWW-Authenticate, without the request reaching the service or
DynamoDB.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib import bootstrap
from chalicelib.domain.errors import Unauthorized
from chalicelib.web.tokens import LEEWAY_S, MAX_TOKEN_BYTES, REFETCH_INTERVAL_S, TokenVerifier, url_fetcher
from tests.functional.conftest import Api
from tests.support import emulator, routes, tokens
from tests.support.counting import counting
from tests.support.doubles import FakeUrlopen, SpyService
from tests.unit.fakes import FakeClock

OTHER_POOL_ISSUER = f"https://cognito-idp.{tokens.REGION}.amazonaws.com/{tokens.REGION}_OtherPool"
JWKS_URL = f"{tokens.ISSUER}/.well-known/jwks.json"
EVIL = "https://evil.example"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


@lru_cache(maxsize=1)
def other_pool_key() -> rsa.RSAPrivateKey:
    # Not tests.support.tokens.private_key: its small cache is shared by every test module.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def admin_claims(**overrides: Any) -> dict[str, Any]:
    return tokens.claims(groups=["admins"], **overrides)


def unsigned(header: dict[str, Any]) -> str:
    return f"{segment(header)}.{segment(admin_claims())}."


def key_confusion() -> str:
    # HS256 with the RSA public key's PEM as the HMAC secret: a verifier that lets the token pick
    # the algorithm would check it with the (public) key it holds for the kid. PyJWT refuses to
    # sign this, so it is built by hand.
    pem = (
        tokens.private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': tokens.KID})}.{segment(admin_claims())}"
    return f"{signing_input}.{b64url(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def tampered() -> str:
    header, _, signature = tokens.token(sub="member-1").split(".")
    return f"{header}.{segment(admin_claims(sub='member-1'))}.{signature}"


def other_pool(**claims: Any) -> str:
    payload = admin_claims(**claims)
    return jwt.encode(payload, other_pool_key(), algorithm="RS256", headers={"kid": tokens.KID})


def access_token() -> str:
    # Cognito access tokens carry client_id instead of aud, and token_use "access".
    return tokens.sign(admin_claims(token_use="access", aud=None, client_id=tokens.CLIENT_ID, scope="openid"))


def non_base64_header() -> str:
    _, payload, signature = tokens.admin_token().split(".")
    return f"%%%not*base64%%%.{payload}.{signature}"


def now() -> int:
    return int(time.time())


# Each returns the whole Authorization header value (None: no header at all).
ATTACKS: dict[str, Callable[[], str | None]] = {
    "alg-none-with-kid": lambda: "Bearer " + unsigned({"alg": "none", "typ": "JWT", "kid": tokens.KID}),
    "alg-none-without-kid": lambda: "Bearer " + unsigned({"alg": "none", "typ": "JWT"}),
    "alg-None-capitalised": lambda: "Bearer " + unsigned({"alg": "None", "kid": tokens.KID}),
    "hs256-public-key-as-secret": lambda: "Bearer " + key_confusion(),
    "unknown-kid": lambda: "Bearer " + tokens.sign(admin_claims(), headers={"kid": "unknown-" + secrets.token_hex(4)}),
    "missing-kid": lambda: "Bearer " + jwt.encode(admin_claims(), tokens.private_key(), algorithm="RS256"),
    "tampered-payload": lambda: "Bearer " + tampered(),
    "wrong-iss": lambda: "Bearer " + tokens.sign(admin_claims(iss=OTHER_POOL_ISSUER)),
    "wrong-aud": lambda: "Bearer " + tokens.sign(admin_claims(aud="another-client")),
    "expired": lambda: "Bearer " + tokens.sign(admin_claims(iat=now() - 7200, exp=now() - LEEWAY_S - 60)),
    "nbf-in-the-future": lambda: "Bearer " + tokens.sign(admin_claims(nbf=now() + LEEWAY_S + 60)),
    "iat-in-the-future": lambda: "Bearer " + tokens.sign(admin_claims(iat=now() + LEEWAY_S + 60)),
    "access-token": lambda: "Bearer " + access_token(),
    "other-pool": lambda: "Bearer " + other_pool(iss=OTHER_POOL_ISSUER, aud="other-client"),
    "other-key-our-claims": lambda: "Bearer " + other_pool(),
    "no-header": lambda: None,
    "bearer-only": lambda: "Bearer",
    "two-segments": lambda: "Bearer a.b",
    "garbage": lambda: "garbage",
    "non-base64-header": lambda: "Bearer " + non_base64_header(),
    "9kb-token": lambda: "Bearer " + tokens.sign(admin_claims(padding="x" * 9 * 1024)),
    "basic-auth": lambda: "Basic xyz",
    "basic-auth-with-a-valid-token": lambda: "Basic " + tokens.admin_token(),
}


def send(api: Api, path: str, method: str, authorization: str | None) -> Any:
    headers = {} if authorization is None else {"Authorization": authorization}
    body = {"name": "Mallory", "email": "mallory@example.com"} if method in {"POST", "PUT", "PATCH"} else None
    return api.request(method, routes.concrete(path, str(uuid.uuid4())), body=body, headers=headers)


def assert_refused(response: Any) -> None:
    assert response.status_code == 401, response.body
    assert response.headers["Content-Type"] == "application/json"
    body = response.json_body
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


@pytest.fixture
def spy() -> SpyService:
    spy = SpyService()
    bootstrap.override(service=spy.as_service())
    return spy


def test_there_are_protected_routes_to_attack() -> None:
    assert {("/users", "POST"), ("/users/me", "GET")} <= set(routes.declared(protected=True))


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_gets_401_on_every_protected_route_and_reaches_nothing(
    api: Api, ddb: Any, spy: SpyService, attack: str
) -> None:
    authorization = ATTACKS[attack]()
    with counting(ddb) as calls:
        for path, method in routes.declared(protected=True):
            assert_refused(send(api, path, method, authorization))
    assert spy.calls == []
    assert calls.total == 0


def test_the_attack_tokens_are_well_formed_where_they_should_be() -> None:
    # Guards the cases above against passing for the wrong reason (say, a token PyJWT cannot parse).
    assert len(ATTACKS["9kb-token"]() or "") > MAX_TOKEN_BYTES + 1024
    for name in ("unknown-kid", "wrong-iss", "wrong-aud", "expired", "access-token", "other-pool", "tampered-payload"):
        header = ATTACKS[name]()
        assert header is not None
        jwt.decode(header.removeprefix("Bearer "), options={"verify_signature": False})
    assert jwt.decode(tampered(), options={"verify_signature": False})["cognito:groups"] == ["admins"]


def test_the_same_requests_with_a_good_token_do_reach_the_service(api: Api, spy: SpyService) -> None:
    # The counterpart of the test above: the spy does see requests that pass authentication.
    send(api, "/users/me", "GET", "Bearer " + tokens.admin_token())
    assert spy.calls == ["get_user"]


# --- key URLs named by a token are never fetched -------------------------------------------------


@pytest.mark.parametrize("kid", [tokens.KID, "attacker-key"])
def test_jku_x5u_and_jwk_headers_are_ignored(
    api: Api, monkeypatch: pytest.MonkeyPatch, spy: SpyService, kid: str
) -> None:
    attacker_jwk = {
        **jwt.algorithms.RSAAlgorithm.to_jwk(other_pool_key().public_key(), as_dict=True),
        "kid": kid,
        "alg": "RS256",
    }
    # Were the verifier to follow a token's jku, it would find the attacker's key there.
    endpoint = FakeUrlopen(
        {JWKS_URL: tokens.jwks(), f"{EVIL}/jwks.json": {"keys": [attacker_jwk]}, f"{EVIL}/cert.pem": b"-----"}
    ).install(monkeypatch)
    bootstrap.override(verify=TokenVerifier(tokens.ISSUER, tokens.CLIENT_ID, url_fetcher(JWKS_URL)).verify)
    headers = {
        "kid": kid,
        "jku": f"{EVIL}/jwks.json",
        "x5u": f"{EVIL}/cert.pem",
        "jwk": attacker_jwk,
        "x5c": [b64url(b"not a certificate")],
    }
    forged = jwt.encode(admin_claims(), other_pool_key(), algorithm="RS256", headers=headers)
    assert_refused(api.request("GET", "/users", forged))
    assert_refused(api.request("POST", "/users", forged, {"name": "M", "email": "m@example.com"}))
    assert spy.calls == []
    assert endpoint.urls and set(endpoint.urls) == {JWKS_URL}


# --- a flood of made-up key ids ---------------------------------------------------------------


class CountingFetcher:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return tokens.jwks()


def test_a_kid_flood_makes_at_most_one_jwks_fetch_per_interval(api: Api, ddb: Any, spy: SpyService) -> None:
    clock = FakeClock()
    fetcher = CountingFetcher()
    verifier = TokenVerifier(tokens.ISSUER, tokens.CLIENT_ID, fetcher, clock=clock)
    bootstrap.override(verify=verifier.verify)
    verifier.verify(tokens.admin_token())  # keys loaded once, as on a warm container
    assert fetcher.calls == 1

    def flood(requests: int, spread_s: float) -> None:
        for _ in range(requests):
            kid = secrets.token_hex(8)
            assert_refused(api.request("GET", "/users/me", tokens.sign(admin_claims(), headers={"kid": kid})))
            clock.advance(spread_s / requests)

    with counting(ddb) as calls:
        flood(200, REFETCH_INTERVAL_S - 1)  # right after the load: no refetch at all
        assert fetcher.calls == 1
        clock.advance(1)
        flood(200, REFETCH_INTERVAL_S - 1)  # one interval later: one refetch for all 200
        assert fetcher.calls == 2
        clock.advance(1)
        flood(200, REFETCH_INTERVAL_S - 1)
        assert fetcher.calls == 3
    assert spy.calls == []
    assert calls.total == 0


# --- the emulator's published signing key ----------------------------------------------------


def emulator_jwks() -> dict[str, Any]:
    """A JWKS that (wrongly) holds moto's key next to the pool's own."""
    return {"keys": [*emulator.public_jwks()["keys"], *tokens.jwks()["keys"]]}


def test_emulator_minted_tokens_are_refused_outside_the_local_stages(api: Api, ddb: Any, spy: SpyService) -> None:
    bootstrap.override(verify=TokenVerifier(tokens.ISSUER, tokens.CLIENT_ID, emulator_jwks).verify)
    # Anyone with moto installed can sign this: our pool's issuer and client id are public.
    minted = emulator.sign(admin_claims())
    with counting(ddb) as calls:
        for path, method in routes.declared(protected=True):
            assert_refused(send(api, path, method, "Bearer " + minted))
    assert spy.calls == []
    assert calls.total == 0


def test_emulator_minted_tokens_are_accepted_where_the_emulator_is_trusted(api: Api) -> None:
    verifier = TokenVerifier(tokens.ISSUER, tokens.CLIENT_ID, emulator_jwks, trust_emulator_keys=True)
    bootstrap.override(verify=verifier.verify)
    assert api.request("GET", "/users", emulator.sign(admin_claims())).status_code == 200


@pytest.fixture
def wired() -> Any:
    bootstrap.reset()
    yield
    bootstrap.reset()


@pytest.mark.parametrize(("stage", "trusted"), [("prod", False), ("staging", False), ("test", True), ("local", True)])
def test_bootstrap_trusts_the_emulator_key_only_in_the_local_stages(
    monkeypatch: pytest.MonkeyPatch, wired: None, stage: str, trusted: bool
) -> None:
    monkeypatch.setenv("STAGE", stage)
    monkeypatch.setenv("TABLE_NAME", "users")
    monkeypatch.setenv("CURSOR_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:cursor-AbCdEf")
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("JWKS_URL", raising=False)
    endpoint = FakeUrlopen({JWKS_URL: emulator_jwks()}).install(monkeypatch)
    verify = bootstrap.current().verify
    assert verify is not None
    assert verify(tokens.admin_token())["sub"]  # the pool's own key works everywhere
    minted = emulator.sign(admin_claims(sub="minted"))
    if trusted:
        assert verify(minted)["sub"] == "minted"
    else:
        with pytest.raises(Unauthorized):
            verify(minted)
    assert set(endpoint.urls) == {JWKS_URL}
