"""Verification of Cognito ID tokens where API Gateway does not do it (chalice local, tests).

PyJWT (and through it `cryptography`) is imported on first use only, so the Lambda path,
where API Gateway's Cognito authorizer has already verified the token, never loads it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from chalicelib.cache import TTLCache
from chalicelib.domain.errors import Unauthorized

logger = logging.getLogger("users_api.tokens")

JwksFetcher = Callable[[], dict[str, Any]]

MAX_TOKEN_BYTES = 8 * 1024
LEEWAY_S = 30
# A Cognito JWKS is about 1 KB; reading an endpoint's answer unbounded would let it exhaust memory.
MAX_JWKS_BYTES = 64 * 1024
JWKS_TTL_S = 6 * 3600
# An unknown `kid` triggers at most one refetch per interval, so a flood of made-up key ids
# cannot turn into a flood of JWKS requests.
REFETCH_INTERVAL_S = 60
# The RSA modulus of the key moto's Cognito emulator signs every token with (kid "dummy").
# Its private half ships with moto (moto/cognitoidp/resources/jwks-private.json.gz), so anyone
# can mint tokens it verifies: outside the local stages a JWKS key with this modulus is dropped.
# Copied from moto/cognitoidp/resources/jwks-public.json.gz (moto 5.x); moto is not imported at run time.
EMULATOR_KEY_MODULUS = (
    "j1pT3xKbswmMySvCefmiD3mfDaRFpZ9Y3Jl4fF0hMaCRVAt_e0yR7BeueDfqmj_NhVSO0WB5ao5e8V-9RFQOtK8SrqKl3i01-CyWYPICwyba"
    "GKhbJJR0S_6cZ8n5kscF1MjpIlsJcCzm-yKgTc3Mxk6KtrLoNgRvMwGLeHUXPkhS9YHfDKRe864iMFOK4df69brIYEICG2VLduh0hXYa0i-J"
    "3drwm7vxNdX7pVpCDu34qJtYoWq6CXt3Tzfi3YfWp8cFjGNbaDa3WnCd2IXpp0TFsFS-cEsw5rJjSl5OllJGeZKBtLeyVTy9PYwnk7MW43WSY"
    "eYstbk9NluX4H8Iuw"
)


def url_fetcher(url: str, timeout_s: float = 3.0) -> JwksFetcher:
    """Fetch a JWKS from a configured URL (never one named by a token)."""

    def fetch() -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - configured URL
            body = response.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise TypeError("JWKS is not a JSON object")
        return document

    return fetch


def bearer_token(header: str | None) -> str:
    """The token in an Authorization header: `Bearer <token>` or the bare token."""
    if not header or not header.strip():
        raise Unauthorized("Missing authorization token")
    token = header.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
        raise Unauthorized("Malformed authorization token")
    return token


def _is_emulator_key(jwk: dict[str, Any]) -> bool:
    # The modulus, not the kid: a kid is just a label anyone can reuse. Padding and leading
    # zero bytes do not change the key, so compare the numbers, not the strings.
    return _modulus(jwk.get("n")) == _EMULATOR_MODULUS


def _modulus(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")
    except ValueError:  # binascii.Error is a ValueError
        return None


_EMULATOR_MODULUS = _modulus(EMULATOR_KEY_MODULUS)


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        fetch_jwks: JwksFetcher,
        clock: Callable[[], float] = time.monotonic,
        trust_emulator_keys: bool = False,
    ):
        """`trust_emulator_keys` accepts moto's published signing key: only for the local stages."""
        self._issuer = issuer
        self._trust_emulator_keys = trust_emulator_keys
        self._client_id = client_id
        self._fetch_jwks = fetch_jwks
        self._clock = clock
        self._keys: TTLCache[str, dict[str, Any]] = TTLCache(max_size=1, ttl_seconds=JWKS_TTL_S, clock=clock)
        self._last_fetch = float("-inf")
        self._lock = threading.Lock()
        self.fetch_count = 0

    def _load_keys(self) -> dict[str, Any]:
        import jwt

        self.fetch_count += 1
        self._last_fetch = self._clock()
        previous = self._keys.get("keys") or {}
        try:
            document = self._fetch_jwks()
            entries = document["keys"]
            if not isinstance(entries, list):
                raise TypeError("keys is not a list")
        except Exception:  # network, HTTP, JSON or shape failure
            logger.exception("could not fetch the JWKS")
            # Keep what we had (possibly nothing) cached, so while the endpoint is down the
            # refetch interval still bounds how often we call it.
            self._keys.set("keys", previous)
            return previous
        keys: dict[str, Any] = {}
        for jwk in entries:
            if isinstance(jwk, dict) and jwk.get("kty") == "RSA" and isinstance(jwk.get("kid"), str):
                if not self._trust_emulator_keys and _is_emulator_key(jwk):
                    logger.warning("dropping the emulator's published key from the JWKS", extra={"kid": jwk["kid"]})
                    continue
                try:
                    keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm="RS256")
                except jwt.PyJWTError:
                    logger.warning("skipping an unusable JWKS key", extra={"kid": jwk["kid"]})
        self._keys.set("keys", keys)
        return keys

    def _key(self, kid: str) -> Any:
        keys = self._keys.get("keys")
        if keys is not None and kid in keys:
            return keys[kid]
        with self._lock:
            keys = self._keys.get("keys")
            if keys is None or (kid not in keys and self._clock() - self._last_fetch >= REFETCH_INTERVAL_S):
                keys = self._load_keys()
        if kid not in keys:
            raise Unauthorized("Invalid token")
        return keys[kid]

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """Claims of a valid Cognito ID token; Unauthorized for anything else."""
        import jwt

        token = bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("Malformed authorization token") from exc
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str) or not kid:
            raise Unauthorized("Invalid token")
        key = self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                audience=self._client_id,
                issuer=self._issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "token_use"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("Token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("Invalid token") from exc
        if claims.get("token_use") != "id":
            raise Unauthorized("An ID token is required")
        return claims
