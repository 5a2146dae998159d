"""`python -m infra.smoke --stack-name <stack> --region <region>` (or `--url <ApiEndpoint>
--client-id <UserPoolClientId>`): after a deploy, does the stage answer as it should?

- GET /hello: 200 with a JSON body (the public route, through API Gateway and the new version);
- GET /users without a token: 401 (API Gateway's Cognito authorizer is in front);
- GET /users/me with the ID token of a test user: 200 or 404 (signed in; the profile may not exist).

With --stack-name, the endpoint, the app client and (prod) the API key come from the stack: its
outputs ApiEndpoint, UserPoolClientId and ApiKeyId, the key's value from API Gateway, read with the
AWS CLI. The test user's name and password come from SMOKE_USERNAME and SMOKE_PASSWORD (the CI
secrets), never from the command line, where other processes could read them; SMOKE_API_KEY is sent
as x-api-key when set (prod's /users routes need one) and no stack gave one. The token comes from
Cognito (InitiateAuth, USER_PASSWORD_AUTH: the app client's flow; no AWS credentials needed), at
the endpoint the AWS CLI would use (AWS_ENDPOINT_URL_COGNITO_IDP, AWS_ENDPOINT_URL, else the
region's). Standard library and the AWS CLI only. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.aws_cli import Aws, AwsCliError, run_aws, stack_outputs

TIMEOUT_S = 15


class SmokeFailure(Exception):
    pass


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


def _request(url: str, headers: Mapping[str, str], data: bytes | None = None) -> Answer:
    if not url.startswith(("https://", "http://")):  # http: the tests' local server only
        raise SmokeFailure(f"not an HTTP URL: {url}")
    method = "POST" if data else "GET"
    request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)  # noqa: S310 - checked
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - scheme checked above
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    return Answer(status, body)


def id_token(cognito_endpoint: str, client_id: str, username: str, password: str) -> str:
    answer = _request(
        cognito_endpoint,
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
        },
        json.dumps(
            {
                "AuthFlow": "USER_PASSWORD_AUTH",
                "ClientId": client_id,
                "AuthParameters": {"USERNAME": username, "PASSWORD": password},
            }
        ).encode(),
    )
    result = answer.body.get("AuthenticationResult") if isinstance(answer.body, dict) else None
    if answer.status != 200 or not isinstance(result, dict) or "IdToken" not in result:
        body = answer.body if isinstance(answer.body, dict) else {}
        # A challenge (NEW_PASSWORD_REQUIRED, MFA) or Cognito's error type; never the password.
        reason = body.get("ChallengeName") or body.get("__type") or ""
        raise SmokeFailure(f"sign-in of the test user failed: HTTP {answer.status} {reason}".rstrip())
    return str(result["IdToken"])


def _expect(name: str, answer: Answer, statuses: tuple[int, ...]) -> str:
    if answer.status not in statuses or not isinstance(answer.body, dict):
        raise SmokeFailure(f"{name}: HTTP {answer.status}, expected {' or '.join(map(str, statuses))} with a JSON body")
    return f"ok  {name}: {answer.status}"


def run(url: str, token: str, api_key: str = "") -> list[str]:
    """Every check against the stage at `url` (its ApiEndpoint, with or without the final slash)."""
    base = url.rstrip("/")
    key = {"x-api-key": api_key} if api_key else {}
    return [
        _expect("GET /hello", _request(f"{base}/hello", {}), (200,)),
        _expect("GET /users without a token", _request(f"{base}/users", key), (401,)),
        _expect("GET /users/me signed in", _request(f"{base}/users/me", {**key, "Authorization": token}), (200, 404)),
    ]


@dataclass(frozen=True)
class Target:
    url: str
    client_id: str
    api_key: str


def from_stack(stack: str, region: str, aws: Aws) -> Target:
    """The stage's endpoint, app client and API key (prod), as the stack's outputs name them."""
    outputs = stack_outputs(stack, aws, region)
    if outputs is None:
        raise SmokeFailure(f"no stack {stack} in {region}")
    missing = [key for key in ("ApiEndpoint", "UserPoolClientId") if not outputs.get(key)]
    if missing:
        raise SmokeFailure(f"the stack {stack} has no output {', '.join(missing)}")
    key = ""
    if outputs.get("ApiKeyId"):
        arguments = ["apigateway", "get-api-key", "--api-key", outputs["ApiKeyId"], "--include-value"]
        key = aws([*arguments, "--region", region, "--query", "value", "--output", "text"]).strip()
    return Target(outputs["ApiEndpoint"], outputs["UserPoolClientId"], key)


def cognito_endpoint(region: str, environ: Mapping[str, str]) -> str:
    """Where the AWS CLI would send a Cognito request: its endpoint settings, else the region's."""
    for name in ("AWS_ENDPOINT_URL_COGNITO_IDP", "AWS_ENDPOINT_URL"):
        if environ.get(name):
            return environ[name].rstrip("/") + "/"
    return f"https://cognito-idp.{region}.amazonaws.com/"


def main(argv: list[str], environ: Mapping[str, str] = os.environ, aws: Aws = run_aws) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-name", help="the deployed stack: its outputs give the URL, client and API key")
    parser.add_argument("--url", help="the stack's ApiEndpoint output (without --stack-name)")
    parser.add_argument("--client-id", help="the stack's UserPoolClientId output (without --stack-name)")
    parser.add_argument("--region", required=True)
    parser.add_argument("--cognito-endpoint", help="default: as the AWS CLI resolves it (see above)")
    args = parser.parse_args(argv)
    if not args.stack_name and not (args.url and args.client_id):
        parser.error("give --stack-name, or --url and --client-id")
    username, password = environ.get("SMOKE_USERNAME", ""), environ.get("SMOKE_PASSWORD", "")
    if not username or not password:
        print("SMOKE_USERNAME and SMOKE_PASSWORD must name a test user of the stage's pool", file=sys.stderr)
        return 2
    endpoint = args.cognito_endpoint or cognito_endpoint(args.region, environ)
    try:
        if args.stack_name:
            target = from_stack(args.stack_name, args.region, aws)
        else:
            target = Target(args.url, args.client_id, "")
        token = id_token(endpoint, target.client_id, username, password)
        for line in run(target.url, token, target.api_key or environ.get("SMOKE_API_KEY", "")):
            print(line)
    except (SmokeFailure, OSError, AwsCliError) as failure:
        print(f"FAIL {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
