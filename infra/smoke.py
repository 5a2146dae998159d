"""`python -m infra.smoke --url <ApiEndpoint> --client-id <UserPoolClientId> --region <region>`:
after a deploy, does the stage answer as it should?

- GET /hello: 200 with a JSON body (the public route, through API Gateway and the new version);
- GET /users without a token: 401 (API Gateway's Cognito authorizer is in front);
- GET /users/me with the ID token of a test user: 200 or 404 (signed in; the profile may not exist).

The test user's name and password come from SMOKE_USERNAME and SMOKE_PASSWORD (the CI secrets),
never from the command line, where other processes could read them; SMOKE_API_KEY is sent as
x-api-key when set (prod's /users routes need one). The token comes from Cognito
(InitiateAuth, USER_PASSWORD_AUTH: the app client's flow; no AWS credentials needed). Standard
library only. Exit status 1 when a check fails.
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


def main(argv: list[str], environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the stack's ApiEndpoint output")
    parser.add_argument("--client-id", required=True, help="the stack's UserPoolClientId output")
    parser.add_argument("--region", required=True)
    parser.add_argument("--cognito-endpoint", help="default: https://cognito-idp.<region>.amazonaws.com/")
    args = parser.parse_args(argv)
    username, password = environ.get("SMOKE_USERNAME", ""), environ.get("SMOKE_PASSWORD", "")
    if not username or not password:
        print("SMOKE_USERNAME and SMOKE_PASSWORD must name a test user of the stage's pool", file=sys.stderr)
        return 2
    endpoint = args.cognito_endpoint or f"https://cognito-idp.{args.region}.amazonaws.com/"
    try:
        token = id_token(endpoint, args.client_id, username, password)
        for line in run(args.url, token, environ.get("SMOKE_API_KEY", "")):
            print(line)
    except (SmokeFailure, OSError) as failure:
        print(f"FAIL {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
