"""DynamoDB (and Cognito) faults injected below botocore's retry handler (tests/functional).

A `before-send` hook answers in place of DynamoDB, raises as the network would, or applies the
request and then loses its answer; so each attempt botocore makes is counted, and the standard
retry mode's own decisions are exercised. botocore calls every `before-send` handler, so moto's
(which would still apply the request) is taken off the client while faults are injected and
called only for attempts that pass, or that a fault applies itself. The same works for any client
of a JSON-protocol service (Cognito's), and with `lock` every request the hook passes to moto
holds it: moto's backends are not thread-safe, so requests of concurrent threads take turns, one
whole request at a time, as the local stack's emulator serves them (devstack/motoserver.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.retries.quota import RetryQuota
from moto.core.models import botocore_stubber

# The operation name that matches every operation (a fault that decides for itself).
ANY = "*"

# A fault: given botocore's before-send arguments, the response DynamoDB gives (or an exception).
Fault = Callable[..., AWSResponse]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def aws_error(status: int, code: str, **extra: Any) -> Fault:
    """DynamoDB answers with this error; nothing is applied."""
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected", **extra}).encode()

    def respond(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body))

    return respond


def raise_(exc: Exception) -> Fault:
    """The network fails with `exc`; nothing is applied."""

    def fail(request: Any, **_: Any) -> AWSResponse:
        raise exc

    return fail


def answered_late(request: Any, **kwargs: Any) -> AWSResponse:
    """A slow success: DynamoDB (moto) applies the request, but its answer comes after the read
    timeout, so botocore sees a ReadTimeoutError and resends."""
    botocore_stubber(request=request, **kwargs)  # applied...
    raise ReadTimeoutError(endpoint_url=request.url)  # ...but answered too late


class Faults:
    """Meets the next `times` sends of `operation` (every one when None) with a fault and counts
    every attempt."""

    def __init__(self, client: Any, lock: AbstractContextManager[Any] | None = None) -> None:
        self.client = client
        self.attempts: dict[str, int] = {}
        self._rules: list[tuple[str, Fault, int | None]] = []
        self._lock = lock or nullcontext()
        self._event = f"before-send.{client.meta.service_model.service_id.hyphenize()}"
        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register(self._event, self._before_send)

    def inject(self, operation: str, fault: Fault, times: int | None = None) -> None:
        self._rules.append((operation, fault, times))

    def clear(self) -> None:
        """No more faults (the attempts stay counted)."""
        self._rules.clear()

    def _before_send(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        operation = request.headers["X-Amz-Target"].decode().split(".")[-1]
        with self._lock:
            self.attempts[operation] = self.attempts.get(operation, 0) + 1
            for index, (name, fault, times) in enumerate(self._rules):
                if name in (operation, ANY) and (times is None or times > 0):
                    if times is not None:
                        self._rules[index] = (name, fault, times - 1)
                    return fault(request, **kwargs)
            return botocore_stubber(request=request, **kwargs)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.client.meta.events.unregister(self._event, self._before_send)
        self.client.meta.events.unregister("before-send", botocore_stubber)
        self.client.meta.events.register("before-send", botocore_stubber)


def set_retry_quota(client: Any, capacity: int | None) -> None:
    """Give `client`'s retry quota (botocore's standard mode) `capacity` tokens; None: a fresh
    quota. botocore spends it on retries and refills it on successes for the life of the client,
    so after a long outage none is left and a failed or late request is not resent at all. It is
    process state a test must set, not inherit; botocore has no API for it, hence the reach into
    its retry handler (which must be found: a botocore that moved it fails here, not silently)."""
    event = f"needs-retry.{client.meta.service_model.service_id.hyphenize()}.AnyOperation"
    checkers = [
        getattr(getattr(handler, "__self__", None), "_retry_quota", None)
        for handler in client.meta.events._emitter._handlers.prefix_search(event)
    ]
    found = [checker for checker in checkers if checker is not None]
    assert found, f"no standard-mode retry quota on {event}"
    for checker in found:
        checker._quota = RetryQuota() if capacity is None else RetryQuota(initial_capacity=capacity)
