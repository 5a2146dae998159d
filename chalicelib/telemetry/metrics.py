"""CloudWatch metrics in Embedded Metric Format (EMF), carried by the request's own log line:
CloudWatch Logs turns it into metrics, with no API call, no client and no second line.

Per request, by Stage, Route and Method: Requests, Latency, 4xx, 5xx. By Stage: ColdStart on a
container's first request, and the latency of each AWS call by operation ("DynamoDB.GetItem").
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from chalicelib.telemetry.aws_calls import Call

# EMF takes at most 100 values of one metric in one document.
MAX_VALUES = 100
REQUEST_METRICS = (("Requests", "Count"), ("Latency", "Milliseconds"), ("4xx", "Count"), ("5xx", "Count"))


def _directive(namespace: str, dimensions: list[str], metrics: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "Namespace": namespace,
        "Dimensions": [dimensions],
        "Metrics": [{"Name": name, "Unit": unit} for name, unit in metrics],
    }


# Bounded: one entry per namespace and set of per-stage metrics (cold start, the operations called).
@lru_cache(maxsize=128)
def _directives_json(namespace: str, per_stage: tuple[tuple[str, str], ...]) -> str:
    """The CloudWatchMetrics member, encoded once: it is the same for every request of a kind."""
    directives = [_directive(namespace, ["Stage", "Route", "Method"], REQUEST_METRICS)]
    if per_stage:
        directives.append(_directive(namespace, ["Stage"], per_stage))
    return json.dumps(directives, separators=(",", ":"))


def add_metrics(
    record: dict[str, Any],
    *,
    namespace: str,
    stage: str,
    status: int,
    latency_ms: float,
    cold_start: bool,
    calls: Sequence[Call],
    timestamp_ms: int,
) -> str:
    """Add the metric values to `record` (the request's log line, which has its Route and Method)
    and return its `_aws` member, encoded, that makes it an EMF document. Its other fields stay
    properties of the log event, so a data point leads to its request."""
    record["Stage"] = stage
    record["Requests"] = 1
    record["Latency"] = latency_ms
    record["4xx"] = int(400 <= status < 500)
    record["5xx"] = int(status >= 500)
    per_stage: list[tuple[str, str]] = []
    if cold_start:
        record["ColdStart"] = 1
        per_stage.append(("ColdStart", "Count"))
    latencies: dict[str, list[float]] = {}
    for call in calls:
        latencies.setdefault(f"{call.service}.{call.operation}", []).append(call.ms)
    for name, values in latencies.items():
        record[name] = values[0] if len(values) == 1 else values[:MAX_VALUES]
        per_stage.append((name, "Milliseconds"))
    directives = _directives_json(namespace, tuple(per_stage))
    return f'"_aws":{{"Timestamp":{timestamp_ms},"CloudWatchMetrics":{directives}}}'
