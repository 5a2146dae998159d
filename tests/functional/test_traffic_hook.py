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
