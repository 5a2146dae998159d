"""CodeDeploy's pre-traffic (BeforeAllowTraffic) hook for the API function.

Before CodeDeploy moves any traffic to a new version of the API function, it calls this hook.
The hook invokes that version directly with API Gateway events: the public `GET /hello` must
answer 200 and an unauthenticated `GET /users` 401, each with a JSON body. Neither touches the
table. The hook then reports Succeeded or Failed; Failed stops the deployment and traffic stays on
the old version. A version that cannot import, route or enforce authentication fails here, before
any client sees it.

Imported only by the hook function (app.py imports it inside the handler), never by the API.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# The qualified ARN of the version under test; the template sets it to the version it publishes.
TARGET_ENV = "TARGET_VERSION_ARN"
API_STAGE_ENV = "API_STAGE"
SUCCEEDED, FAILED = "Succeeded", "Failed"
# Invoking a version may include its cold start; API Gateway's own limit is 29 s.
INVOKE_READ_TIMEOUT_S = 35


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    expected_status: int


PROBES = (Probe("GET", "/hello", 200), Probe("GET", "/users", 401))


def api_gateway_event(probe: Probe, stage: str, request_id: str) -> dict[str, Any]:
    """A REST API proxy event for `probe` as API Gateway sends it: no Authorization header and no
    authorizer claims, as for a caller without a token."""
    headers = {"Accept": "application/json", "User-Agent": "users-api-pre-traffic-hook", "X-Correlation-Id": request_id}
    return {
        "resource": probe.path,
        "path": probe.path,
        "httpMethod": probe.method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": probe.path,
            "httpMethod": probe.method,
            "path": f"/{stage}{probe.path}",
            "stage": stage,
            "requestId": request_id,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers["User-Agent"]},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def check(lambda_client: Any, target: str, probe: Probe, event: Mapping[str, Any]) -> str | None:
    """Why the version's answer to `event` is wrong, or None when it is as expected."""
    response = lambda_client.invoke(FunctionName=target, InvocationType="RequestResponse", Payload=json.dumps(event))
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        return f"{probe.method} {probe.path}: function error {response['FunctionError']}"
    try:
        answer = json.loads(payload)
        status = answer["statusCode"]
        body = json.loads(answer.get("body") or "null")
    except (ValueError, TypeError, KeyError):
        return f"{probe.method} {probe.path}: not an API Gateway proxy response"
    if status != probe.expected_status:
        return f"{probe.method} {probe.path}: status {status}, expected {probe.expected_status}"
    if not isinstance(body, dict):
        return f"{probe.method} {probe.path}: body is not a JSON object"
    return None


def run(event: Mapping[str, Any], lambda_client: Any, codedeploy_client: Any, target: str, stage: str) -> str:
    """Probe `target`, report the outcome to CodeDeploy, and return it."""
    deployment_id = str(event["DeploymentId"])
    failures: list[str] = []
    for index, probe in enumerate(PROBES):
        request_id = f"pre-traffic-{deployment_id}-{index}"
        try:
            failure = check(lambda_client, target, probe, api_gateway_event(probe, stage, request_id))
        except Exception as exc:  # any error while probing means the version is not proven good
            failure = f"{probe.method} {probe.path}: {type(exc).__name__}"
        if failure is not None:
            failures.append(failure)
    status = FAILED if failures else SUCCEEDED
    # Reported whatever happened above: without a report CodeDeploy waits an hour, then fails.
    codedeploy_client.put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id,
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    logger.log(
        logging.ERROR if failures else logging.INFO,
        "pre-traffic hook",
        extra={"deploymentId": deployment_id, "target": target, "status": status, "failures": failures},
    )
    return status


def handle(event: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The hook function's entry point, with real clients."""
    import boto3
    from botocore.config import Config

    environ = os.environ if environ is None else environ
    target = environ[TARGET_ENV]
    config = Config(read_timeout=INVOKE_READ_TIMEOUT_S, retries={"mode": "standard", "total_max_attempts": 2})
    status = run(
        event,
        boto3.client("lambda", config=config),
        boto3.client("codedeploy"),
        target,
        environ.get(API_STAGE_ENV, "api"),
    )
    return {"status": status}
