"""boto3 clients: created on first use, reused across invocations, with bounded timeouts.

The endpoint is never fixed here: botocore reads AWS_ENDPOINT_URL itself, which is how the
embedded local stack is reached.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from chalicelib.calls import timed

# Worst case per DynamoDB call: 3 attempts x (2 s connect + 3 s read) plus standard-mode
# backoff stays well inside API Gateway's 29 s integration timeout.
CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 3
MAX_ATTEMPTS = 3

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _options(service: str) -> dict[str, Any]:
    """Presigned S3 URLs must be SigV4 (botocore may still presign with SigV2) and name the
    bucket's regional host (the global one can answer a young bucket's browser POST with a 307).
    An emulator has no per-bucket host names: path style there."""
    if service != "s3":
        return {}
    emulated = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    style = {"addressing_style": "path"} if emulated else {"addressing_style": "virtual"}
    return {"signature_version": "s3v4", "s3": {**style, "us_east_1_regional_endpoint": "regional"}}


def client(service: str) -> Any:
    """The shared client for `service`, created on first use (never at import)."""
    existing = _clients.get(service)
    if existing is not None:
        return existing
    with _lock:
        if service not in _clients:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
                # total_max_attempts counts the first attempt; botocore's max_attempts would not.
                retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                **_options(service),
            )
            _clients[service] = boto3.session.Session().client(service, config=config)
        return _clients[service]


def reset_clients() -> None:
    """Forget cached clients (tests that switch endpoints or credentials)."""
    with _lock:
        _clients.clear()


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def call(client: Any, operation: str, unavailable_codes: frozenset[str], **kwargs: Any) -> Any:
    """One AWS call. Failures that persist after botocore's retries (the service's "try later"
    codes, timeouts, connection errors) become ServiceUnavailable; anything else propagates."""
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.errors import ServiceUnavailable

    try:
        with timed(client, operation, kwargs):
            return getattr(client, operation)(**kwargs)
    except ClientError as exc:
        if error_code(exc) in unavailable_codes:
            raise ServiceUnavailable() from exc
        raise
    except BotoCoreError as exc:
        raise ServiceUnavailable() from exc


class ClientHolder:
    """An adapter's boto3 client: the one it was given (tests), else the shared one, on first use."""

    service = ""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client(self.service)
        return self._client
