"""The pre-traffic hook's decisions, with fake Lambda and CodeDeploy clients."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.traffic_hook import FAILED, PROBES, SUCCEEDED, Probe, api_gateway_event, run

TARGET = "arn:aws:lambda:us-east-1:123456789012:function:users-api-prod:7"
EVENT = {"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "hook-execution-1"}


def proxy_response(status: int, body: Any = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def healthy(event: dict[str, Any]) -> dict[str, Any]:
    if event["path"] == "/hello":
        return proxy_response(200, {"message": "Hello from serverless!"})
    return proxy_response(401, {"error": "Unauthorized"})


class FakeLambda:
    """Answers each invoke with `answer(event)`: a proxy response, or (payload bytes, function error)."""

    def __init__(self, answer: Callable[[dict[str, Any]], Any]) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        answer = self.answer(json.loads(kwargs["Payload"]))
        payload, error = answer if isinstance(answer, tuple) else (json.dumps(answer).encode(), None)
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(payload)}
        if error:
            response["FunctionError"] = error
        return response


class FakeCodeDeploy:
    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []

    def put_lifecycle_event_hook_execution_status(self, **kwargs: Any) -> dict[str, Any]:
        self.reports.append(kwargs)
        return {"lifecycleEventHookExecutionId": kwargs["lifecycleEventHookExecutionId"]}


def hook(answer: Callable[[dict[str, Any]], Any]) -> tuple[str, FakeLambda, FakeCodeDeploy]:
    functions, codedeploy = FakeLambda(answer), FakeCodeDeploy()
    return run(EVENT, functions, codedeploy, TARGET, "api"), functions, codedeploy


def test_a_healthy_version_passes_and_codedeploy_hears_it() -> None:
    status, functions, codedeploy = hook(healthy)
    assert status == SUCCEEDED
    assert codedeploy.reports == [
        {"deploymentId": "d-ABCDEF123", "lifecycleEventHookExecutionId": "hook-execution-1", "status": "Succeeded"}
    ]
    # Each probe goes to the version under test, synchronously.
    assert [(c["FunctionName"], c["InvocationType"]) for c in functions.calls] == [(TARGET, "RequestResponse")] * 2
    sent = [json.loads(c["Payload"]) for c in functions.calls]
    assert [(e["httpMethod"], e["path"]) for e in sent] == [("GET", "/hello"), ("GET", "/users")]


def test_the_probes_are_the_public_route_and_a_protected_one_without_a_token() -> None:
    assert PROBES == (Probe("GET", "/hello", 200), Probe("GET", "/users", 401))
    event = api_gateway_event(PROBES[1], "api", "pre-traffic-d-1-1")
    assert event["requestContext"]["resourcePath"] == "/users"
    assert event["requestContext"]["stage"] == "api"
    assert event["requestContext"]["requestId"] == "pre-traffic-d-1-1"
    assert "authorizer" not in event["requestContext"]  # no claims: a caller without a token
    assert "authorization" not in {name.lower() for name in event["headers"]}
    assert event["headers"] == {name: values[0] for name, values in event["multiValueHeaders"].items()}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda e: proxy_response(500, {"error": "Internal server error"}), "GET /hello: status 500, expected 200"),
        # An unprotected /users (a route that lost its authorizer check) answers 200 without a token.
        (lambda e: proxy_response(200, {"users": []}), "GET /users: status 200, expected 401"),
        (lambda e: (b'{"errorMessage": "No module named app"}', "Unhandled"), "function error Unhandled"),
        (lambda e: (b"not json", None), "not an API Gateway proxy response"),
        (lambda e: proxy_response(200, "a string") if e["path"] == "/hello" else healthy(e), "not a JSON object"),
    ],
)
def test_a_wrong_answer_fails_the_deployment(
    answer: Callable[[dict[str, Any]], Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    status, _, codedeploy = hook(answer)
    assert status == FAILED
    assert [report["status"] for report in codedeploy.reports] == ["Failed"]
    (record,) = [r for r in caplog.records if r.name == "chalicelib.traffic_hook"]
    assert any(reason in failure for failure in record.failures)  # type: ignore[attr-defined]


def test_an_invoke_that_raises_still_reports_failed() -> None:
    def unreachable(event: dict[str, Any]) -> Any:
        raise TimeoutError("read timeout")

    status, functions, codedeploy = hook(unreachable)
    assert status == FAILED
    assert len(functions.calls) == 2  # every probe is tried
    assert [report["status"] for report in codedeploy.reports] == ["Failed"]
