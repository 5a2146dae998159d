"""X-Ray subsegments for AWS calls, sent to the X-Ray daemon Lambda runs beside the function.

The X-Ray SDK would patch botocore at import and add about 130 ms to a cold start (measured
with Powertools' Tracer); this module is 'import json, os, socket' and is imported only when
a sampled request makes its first AWS call. Each subsegment is sent as its own document, as the
SDK does in Lambda, whose segment for the invocation Lambda itself records
(https://docs.aws.amazon.com/xray/latest/devguide/xray-api-sendingdata.html).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("users_api.xray")

DAEMON_ENV = "AWS_XRAY_DAEMON_ADDRESS"
DEFAULT_DAEMON = "127.0.0.1:2000"
_HEADER = b'{"format":"json","version":1}\n'
_socket: socket.socket | None = None


def parse_trace_header(header: str) -> dict[str, str]:
    """'Root=1-...;Parent=...;Sampled=1' -> {'Root': ..., 'Parent': ..., 'Sampled': '1'}"""
    fields = (part.split("=", 1) for part in header.split(";") if "=" in part)
    return {key.strip(): value.strip() for key, value in fields}


def daemon_address() -> tuple[str, int]:
    # Lambda's value is "host:port"; the SDK also accepts "tcp:host:port udp:host:port".
    raw = os.environ.get(DAEMON_ENV, DEFAULT_DAEMON)
    for part in raw.split():
        if part.startswith("udp:"):
            raw = part[4:]
            break
    host, _, port = raw.rpartition(":")
    return host, int(port)


@dataclass(frozen=True, slots=True)
class Span:
    """One AWS call: what it was, its parameters, when (epoch seconds), and how it failed."""

    service: str
    operation: str
    region: str | None
    params: Mapping[str, Any]
    start: float
    end: float
    error: BaseException | None = None


def subsegment(trace: dict[str, str], span: Span) -> dict[str, Any]:
    """The segment document of one AWS call, as the X-Ray SDK names its fields."""
    aws: dict[str, Any] = {"operation": span.operation, "region": span.region}
    if "TableName" in span.params:
        aws["table_name"] = span.params["TableName"]
    if "Bucket" in span.params:
        aws["bucket_name"] = span.params["Bucket"]
    document: dict[str, Any] = {
        "type": "subsegment",
        "id": os.urandom(8).hex(),
        "trace_id": trace["Root"],
        "parent_id": trace["Parent"],
        "name": span.service,
        "namespace": "aws",
        "start_time": span.start,
        "end_time": span.end,
        "aws": aws,
    }
    if span.error is not None:
        response = getattr(span.error, "response", None)
        status = (response or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        # As the SDK does: a 4xx answer is an error (the caller's), anything else a fault.
        document["error" if isinstance(status, int) and 400 <= status < 500 else "fault"] = True
        if isinstance(status, int):
            document["http"] = {"response": {"status": status}}
    return document


def send_subsegment(header: str, span: Span) -> None:
    """Send one subsegment; tracing never fails a request, so a failure here is only logged."""
    global _socket
    try:
        trace = parse_trace_header(header)
        if "Root" not in trace or "Parent" not in trace:
            return
        document = subsegment(trace, span)
        if _socket is None:
            _socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            _socket.setblocking(False)
        _socket.sendto(_HEADER + json.dumps(document, separators=(",", ":")).encode(), daemon_address())
    except (OSError, ValueError, TypeError):
        logger.debug("could not send an X-Ray subsegment", exc_info=True)
