"""Secrets from AWS Secrets Manager, cached for an hour per container."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import aws
from chalicelib.cache import TTLCache
from chalicelib.config import ConfigurationError

# A rotated secret reaches every container within this time, at one read per container per hour.
SECRET_TTL_S = 3600
secret_cache: TTLCache[str, bytes] = TTLCache(max_size=8, ttl_seconds=SECRET_TTL_S)


def cached_secret(secret_id: str, client: Any | None = None, cache: TTLCache[str, bytes] = secret_cache) -> bytes:
    """The secret's value, read at most once per SECRET_TTL_S (a failed read is not cached)."""
    return cache.get_or_load(secret_id, lambda: read_secret(secret_id, client))


def read_secret(secret_id: str, client: Any | None = None) -> bytes:
    """The secret's string value. Transient failures are ServiceUnavailable; a missing or
    empty secret is a ConfigurationError."""
    from botocore.exceptions import ClientError

    if client is None:
        client = aws.client("secretsmanager")
    try:
        value = aws.call(client, "get_secret_value", SecretId=secret_id).get("SecretString") or ""
    except ClientError as exc:
        raise ConfigurationError(f"cannot read secret {secret_id}: {aws.error_code(exc)}") from exc
    if not value:
        raise ConfigurationError(f"secret {secret_id} has no string value")
    return str(value).encode()
