"""AWS calls made while a request is handled: timed for its metrics, traced when X-Ray samples it."""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# Lambda sets this per invocation when active tracing is on; nothing sets it locally.
TRACE_HEADER_ENV = "_X_AMZN_TRACE_ID"


@dataclass(frozen=True, slots=True)
class Call:
    service: str  # botocore's service id: "DynamoDB", "S3", "Secrets Manager"
    operation: str  # the API name: "GetItem"
    ms: float
    failed: bool


_recorded: contextvars.ContextVar[list[Call] | None] = contextvars.ContextVar("aws_calls", default=None)


def start_recording() -> tuple[list[Call], contextvars.Token[list[Call] | None]]:
    """Collect the calls made from here (one request) into the list returned, until
    `stop_recording(token)`. Not a context manager: this runs on every request, and a
    generator-based one costs more than the two calls."""
    calls: list[Call] = []
    return calls, _recorded.set(calls)


def stop_recording(token: contextvars.Token[list[Call] | None]) -> None:
    _recorded.reset(token)


def _sampled() -> str | None:
    header = os.environ.get(TRACE_HEADER_ENV, "")
    return header if "Sampled=1" in header else None


@contextmanager
def timed(client: Any, operation: str, params: dict[str, Any]) -> Iterator[None]:
    """Time one API call of `client` (`operation` is the method name, e.g. "get_item")."""
    meta: Any = getattr(client, "meta", None)
    mapping = getattr(meta, "method_to_api_mapping", None)  # test doubles have none
    api_name = mapping.get(operation) if isinstance(mapping, dict) else None
    if api_name is None:  # not a request (e.g. generate_presigned_url signs locally)
        yield
        return
    service = meta.service_model.service_id
    wall_start, started = time.time(), time.perf_counter()
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        elapsed = time.perf_counter() - started
        calls = _recorded.get()
        if calls is not None:
            calls.append(Call(str(service), api_name, round(elapsed * 1000, 3), error is not None))
        header = _sampled()
        if header is not None:
            from chalicelib import xray  # loaded only when a request is traced

            span = xray.Span(str(service), api_name, meta.region_name, params, wall_start, wall_start + elapsed, error)
            xray.send_subsegment(header, span)
