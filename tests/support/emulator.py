"""moto's Cognito signing key, published with moto: tokens anyone can mint for any pool."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
import moto.cognitoidp

RESOURCES = Path(moto.cognitoidp.__file__).parent / "resources"
KID = "dummy"


@lru_cache(maxsize=2)
def _load(name: str) -> dict[str, Any]:
    document = json.loads(gzip.decompress((RESOURCES / name).read_bytes()))
    return dict(document)


def private_jwk() -> dict[str, Any]:
    return _load("jwks-private.json.gz")


def public_jwks() -> dict[str, Any]:
    """The JWKS moto's Cognito serves for every pool."""
    return _load("jwks-public.json.gz")


@lru_cache(maxsize=1)
def _signing_key() -> Any:
    # Importing the JWK recovers the RSA primes (about 0.1 s of CPU): once per process.
    return jwt.PyJWK(private_jwk(), algorithm="RS256").key


def sign(payload: dict[str, Any], kid: str = KID) -> str:
    return jwt.encode(payload, _signing_key(), algorithm="RS256", headers={"kid": kid})
