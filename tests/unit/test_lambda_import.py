"""Importing the app as Lambda does loads nothing only local or test code needs, and no AWS SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cold_start import WATCHED

PROJECT_DIR = Path(__file__).resolve().parents[2]
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "users-api-prod",
    "STAGE": "prod",
    "TABLE_NAME": "users-api-prod",
    "USER_POOL_ID": "us-east-1_example",
    "USER_POOL_CLIENT_ID": "client",
    "USER_POOL_ARN": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_example",
    "CURSOR_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cursor",
    "CORS_ALLOW_ORIGIN": "https://app.example.com",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def test_the_lambda_import_loads_no_sdk_and_nothing_local() -> None:
    code = "import sys, json, app; print(json.dumps(sorted(sys.modules)))"
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(PROJECT_DIR), **LAMBDA_ENV}
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert "app" in loaded and "chalicelib.pipeline" in loaded
    assert [name for name in WATCHED if name in loaded] == []
