"""The parts of observability that need no app: EMF documents, X-Ray documents, call timing."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, ClassVar

import pytest

from chalicelib.telemetry import aws_calls as calls
from chalicelib.telemetry import metrics, xray
from chalicelib.telemetry.aws_calls import Call


def emf_document(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"Route": "/users/{userId}", "Method": "GET", "requestId": "r-1"}
    arguments: dict[str, Any] = {
        "namespace": "Ns",
        "stage": "prod",
        "status": 200,
        "latency_ms": 1.5,
        "cold_start": False,
        "calls": [],
        "timestamp_ms": 1_700_000_000_000,
        **overrides,
    }
    tail = metrics.add_metrics(record, **arguments)
    return dict(json.loads("{" + json.dumps(record)[1:-1] + "," + tail + "}"))


def declared(document: dict[str, Any]) -> dict[str, tuple[str, list[list[str]]]]:
    found = {}
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for metric in directive["Metrics"]:
            found[metric["Name"]] = (metric["Unit"], directive["Dimensions"])
    return found


def test_a_request_document_declares_its_metrics_and_dimensions() -> None:
    document = emf_document(status=503)
    assert document["_aws"]["Timestamp"] == 1_700_000_000_000
    assert declared(document) == {
        "Requests": ("Count", [["Stage", "Route", "Method"]]),
        "Latency": ("Milliseconds", [["Stage", "Route", "Method"]]),
        "4xx": ("Count", [["Stage", "Route", "Method"]]),
        "5xx": ("Count", [["Stage", "Route", "Method"]]),
    }
    assert (document["Requests"], document["Latency"], document["4xx"], document["5xx"]) == (1, 1.5, 0, 1)
    assert document["requestId"] == "r-1"  # other fields stay, as properties


def test_cold_start_and_call_latencies_are_per_stage() -> None:
    made = [Call("DynamoDB", "GetItem", 2.0, False), Call("DynamoDB", "GetItem", 3.0, True), Call("S3", "X", 1, False)]
    document = emf_document(cold_start=True, calls=made, status=404)
    names = declared(document)
    assert names["ColdStart"] == ("Count", [["Stage"]])
    assert names["DynamoDB.GetItem"] == ("Milliseconds", [["Stage"]])
    assert (document["ColdStart"], document["DynamoDB.GetItem"], document["S3.X"]) == (1, [2.0, 3.0], 1)
    assert document["4xx"] == 1


def test_at_most_100_values_of_a_metric() -> None:
    made = [Call("DynamoDB", "Scan", float(i), False) for i in range(150)]
    assert len(emf_document(calls=made)["DynamoDB.Scan"]) == metrics.MAX_VALUES


def test_trace_header_and_daemon_address(monkeypatch: pytest.MonkeyPatch) -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a:0"
    assert xray.parse_trace_header(header)["Parent"] == "53995c3f42cd8ad8"
    monkeypatch.setenv(xray.DAEMON_ENV, "169.254.79.129:2000")
    assert xray.daemon_address() == ("169.254.79.129", 2000)
    monkeypatch.setenv(xray.DAEMON_ENV, "tcp:127.0.0.1:2000 udp:127.0.0.2:2001")
    assert xray.daemon_address() == ("127.0.0.2", 2001)


def test_a_throttled_call_is_a_fault_and_a_refused_one_an_error() -> None:
    trace = {"Root": "1-a-b", "Parent": "p"}

    class Failure(Exception):
        def __init__(self, status: int) -> None:
            self.response = {"ResponseMetadata": {"HTTPStatusCode": status}}

    table = {"TableName": "t"}
    refused = xray.subsegment(trace, xray.Span("DynamoDB", "PutItem", "eu-west-1", table, 1, 2, Failure(400)))
    failed = xray.subsegment(trace, xray.Span("DynamoDB", "PutItem", "eu-west-1", {}, 1.0, 2.0, Failure(500)))
    timed_out = xray.subsegment(trace, xray.Span("S3", "GetObject", "eu-west-1", {"Bucket": "b"}, 1, 2, TimeoutError()))
    assert refused["error"] is True and "fault" not in refused and refused["aws"]["table_name"] == "t"
    assert failed["fault"] is True and failed["http"] == {"response": {"status": 500}}
    assert timed_out["fault"] is True and timed_out["aws"]["bucket_name"] == "b"


def test_sending_never_fails_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(xray.DAEMON_ENV, "not-an-address")
    span = xray.Span("DynamoDB", "GetItem", None, {}, 1.0, 2.0)
    xray.send_subsegment("Root=1-a-b;Parent=p;Sampled=1", span)
    xray.send_subsegment("Sampled=1", span)  # no Root: nothing sent


class FakeMeta:
    method_to_api_mapping: ClassVar[dict[str, str]] = {"get_item": "GetItem"}
    region_name = "eu-west-1"

    class service_model:  # noqa: N801 - botocore's attribute name
        service_id = "DynamoDB"


class FakeClient:
    meta = FakeMeta()


def test_calls_are_recorded_only_while_recording_and_only_for_requests() -> None:
    with calls.timed(FakeClient(), "get_item", {}):
        pass  # not recording: nothing to record into
    made, token = calls.start_recording()
    try:
        with calls.timed(FakeClient(), "get_item", {}):
            pass
        with calls.timed(FakeClient(), "generate_presigned_url", {}):
            pass  # signed locally: not a call
        with pytest.raises(KeyError), calls.timed(FakeClient(), "get_item", {}):
            raise KeyError("x")
    finally:
        calls.stop_recording(token)
    assert [(c.service, c.operation, c.failed) for c in made] == [
        ("DynamoDB", "GetItem", False),
        ("DynamoDB", "GetItem", True),
    ]
    assert all(c.ms >= 0 for c in made)


def test_xray_is_not_imported_until_a_sampled_call() -> None:
    code = (
        "import sys\n"
        "from chalicelib.telemetry import aws_calls as calls\n"
        "class M:\n"
        "    method_to_api_mapping = {'get_item': 'GetItem'}\n"
        "    region_name = 'us-east-1'\n"
        "    class service_model: service_id = 'DynamoDB'\n"
        "class C: meta = M()\n"
        "with calls.timed(C(), 'get_item', {}): pass\n"
        "assert 'chalicelib.telemetry.xray' not in sys.modules\n"
        "import os; os.environ['_X_AMZN_TRACE_ID'] = 'Root=1-a-b;Parent=p;Sampled=1'\n"
        "os.environ['AWS_XRAY_DAEMON_ADDRESS'] = '127.0.0.1:9'\n"
        "with calls.timed(C(), 'get_item', {}): pass\n"
        "assert 'chalicelib.telemetry.xray' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
