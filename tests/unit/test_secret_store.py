"""Reading the cursor key from Secrets Manager: once an hour, and with failures classified."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.adapters.secret_store import SECRET_TTL_S, cached_secret, read_secret
from chalicelib.cache import TTLCache
from chalicelib.config import ConfigurationError
from chalicelib.domain.cursor import CursorCodec, CursorScope
from chalicelib.domain.errors import ServiceUnavailable
from tests.unit.fakes import FakeClock


class _Meta:
    """What aws.call reads of a client: which service it is (its transient codes follow)."""

    class service_model:  # noqa: N801 - botocore's attribute name
        signing_name = "secretsmanager"


class StubSecrets:
    meta = _Meta()

    def __init__(self, value: str | None = "k" * 48, error: Exception | None = None):
        self.value, self.error, self.calls = value, error, 0

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return {"ARN": SecretId} if self.value is None else {"ARN": SecretId, "SecretString": self.value}


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "internal detail"}}, "GetSecretValue")


def test_returns_the_string_value_as_bytes() -> None:
    assert read_secret("arn", StubSecrets("abc")) == b"abc"


@pytest.mark.parametrize("value", [None, ""])
def test_a_secret_without_a_string_value_is_a_configuration_error(value: str | None) -> None:
    with pytest.raises(ConfigurationError):
        read_secret("arn", StubSecrets(value))


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ThrottlingException"),
        _client_error("InternalServiceError"),
        EndpointConnectionError(endpoint_url="x"),
    ],
)
def test_transient_failures_are_service_unavailable(error: Exception) -> None:
    with pytest.raises(ServiceUnavailable):
        read_secret("arn", StubSecrets(error=error))


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException", "DecryptionFailure"])
def test_permanent_failures_are_configuration_errors(code: str) -> None:
    with pytest.raises(ConfigurationError, match=code):
        read_secret("arn", StubSecrets(error=_client_error(code)))


SCOPE = CursorScope(route="users", caller="admin", query="users")


def _cache(clock: FakeClock | None = None) -> TTLCache[str, bytes]:
    return TTLCache(max_size=8, ttl_seconds=SECRET_TTL_S, clock=clock or FakeClock(0.0))


def test_the_codec_reads_a_lazy_secret_once_and_only_when_first_needed() -> None:
    stub, cache = StubSecrets(), _cache()
    codec = CursorCodec(lambda: cached_secret("arn", stub, cache))
    assert stub.calls == 0
    cursor = codec.encode("user-1", SCOPE)
    assert codec.decode(cursor, SCOPE) == "user-1"
    codec.encode("user-2", SCOPE)
    assert stub.calls == 1
    assert CursorCodec(b"k" * 48).decode(cursor, SCOPE) == "user-1"


def test_a_lazy_secret_that_is_too_short_is_refused_on_use() -> None:
    codec = CursorCodec(lambda: b"short")
    with pytest.raises(ValueError, match="16 bytes"):
        codec.encode("user-1", SCOPE)


def test_a_rotated_secret_is_used_once_the_cached_one_expires() -> None:
    stub, clock = StubSecrets("old-" + "k" * 44), FakeClock(0.0)
    cache = _cache(clock)
    codec = CursorCodec(lambda: cached_secret("arn", stub, cache))
    old_cursor = codec.encode("user-1", SCOPE)
    stub.value = "new-" + "k" * 44
    clock.advance(SECRET_TTL_S - 0.001)
    assert codec.decode(old_cursor, SCOPE) == "user-1"
    assert stub.calls == 1
    clock.advance(0.001)
    assert codec.encode("user-1", SCOPE) != old_cursor
    assert stub.calls == 2
    assert (cache.hits, cache.misses) == (1, 2)


def test_a_failed_read_is_retried_on_the_next_use() -> None:
    stub, cache = StubSecrets(error=_client_error("ThrottlingException")), _cache()
    codec = CursorCodec(lambda: cached_secret("arn", stub, cache))
    with pytest.raises(ServiceUnavailable):
        codec.encode("user-1", SCOPE)
    stub.error = None
    assert codec.decode(codec.encode("user-1", SCOPE), SCOPE) == "user-1"
    assert stub.calls == 2
