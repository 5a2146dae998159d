"""Real RS256 Cognito-shaped tokens signed by a test key, and the JWKS that verifies them."""

from __future__ import annotations

import time
import uuid
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

REGION = "us-east-1"
POOL_ID = "us-east-1_TestPool"
CLIENT_ID = "test-client-id"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}"
KID = "test-key-1"


@lru_cache(maxsize=4)
def private_key(name: str = KID) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(*kids: str) -> dict[str, Any]:
    keys = []
    for kid in kids or (KID,):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private_key(kid).public_key(), as_dict=True)
        keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
    return {"keys": keys}


def claims(
    sub: str | None = None,
    email: str = "someone@example.com",
    groups: list[str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": sub or str(uuid.uuid4()),
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "token_use": "id",
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
        "email": email,
        "email_verified": True,
        "cognito:username": sub or "someone",
    }
    if groups:
        payload["cognito:groups"] = groups
    payload.update(overrides)
    return {key: value for key, value in payload.items() if value is not None}


def sign(payload: dict[str, Any], kid: str = KID, headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(payload, private_key(kid), algorithm="RS256", headers={"kid": kid, **(headers or {})})


def token(
    sub: str | None = None, email: str = "someone@example.com", groups: list[str] | None = None, **kw: Any
) -> str:
    return sign(claims(sub=sub, email=email, groups=groups, **kw))


def admin_token(sub: str | None = None, email: str = "admin@example.com") -> str:
    return token(sub=sub, email=email, groups=["admins"])


# The callers most functional tests use. The admin has no record: it acts by its token's group.
ADMIN_SUB = "a0000000-0000-4000-8000-000000000001"
ADMIN = admin_token(ADMIN_SUB)
