"""AWS clients: made once per container, reused across invocations, with bounded timeouts.

Made with botocore's own session, not boto3's: boto3 adds resources and S3's transfer manager,
which the app never uses and whose import (s3transfer, multiprocessing, ...) costs every cold
start about 14 ms of CPU (docs/BENCHMARKS.md). The clients are the same botocore clients.

On Lambda, the INIT makes those of every request (chalicelib/bootstrap.py `prepare`) and the
first request that needs another makes it; locally and in tests each is made on first use, so
importing the app makes none and tests can give their own. The endpoint is never fixed here:
botocore reads AWS_ENDPOINT_URL itself, which is how the embedded local stack is reached.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.telemetry.aws_calls import timed

# Worst case per DynamoDB call: 3 attempts x (2 s connect + 3 s read) plus standard-mode
# backoff stays well inside API Gateway's 29 s integration timeout.
CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 3
MAX_ATTEMPTS = 3
# A local stage may set the read timeout (whole seconds, 1 to LOCAL_READ_TIMEOUT_MAX_S): the tests
# that stall the emulator past it then wait a second, not three, and `make bulk-bench`'s worker
# waits out the emulator's Scan, whose every page walks the whole table (about 5 s a page at
# 100,000 users). Deployed stages always wait READ_TIMEOUT_S.
READ_TIMEOUT_ENV = "AWS_READ_TIMEOUT_S"
LOCAL_READ_TIMEOUT_MAX_S = 30


def read_timeout_s() -> int:
    from chalicelib.config import LOCAL_STAGES

    given = os.environ.get(READ_TIMEOUT_ENV, "")
    if os.environ.get("STAGE", "local") in LOCAL_STAGES and given.isascii() and given.isdigit():
        if 1 <= int(given) <= LOCAL_READ_TIMEOUT_MAX_S:
            return int(given)
    return READ_TIMEOUT_S


_lock = threading.Lock()
_clients: dict[str, Any] = {}
# One session for every client: the second and later clients reuse what the first loaded
# (endpoint rules, partitions, credentials), which made four clients cost 96 ms of CPU instead
# of 284 ms. Sessions are not thread-safe, so clients are only ever made under _lock.
_session: Any = None


def _options(service: str) -> dict[str, Any]:
    """Presigned S3 URLs must be SigV4 (botocore may still presign with SigV2) and name the
    bucket's regional host (the global one can answer a young bucket's browser POST with a 307).
    An emulator has no per-bucket host names: path style there."""
    if service != "s3":
        return {}
    emulated = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    style = {"addressing_style": "path"} if emulated else {"addressing_style": "virtual"}
    return {"signature_version": "s3v4", "s3": {**style, "us_east_1_regional_endpoint": "regional"}}


def client_config(service: str) -> Any:
    """The botocore Config of the app's client for `service` (the benchmark gives its contenders the same)."""
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s(),
        # total_max_attempts counts the first attempt; botocore's max_attempts would not.
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        **_options(service),
    )


def client(service: str) -> Any:
    """The shared client for `service`, made on first use unless INIT made it already. Making
    one calls nothing: a client connects on its first request."""
    existing = _clients.get(service)
    if existing is not None:
        return existing
    global _session
    with _lock:
        if service not in _clients:
            if _session is None:
                from botocore.session import get_session

                _session = get_session()
            _clients[service] = _session.create_client(service, config=client_config(service))
        return _clients[service]


def made_clients() -> dict[str, Any]:
    """The clients made so far, by service (what INIT made, before any request)."""
    with _lock:
        return dict(_clients)


def reset_clients() -> None:
    """Forget cached clients and their session (tests that switch endpoints or credentials)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


# Each service's "try later" error codes: after botocore's own retries they mean the service could
# not serve us now (ServiceUnavailable, 503), not that the request was wrong. S3's HeadObject
# answers with a bare status, hence "500" and "503".
TRANSIENT_CODES: dict[str, frozenset[str]] = {
    "dynamodb": frozenset(
        {
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
            "InternalServerError",
            "ServiceUnavailable",
            "LimitExceededException",
        }
    ),
    "s3": frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "500", "503"}),
    "cognito-idp": frozenset({"TooManyRequestsException", "LimitExceededException", "InternalErrorException"}),
    "secretsmanager": frozenset({"ThrottlingException", "InternalServiceError", "ServiceUnavailable"}),
    "events": frozenset({"ThrottlingException", "InternalException", "ServiceUnavailable"}),
    "sqs": frozenset(
        {"RequestThrottled", "ThrottlingException", "InternalError", "ServiceUnavailable", "KmsThrottled"}
    ),
}


def call(client: Any, operation: str, **kwargs: Any) -> Any:
    """The one way the app calls AWS. Failures that persist after botocore's retries (the service's
    "try later" codes, timeouts, connection errors) become ServiceUnavailable; anything else
    propagates. Each call is timed for the request's metrics, and traced when X-Ray samples it."""
    try:
        with timed(client, operation, kwargs):
            return getattr(client, operation)(**kwargs)
    except Exception as exc:
        # Imported on failure only: an import statement on every call cost as much as the timing.
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            if error_code(exc) in TRANSIENT_CODES.get(_service(client), frozenset()):
                raise ServiceUnavailable() from exc
            raise
        if isinstance(exc, BotoCoreError):
            raise ServiceUnavailable() from exc
        raise


def _service(client: Any) -> str:
    """The client's service as boto3 names it ("dynamodb", "cognito-idp", ...)."""
    return str(getattr(getattr(getattr(client, "meta", None), "service_model", None), "signing_name", ""))


class ClientHolder:
    """An adapter's AWS client: the one it was given (tests, tools), else the shared one, on first use."""

    service = ""

    def __init__(self, client: Any | None = None, *, make: Callable[[], Any] | None = None) -> None:
        # `make`: where the client comes from when first used, for an adapter that most
        # containers never use (the SES mailer), so that wiring it makes no client.
        self._client = client
        self._make = make

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make() if self._make is not None else client(self.service)
        return self._client

    def _call(self, operation: str, **kwargs: Any) -> Any:
        return call(self.client, operation, **kwargs)
