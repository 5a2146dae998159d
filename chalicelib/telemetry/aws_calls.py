"""AWS calls made while a request is handled: timed for its metrics, traced when X-Ray samples it."""

from __future__ import annotations

import contextvars
import os
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

# Lambda sets this per invocation when active tracing is on; nothing sets it locally.
TRACE_HEADER_ENV = "_X_AMZN_TRACE_ID"


@dataclass(frozen=True, slots=True)
class Call:
    service: str  # botocore's service id: "DynamoDB", "S3", "Secrets Manager"
    operation: str  # the API name: "GetItem"
    ms: float
    failed: bool


# A request's calls, and its X-Ray trace header if the request is sampled (read once per request:
# reading the environment cost a tenth of the timing of each call).
_Recording = tuple[list[Call], str | None]
_recorded: contextvars.ContextVar[_Recording | None] = contextvars.ContextVar("aws_calls", default=None)


def start_recording() -> tuple[list[Call], contextvars.Token[_Recording | None]]:
    """Collect the calls made from here (one request) into the list returned, until
    `stop_recording(token)`. Not a context manager: this runs on every request, and a
    generator-based one costs more than the two calls."""
    calls: list[Call] = []
    return calls, _recorded.set((calls, _sampled()))


def stop_recording(token: contextvars.Token[_Recording | None]) -> None:
    _recorded.reset(token)


def _sampled() -> str | None:
    header = os.environ.get(TRACE_HEADER_ENV, "")
    return header if "Sampled=1" in header else None


class timed:  # noqa: N801 - used as a function: `with timed(client, operation, params):`
    """Time one API call of `client` (`operation` is the method name, e.g. "get_item"). A class,
    not a generator-based context manager: it runs around every AWS call, at half the cost."""

    __slots__ = ("_api_name", "_client", "_params", "_started", "_wall_start")

    def __init__(self, client: Any, operation: str, params: dict[str, Any]) -> None:
        mapping = getattr(getattr(client, "meta", None), "method_to_api_mapping", None)  # test doubles have none
        # None: not a request (e.g. generate_presigned_url signs locally).
        self._api_name = mapping.get(operation) if isinstance(mapping, dict) else None
        self._client = client
        self._params = params

    def __enter__(self) -> None:
        if self._api_name is not None:
            self._wall_start, self._started = time.time(), time.perf_counter()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        api_name = self._api_name
        if api_name is None:
            return
        elapsed = time.perf_counter() - self._started
        meta = self._client.meta
        service = str(meta.service_model.service_id)
        recording = _recorded.get()
        if recording is not None:
            calls, header = recording
            calls.append(Call(service, api_name, round(elapsed * 1000, 3), error is not None))
        else:
            header = _sampled()
        if header is not None:
            from chalicelib.telemetry import xray  # loaded only when a request is traced

            start = self._wall_start
            span = xray.Span(service, api_name, meta.region_name, self._params, start, start + elapsed, error)
            xray.send_subsegment(header, span)
