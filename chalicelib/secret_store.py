"""Secrets from AWS Secrets Manager. Callers keep what they read: one read per container."""

from __future__ import annotations

from typing import Any

from chalicelib import aws
from chalicelib.config import ConfigurationError
from chalicelib.errors import ServiceUnavailable

# Secrets Manager codes that mean "try again later", after botocore's own retries.
_TRANSIENT_CODES = frozenset({"ThrottlingException", "InternalServiceError", "ServiceUnavailable"})


def read_secret(secret_id: str, client: Any | None = None) -> bytes:
    """The secret's string value. Transient failures are ServiceUnavailable; a missing or
    empty secret is a ConfigurationError."""
    from botocore.exceptions import BotoCoreError, ClientError

    if client is None:
        client = aws.client("secretsmanager")
    try:
        value = client.get_secret_value(SecretId=secret_id).get("SecretString") or ""
    except ClientError as exc:
        code = aws.error_code(exc)
        if code in _TRANSIENT_CODES:
            raise ServiceUnavailable() from exc
        raise ConfigurationError(f"cannot read secret {secret_id}: {code}") from exc
    except BotoCoreError as exc:
        raise ServiceUnavailable() from exc
    if not value:
        raise ConfigurationError(f"secret {secret_id} has no string value")
    return str(value).encode()
