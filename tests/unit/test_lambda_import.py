"""What importing the app makes, by where it runs. Lambda's INIT of the API function makes every
AWS client (and calls nothing); a local or test import loads no AWS SDK at all, so tests can set
their environment and inject their clients after importing the app; the hook function, which
shares app.py, makes none. Nothing only local or test code needs is ever loaded on Lambda."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.cold_start import INIT_SDK, NEVER_ON_LAMBDA

PROJECT_DIR = Path(__file__).resolve().parents[2]
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "users-api-prod",
    "STAGE": "prod",
    "TABLE_NAME": "users-api-prod",
    "USER_POOL_ID": "us-east-1_example",
    "USER_POOL_CLIENT_ID": "client",
    "USER_POOL_ARN": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_example",
    "CURSOR_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cursor",
    "AVATAR_BUCKET": "users-api-prod-avatars-123456789012",
    "CORS_ALLOW_ORIGIN": "https://app.example.com",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # Lambda always gives the function its role's credentials; without them botocore would ask
    # the instance metadata service, a network call.
    "AWS_ACCESS_KEY_ID": "ASIATESTFAKEKEY",
    "AWS_SECRET_ACCESS_KEY": "test/fake/secret",
    "AWS_SESSION_TOKEN": "test-fake-token",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
LOCAL_ENV = {
    "STAGE": "test",
    "TABLE_NAME": "users-test",
    "USER_POOL_ID": "us-east-1_example",
    "USER_POOL_CLIENT_ID": "client",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# What would reach the network, as CPython audits it. (urllib3 probes for IPv6 at import by binding
# a socket to ::1, which reaches nothing.)
NETWORK_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto", "socket.sendmsg")
# Records every such event from before `import app` until after it.
PROGRAM = f"""
import json, sys
network = []
sys.addaudithook(lambda event, args: network.append(event) if event in {NETWORK_EVENTS!r} else None)
import app
from chalicelib.adapters import aws
print(json.dumps({{"modules": sorted(sys.modules), "clients": sorted(aws.made_clients()), "network": network}}))
"""


def import_app(env: dict[str, str]) -> dict[str, Any]:
    full = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(PROJECT_DIR), **env}
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=PROJECT_DIR, env=full, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert "app" in found["modules"] and "chalicelib.web.pipeline" in found["modules"]
    return found


def test_lambda_init_makes_the_clients_of_every_request_without_a_network_call_and_nothing_local() -> None:
    found = import_app(LAMBDA_ENV)

    # S3's and Secrets Manager's are made by the first avatar or list request (chalicelib/bootstrap.py).
    assert found["clients"] == ["cognito-idp", "dynamodb"]
    assert found["network"] == []
    assert [name for name in INIT_SDK if name not in found["modules"]] == []
    assert [name for name in NEVER_ON_LAMBDA if name in found["modules"]] == []


def test_a_local_import_loads_no_sdk_and_makes_no_client() -> None:
    found = import_app(LOCAL_ENV)

    assert found["clients"] == []
    assert [name for name in (*INIT_SDK, *NEVER_ON_LAMBDA) if name in found["modules"]] == []


def test_the_hook_function_init_makes_no_api_client() -> None:
    found = import_app({**LAMBDA_ENV, "_HANDLER": "app.pre_traffic_hook"})

    assert found["clients"] == []
    assert [name for name in INIT_SDK if name in found["modules"]] == []
