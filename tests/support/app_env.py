"""The environment app.py reads at import (route declarations): import this before `app`."""

from __future__ import annotations

import os

from tests.support import tokens

ORIGIN = "https://app.example.com"

# Read when app.py is imported (route declarations), so set before the import below.
os.environ.update(
    {
        "STAGE": "test",
        "USER_POOL_ID": tokens.POOL_ID,
        "USER_POOL_CLIENT_ID": tokens.CLIENT_ID,
        "USER_POOL_ARN": f"arn:aws:cognito-idp:{tokens.REGION}:123456789012:userpool/{tokens.POOL_ID}",
        "CORS_ALLOW_ORIGIN": ORIGIN,
        "CURSOR_SECRET": "functional-test-cursor-secret-0123456789",
        "AVATAR_BUCKET": "users-api-test-avatars",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": tokens.REGION,
        "AWS_REGION": tokens.REGION,
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_LAMBDA_FUNCTION_NAME", None)
