"""The pre-traffic hook's probes against the real app, imported as Lambda imports it (API Gateway's
authorizer trusted, so only the absence of claims makes /users answer 401)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.unit.test_lambda_import import LAMBDA_ENV, PROJECT_DIR

PROGRAM = """
import io, json
import app
from chalicelib.traffic_hook import PROBES, api_gateway_event, check

class Context:
    aws_request_id = "lambda-request-id"
    function_name = "users-api-prod"
    function_version = "7"
    memory_limit_in_mb = 512
    def get_remaining_time_in_millis(self):
        return 28000

class InProcess:
    # Stands in for lambda.invoke: the event goes through app.app as the Lambda runtime passes it.
    def invoke(self, FunctionName, InvocationType, Payload):
        response = app.app(json.loads(Payload), Context())
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(response).encode())}

print(json.dumps([check(InProcess(), "target", p, api_gateway_event(p, "api", "pre-traffic-d-1")) for p in PROBES]))
"""


def test_a_good_build_of_the_app_passes_both_probes_in_lambda_mode() -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(PROJECT_DIR), **LAMBDA_ENV}
    result = subprocess.run([sys.executable, "-c", PROGRAM], cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [None, None]


STREAM_PROGRAM = """
import json, sys
network = []
sys.addaudithook(lambda event, args: network.append(event) if event.startswith("socket.connect") else None)
import app
from chalicelib.traffic_hook import check_stream_batch, stream_batch_event

class Context:
    aws_request_id = "lambda-request-id"
    function_name = "users-api-prod-changes"
    function_version = "7"
    memory_limit_in_mb = 256
    def get_remaining_time_in_millis(self):
        return 60000

class InProcess:
    # Stands in for lambda.invoke: the batch goes through app.user_changes as Lambda passes it.
    def invoke(self, FunctionName, InvocationType, Payload):
        import io
        response = app.user_changes(json.loads(Payload), Context())
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(response).encode())}

failure = check_stream_batch(InProcess(), "target", stream_batch_event("d-1"))
print(json.dumps({"failure": failure, "network": network}))
"""


def test_the_real_consumer_ignores_the_pre_traffic_batch_and_calls_nothing() -> None:
    """The consumer's hook sends this batch to every new consumer version: the app, imported as the
    consumer's Lambda imports it, must answer it with no failures and without a single AWS call."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(PROJECT_DIR),
        **LAMBDA_ENV,
        "AWS_LAMBDA_FUNCTION_NAME": "users-api-prod-changes",
        "_HANDLER": "app.user_changes",
        "AUDIT_TABLE_NAME": "users-api-prod-audit",
        "EVENT_BUS_NAME": "users-api-prod-changes",
        "REPORT_BATCH_ITEM_FAILURES": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", STREAM_PROGRAM], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"failure": None, "network": []}
