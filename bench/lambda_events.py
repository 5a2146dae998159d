"""What the deployed function is given: its environment, API Gateway REST (v1 proxy) events with
the claims the Cognito authorizer verified, and a Lambda context object."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.context import PACKAGE_STAGE

# The API function's handler, as Chalice names it (chalicelib.config.API_HANDLER; not imported,
# since the cold start programs load this module beside a package's own chalicelib).
API_HANDLER = "app.app"
REGION = "us-east-1"
ACCOUNT = "123456789012"
POOL_ID = f"{REGION}_BenchPool"
FUNCTION_NAME = f"users-api-{PACKAGE_STAGE}"
MEMORY_MB = 512  # lambda_memory_size in .chalice/config.json
OWNER_SUB = "0f6c2a4e-1b7d-4c55-9a3e-2d8f5b6c7a10"
ADMIN_SUB = "7d1e9b3c-5a2f-4e8d-b6c4-8a0f1e2d3c45"
API_KEY = "bench-api-key-0123456789abcdefghij"
# A bearer token as long as a Cognito ID token: API Gateway passes the header on, and Chalice
# copies every header into its request object.
TOKEN = "eyJraWQiOiJiZW5jaCIsImFsZyI6IlJTMjU2In0." + "x" * 900 + ".signature"

# Inherited variables that would change how the app or botocore behaves (an emulator endpoint,
# the Chalice CLI flag that means "not Lambda", a stray setting of the app, another profile).
_APP_SETTINGS = frozenset(
    {
        "STAGE",
        "TABLE_NAME",
        "USER_POOL_ID",
        "USER_POOL_CLIENT_ID",
        "USER_POOL_ARN",
        "CURSOR_SECRET",
        "CURSOR_SECRET_ARN",
        "CORS_ALLOW_ORIGIN",
        "AVATAR_BUCKET",
        "JWKS_URL",
        "LOG_LEVEL",
        "MAX_BODY_BYTES",
        "REQUIRE_API_KEY",
        "STACK_FILE",
    }
)


def _inherited(name: str) -> bool:
    return not (
        name.startswith(("AWS_", "PYTHON", "_X_AMZN", "_HANDLER", "LAMBDA_", "BOTO_"))
        or name in _APP_SETTINGS
        or name == "VIRTUAL_ENV"
    )


def lambda_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The deployed prod function's environment (as the packaged template sets it, with its
    references resolved to made-up values) and fake credentials; nothing that points elsewhere."""
    from infra.stages import load_stage

    base = os.environ if base is None else base
    stage = load_stage(PACKAGE_STAGE)
    env = {name: value for name, value in base.items() if _inherited(name)}
    env.update(stage.lambda_environment)
    env.update(
        {
            "USER_POOL_ID": POOL_ID,
            "USER_POOL_CLIENT_ID": "benchclientid0123456789abc",
            "USER_POOL_ARN": f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{POOL_ID}",
            "CURSOR_SECRET_ARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{stage.cursor_secret_name}-AbCdEf",
            "AVATAR_BUCKET": stage.avatar_bucket_name(ACCOUNT),
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "_HANDLER": API_HANDLER,  # the API function's: its INIT makes the AWS clients
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # The execution role's temporary credentials, as Lambda sets them (fake: nothing is called).
            "AWS_ACCESS_KEY_ID": "ASIABENCHMARKFAKEKEY",
            "AWS_SECRET_ACCESS_KEY": "bench/fake/secret/access/key/0123456789",
            "AWS_SESSION_TOKEN": "bench-fake-session-token",
            # Lambda has no shared config files; the developer's must not add a region, endpoint or profile.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    return env


def claims(sub: str, email: str, groups: tuple[str, ...] = ()) -> dict[str, str]:
    """ID-token claims as the REST API's Cognito authorizer hands them on: every value a string,
    `cognito:groups` flattened to one (chalicelib/domain/access.py parses both of its spellings)."""
    found = {
        "sub": sub,
        "email": email,
        "email_verified": "true",
        "token_use": "id",
        "aud": "benchclientid0123456789abc",
        "iss": f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}",
        "cognito:username": sub,
        "auth_time": "1700000000",
        "iat": "1700000000",
        "exp": "Tue Nov 14 23:13:20 UTC 2023",
    }
    if groups:
        found["cognito:groups"] = ",".join(groups)
    return found


OWNER_CLAIMS = claims(OWNER_SUB, "owner@example.com")
ADMIN_CLAIMS = claims(ADMIN_SUB, "admin@example.com", ("admins",))


def rest_event(
    method: str,
    resource: str,
    path: str,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    caller: Mapping[str, str] | None = None,
    request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
) -> dict[str, Any]:
    """An API Gateway REST (v1 proxy) event as Lambda receives it; `body` is sent as JSON."""
    headers = {
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate, br",
        "Authorization": f"Bearer {TOKEN}",
        "Host": f"abcdef1234.execute-api.{REGION}.amazonaws.com",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
        "X-Amzn-Trace-Id": "Root=1-65a1b2c3-0123456789abcdef01234567",
        "X-Api-Key": API_KEY,
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    text = None if body is None else json.dumps(body, separators=(",", ":"))
    authorizer = {"claims": dict(caller)} if caller is not None else None
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": "bench-extended-id=",
            "requestTime": "14/Nov/2023:22:13:20 +0000",
            "path": f"/api{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": "api",
            "domainPrefix": "abcdef1234",
            "requestTimeEpoch": 1700000000000,
            "requestId": request_id,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": headers["User-Agent"], "apiKey": API_KEY},
            "domainName": f"abcdef1234.execute-api.{REGION}.amazonaws.com",
            "apiId": "abcdef1234",
            **({"authorizer": authorizer} if authorizer is not None else {}),
        },
        "body": text,
        "isBase64Encoded": False,
    }


def get_user_event(user_id: str = OWNER_SUB, caller: Mapping[str, str] = OWNER_CLAIMS) -> dict[str, Any]:
    return rest_event("GET", "/users/{userId}", f"/users/{user_id}", {"userId": user_id}, caller=caller)


def get_avatar_event(user_id: str = OWNER_SUB, caller: Mapping[str, str] = OWNER_CLAIMS) -> dict[str, Any]:
    path = f"/users/{user_id}/avatar"
    return rest_event("GET", "/users/{userId}/avatar", path, {"userId": user_id}, caller=caller)


def list_users_event(limit: int = 1, caller: Mapping[str, str] = ADMIN_CLAIMS) -> dict[str, Any]:
    """GET /users?limit=1 by an admin: one user and the cursor of the next page (the signed cursor
    needs the cursor key, which the first list request reads)."""
    event = rest_event("GET", "/users", "/users", caller=caller)
    event["queryStringParameters"] = {"limit": str(limit)}
    event["multiValueQueryStringParameters"] = {"limit": [str(limit)]}
    return event


def post_user_event(email: str, caller: Mapping[str, str] = ADMIN_CLAIMS) -> dict[str, Any]:
    body = {"name": "Bench User", "email": email, "phone": "+14155550123"}
    return rest_event("POST", "/users", "/users", body=body, caller=caller)


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that an app may read."""

    aws_request_id: str = "3f1c6d2a-9b8e-4a7f-8c6d-5e4f3a2b1c0d"
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = MEMORY_MB
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}:live"
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "2023/11/14/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 28_000
