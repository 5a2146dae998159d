"""The pre-traffic hook's decisions, with fake Lambda and CodeDeploy clients."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.traffic_hook import (
    FAILED,
    INVOKE_ATTEMPTS,
    PROBES,
    REPORT_ATTEMPTS,
    RETRY_PAUSE_S,
    SUCCEEDED,
    Probe,
    api_gateway_event,
    run,
    run_stream_check,
    stream_batch_event,
    worst_case_s,
)

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
    def __init__(self, failures: int = 0) -> None:
        self.reports: list[dict[str, Any]] = []
        self.failures = failures  # calls that raise before one goes through

    def put_lifecycle_event_hook_execution_status(self, **kwargs: Any) -> dict[str, Any]:
        self.reports.append(kwargs)
        if len(self.reports) <= self.failures:
            raise ConnectionError("CodeDeploy unreachable")
        return {"lifecycleEventHookExecutionId": kwargs["lifecycleEventHookExecutionId"]}


def hook(answer: Callable[[dict[str, Any]], Any]) -> tuple[str, FakeLambda, FakeCodeDeploy]:
    functions, codedeploy = FakeLambda(answer), FakeCodeDeploy()
    return run(EVENT, functions, codedeploy, TARGET, "api", sleep=lambda _: None), functions, codedeploy


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
    assert len(functions.calls) == len(PROBES) * INVOKE_ATTEMPTS  # every probe is tried, each as often as counted
    assert [report["status"] for report in codedeploy.reports] == ["Failed"]


def test_a_throttled_invoke_is_tried_again_after_a_pause_and_a_wrong_answer_is_not() -> None:
    answers: Iterator[Exception | Callable[[dict[str, Any]], Any]] = iter(
        [TimeoutError("throttled"), healthy, lambda e: proxy_response(500, {"error": "x"})]
    )

    def flaky(event: dict[str, Any]) -> Any:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer(event)

    functions, codedeploy, pauses = FakeLambda(flaky), FakeCodeDeploy(), list[float]()
    assert run(EVENT, functions, codedeploy, TARGET, "api", sleep=pauses.append) == FAILED
    assert len(functions.calls) == 3  # /hello twice (raised, then 200), /users once (500: final)
    assert pauses == [RETRY_PAUSE_S]


def test_the_report_is_tried_until_codedeploy_hears_it() -> None:
    functions, codedeploy, pauses = FakeLambda(healthy), FakeCodeDeploy(failures=REPORT_ATTEMPTS - 1), list[float]()
    assert run(EVENT, functions, codedeploy, TARGET, "api", sleep=pauses.append) == SUCCEEDED
    assert len(codedeploy.reports) == REPORT_ATTEMPTS
    assert pauses == [RETRY_PAUSE_S] * (REPORT_ATTEMPTS - 1)


def test_the_worst_case_is_every_attempt_at_its_full_timeouts_plus_the_pauses_and_the_start() -> None:
    # 2 probes x (2 attempts x (5 s connect + 35 s read) + one 2 s pause), then the report's
    # 3 x (5 s + 10 s) + two pauses, after a 10 s start.
    assert worst_case_s(2) == 10 + 2 * (2 * 40 + 2) + (3 * 15 + 2 * 2) == 223
    assert worst_case_s(1) == 141


def test_the_consumer_check_sends_a_batch_the_consumer_ignores_and_wants_no_failures() -> None:
    event = stream_batch_event("d-ABCDEF123", "eu-west-1")
    (record,) = event["Records"]
    assert record["eventName"] == "INSERT" and record["eventSource"] == "aws:dynamodb"
    image = record["dynamodb"]["NewImage"]
    assert "listingId" not in image and "deletedAt" not in image  # neither a user nor a trace

    def consumer(answer: Any) -> tuple[str, FakeLambda, FakeCodeDeploy]:
        functions, codedeploy = FakeLambda(lambda e: answer), FakeCodeDeploy()
        status = run_stream_check(EVENT, functions, codedeploy, TARGET, sleep=lambda _: None)
        return status, functions, codedeploy

    status, functions, codedeploy = consumer({"batchItemFailures": []})
    assert status == SUCCEEDED
    (call,) = functions.calls
    assert (call["FunctionName"], call["InvocationType"]) == (TARGET, "RequestResponse")
    assert json.loads(call["Payload"])["Records"][0]["dynamodb"]["Keys"] == record["dynamodb"]["Keys"]
    assert [report["status"] for report in codedeploy.reports] == ["Succeeded"]
    for wrong in ({"batchItemFailures": [{"itemIdentifier": "1"}]}, None, {"statusCode": 200}):
        assert consumer(wrong)[0] == FAILED
    assert consumer((b'{"errorMessage": "boom"}', "Unhandled"))[0] == FAILED
