"""CodeDeploy's pre-traffic (BeforeAllowTraffic) hooks: the API function's and the stream consumer's.

Before CodeDeploy moves a function's `live` alias to a new version, it calls that function's hook.
The hook invokes the new version directly and reports Succeeded or Failed; Failed stops the
deployment and the alias stays on the old version. A version that cannot import, route, enforce
authentication or read a stream batch fails here, before any client or stream record meets it.

- The API function's hook sends API Gateway events: the public `GET /hello` must answer 200 and
  an unauthenticated `GET /users` 401, each with a JSON body. Neither touches the table.
- The consumer's hook sends one synthetic stream batch: a record of an item that is not a user
  (as the table's email reservations are), which the consumer reads and, by design, ignores: it
  must answer an empty `batchItemFailures`. Nothing is published, audited or deleted.

Timing: every call is bounded (connect and read timeouts, a fixed number of attempts with a
fixed pause, botocore's own retries off), so `worst_case_s` is the hook's longest possible run:
tests/infra check it stays well under the hook function's timeout, since a hook cut off before it
reports leaves CodeDeploy waiting about an hour.

Imported only by the hook functions (app.py imports it inside their handlers), never by the API.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], None]

# The qualified ARN of the version under test; the template sets it to the version it publishes.
TARGET_ENV = "TARGET_VERSION_ARN"
API_STAGE_ENV = "API_STAGE"
SUCCEEDED, FAILED = "Succeeded", "Failed"

# --- The time budget ------------------------------------------------------------------------------
# Invoking a version may include its cold start; the API function's own timeout is 28 s and API
# Gateway's 29 s, so an answer later than this is a failure whatever it says.
INVOKE_CONNECT_TIMEOUT_S = 5
INVOKE_READ_TIMEOUT_S = 35
# A throttled or unreachable invoke is tried once more; a wrong answer is never retried.
INVOKE_ATTEMPTS = 2
REPORT_CONNECT_TIMEOUT_S = 5
REPORT_READ_TIMEOUT_S = 10
# The report is what CodeDeploy waits for: it gets the most attempts.
REPORT_ATTEMPTS = 3
RETRY_PAUSE_S = 2
# The hook's own start: its cold start, importing boto3 and making two clients.
START_S = 10
# The share of the hook function's timeout the worst case may use (tests/infra checks it).
TIMEOUT_SHARE = 0.8


def worst_case_s(probes: int) -> int:
    """The longest a hook with `probes` probes can run: each probe's attempts at their full
    timeouts with the pauses between them, then the report's, plus the hook's own start."""
    invoke, report = INVOKE_CONNECT_TIMEOUT_S + INVOKE_READ_TIMEOUT_S, REPORT_CONNECT_TIMEOUT_S + REPORT_READ_TIMEOUT_S
    probing = INVOKE_ATTEMPTS * invoke + (INVOKE_ATTEMPTS - 1) * RETRY_PAUSE_S
    reporting = REPORT_ATTEMPTS * report + (REPORT_ATTEMPTS - 1) * RETRY_PAUSE_S
    return START_S + probes * probing + reporting


def _attempts(call: Callable[[], T], attempts: int, sleep: Sleep) -> T:
    """`call()`, tried up to `attempts` times, RETRY_PAUSE_S apart, while it raises."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception:
            if attempt == attempts:
                raise
            sleep(RETRY_PAUSE_S)
    raise AssertionError("unreachable")  # attempts >= 1


def _invoke(lambda_client: Any, target: str, event: Mapping[str, Any], sleep: Sleep) -> tuple[bytes, str | None]:
    """The version's answer to `event` (its payload and function error), read within the attempts."""

    def once() -> tuple[bytes, str | None]:
        payload = json.dumps(event)
        response = lambda_client.invoke(FunctionName=target, InvocationType="RequestResponse", Payload=payload)
        return response["Payload"].read(), response.get("FunctionError")

    return _attempts(once, INVOKE_ATTEMPTS, sleep)


# --- The API function's probes --------------------------------------------------------------------


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


def check(
    lambda_client: Any, target: str, probe: Probe, event: Mapping[str, Any], sleep: Sleep = time.sleep
) -> str | None:
    """Why the version's answer to `event` is wrong, or None when it is as expected."""
    payload, function_error = _invoke(lambda_client, target, event, sleep)
    if function_error:
        return f"{probe.method} {probe.path}: function error {function_error}"
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


# --- The stream consumer's probe ------------------------------------------------------------------

# The key of the synthetic record: no user's (user ids are Cognito subs) and no table's item.
PROBE_KEY_PREFIX = "PRE-TRAFFIC-CHECK#"
STREAM_PROBE = "stream batch"


def stream_batch_event(deployment_id: str, region: str = "us-east-1") -> dict[str, Any]:
    """One stream record as Lambda's event source mapping delivers it: an INSERT of an item that is
    neither a user nor a deleted user's trace (no `listingId`, no `deletedAt`), which the consumer
    reads and ignores (chalicelib/domain/change_events.py)."""
    keys = {"userId": {"S": f"{PROBE_KEY_PREFIX}{deployment_id}"}}
    return {
        "Records": [
            {
                "eventID": f"pre-traffic-{deployment_id}",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "eventSourceARN": f"arn:aws:dynamodb:{region}:000000000000:table/pre-traffic-check/stream/probe",
                "dynamodb": {
                    "ApproximateCreationDateTime": int(time.time()),
                    "Keys": keys,
                    "NewImage": {**keys, "purpose": {"S": "CodeDeploy pre-traffic check"}},
                    "SequenceNumber": "1",
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        ]
    }


def check_stream_batch(
    lambda_client: Any, target: str, event: Mapping[str, Any], sleep: Sleep = time.sleep
) -> str | None:
    """Why the consumer version's answer to the synthetic batch is wrong, or None: it must be a
    partial batch response that reports no failure."""
    payload, function_error = _invoke(lambda_client, target, event, sleep)
    if function_error:
        return f"{STREAM_PROBE}: function error {function_error}"
    try:
        answer = json.loads(payload)
    except ValueError:
        return f"{STREAM_PROBE}: not a partial batch response"
    if not isinstance(answer, dict) or answer.get("batchItemFailures") != []:
        return f"{STREAM_PROBE}: expected no batchItemFailures, got {json.dumps(answer)[:200]}"
    return None


# --- Running a hook -------------------------------------------------------------------------------

Probing = Callable[[str], str | None]  # request id -> why the answer is wrong, or None


def _run(
    event: Mapping[str, Any], codedeploy_client: Any, target: str, probes: list[tuple[str, Probing]], sleep: Sleep
) -> str:
    deployment_id = str(event["DeploymentId"])
    failures: list[str] = []
    for index, (name, probe) in enumerate(probes):
        try:
            failure = probe(f"pre-traffic-{deployment_id}-{index}")
        except Exception as exc:  # any error while probing means the version is not proven good
            failure = f"{name}: {type(exc).__name__}"
        if failure is not None:
            failures.append(failure)
    status = FAILED if failures else SUCCEEDED
    # Reported whatever happened above: without a report CodeDeploy waits an hour, then fails.
    _attempts(
        lambda: codedeploy_client.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id,
            lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
            status=status,
        ),
        REPORT_ATTEMPTS,
        sleep,
    )
    logger.log(
        logging.ERROR if failures else logging.INFO,
        "pre-traffic hook",
        extra={"deploymentId": deployment_id, "target": target, "status": status, "failures": failures},
    )
    return status


def run(
    event: Mapping[str, Any],
    lambda_client: Any,
    codedeploy_client: Any,
    target: str,
    stage: str,
    sleep: Sleep = time.sleep,
) -> str:
    """Probe the API version `target`, report the outcome to CodeDeploy, and return it."""

    def probing(probe: Probe) -> Probing:
        return lambda request_id: check(
            lambda_client, target, probe, api_gateway_event(probe, stage, request_id), sleep
        )

    probes = [(f"{probe.method} {probe.path}", probing(probe)) for probe in PROBES]
    return _run(event, codedeploy_client, target, probes, sleep)


def run_stream_check(
    event: Mapping[str, Any],
    lambda_client: Any,
    codedeploy_client: Any,
    target: str,
    region: str = "us-east-1",
    sleep: Sleep = time.sleep,
) -> str:
    """Probe the consumer version `target` with the synthetic batch, report, and return the outcome."""
    batch = stream_batch_event(str(event["DeploymentId"]), region)
    probes: list[tuple[str, Probing]] = [
        (STREAM_PROBE, lambda request_id: check_stream_batch(lambda_client, target, batch, sleep))
    ]
    return _run(event, codedeploy_client, target, probes, sleep)


def _clients() -> tuple[Any, Any]:
    """Lambda and CodeDeploy clients whose every call is bounded as worst_case_s counts it:
    botocore's own retries are off, the attempts above are the only ones."""
    import boto3
    from botocore.config import Config

    single = {"mode": "standard", "total_max_attempts": 1}
    invoke = Config(connect_timeout=INVOKE_CONNECT_TIMEOUT_S, read_timeout=INVOKE_READ_TIMEOUT_S, retries=single)
    report = Config(connect_timeout=REPORT_CONNECT_TIMEOUT_S, read_timeout=REPORT_READ_TIMEOUT_S, retries=single)
    return boto3.client("lambda", config=invoke), boto3.client("codedeploy", config=report)


def handle(event: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The API function's hook: its entry point, with real clients."""
    environ = os.environ if environ is None else environ
    functions, codedeploy = _clients()
    return {"status": run(event, functions, codedeploy, environ[TARGET_ENV], environ.get(API_STAGE_ENV, "api"))}


def handle_stream_check(event: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The stream consumer's hook: its entry point, with real clients."""
    environ = os.environ if environ is None else environ
    functions, codedeploy = _clients()
    region = environ.get("AWS_REGION", "us-east-1")
    return {"status": run_stream_check(event, functions, codedeploy, environ[TARGET_ENV], region)}
