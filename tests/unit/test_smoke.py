"""infra/smoke.py against a local server that plays both the deployed API and Cognito."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.smoke import main

TOKEN = "eyJ.test-id-token.sig"
ENV = {"SMOKE_USERNAME": "smoke@example.com", "SMOKE_PASSWORD": "A-long-Passw0rd!"}


class Stage:
    """What the fake answers; tests break one piece at a time."""

    def __init__(self) -> None:
        self.hello = 200
        self.users_without_token = 401
        self.me = 404
        self.sign_in: dict[str, Any] = {"AuthenticationResult": {"IdToken": TOKEN, "AccessToken": "a"}}
        self.seen: list[tuple[str, str, dict[str, str]]] = []


@pytest.fixture
def stage() -> Iterator[tuple[Stage, str]]:
    state = Stage()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.seen.append(("POST", self.path, {**dict(self.headers), "body": json.dumps(body)}))
            assert self.headers["X-Amz-Target"] == "AWSCognitoIdentityProviderService.InitiateAuth"
            assert body["AuthFlow"] == "USER_PASSWORD_AUTH" and body["ClientId"] == "client-1"
            ok = body["AuthParameters"] == {"USERNAME": ENV["SMOKE_USERNAME"], "PASSWORD": ENV["SMOKE_PASSWORD"]}
            self._answer(200 if ok else 400, state.sign_in if ok else {"__type": "NotAuthorizedException"})

        def do_GET(self) -> None:
            state.seen.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path == "/api/hello":
                self._answer(state.hello, {"message": "Hello from serverless!"})
            elif self.path in ("/api/users", "/api/users/me") and self.headers.get("Authorization") != TOKEN:
                self._answer(state.users_without_token, {"error": "Unauthorized"})
            elif self.path == "/api/users/me":
                self._answer(state.me, {"error": "User not found"} if state.me == 404 else {"userId": "u"})
            else:
                self._answer(404, {"error": "Not found"})

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def smoke(base: str, url_suffix: str = "/api/", env: dict[str, str] = ENV, *extra: str) -> int:
    args = ["--url", base + url_suffix, "--client-id", "client-1", "--region", "us-east-1"]
    return main([*args, "--cognito-endpoint", base + "/", *extra], env)


@pytest.mark.parametrize("suffix", ["/api/", "/api"])  # CloudFormation's and Terraform's endpoint, old or new
def test_a_healthy_stage_passes(stage: tuple[Stage, str], suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    state, base = stage
    assert smoke(base, suffix) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ok  GET /hello: 200",
        "ok  GET /users without a token: 401",
        "ok  GET /users/me signed in: 404",
    ]
    signed_in = [headers for method, path, headers in state.seen if path == "/api/users/me"]
    assert [h["authorization"] for h in signed_in] == [TOKEN]
    unauthenticated = [headers for method, path, headers in state.seen if path == "/api/users"]
    assert ["authorization" in h for h in unauthenticated] == [False]


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("hello", 502, "GET /hello: HTTP 502, expected 200"),
        # /users answering without a token: the authorizer is missing.
        ("users_without_token", 200, "GET /users without a token: HTTP 200, expected 401"),
        ("me", 403, "GET /users/me signed in: HTTP 403, expected 200 or 404"),
        ("sign_in", {"ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": "s"}, "NEW_PASSWORD_REQUIRED"),
    ],
)
def test_each_broken_piece_fails_the_smoke_test(
    stage: tuple[Stage, str], attribute: str, value: Any, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state, base = stage
    setattr(state, attribute, value)
    assert smoke(base) == 1
    assert message in capsys.readouterr().err


def test_wrong_credentials_fail_without_echoing_the_password(
    stage: tuple[Stage, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, base = stage
    assert smoke(base, "/api/", {**ENV, "SMOKE_PASSWORD": "wrong-password-123"}) == 1
    err = capsys.readouterr().err
    assert "HTTP 400 NotAuthorizedException" in err and "wrong-password-123" not in err


def test_credentials_come_from_the_environment_only(stage: tuple[Stage, str]) -> None:
    _, base = stage
    assert smoke(base, "/api/", {}) == 2
    with pytest.raises(SystemExit):
        smoke(base, "/api/", ENV, "--password", "x")


def test_an_api_key_is_sent_when_given(stage: tuple[Stage, str]) -> None:
    state, base = stage
    assert smoke(base, "/api/", {**ENV, "SMOKE_API_KEY": "key-1"}) == 0
    keys = [headers.get("x-api-key") for method, path, headers in state.seen if path.startswith("/api/users")]
    assert keys == ["key-1", "key-1"]


class FakeAws:
    """The AWS CLI as the deploy job has it: the stack's outputs and, for prod, its API key."""

    def __init__(self, outputs: dict[str, str] | None) -> None:
        self.outputs = outputs
        self.calls: list[list[str]] = []

    def __call__(self, arguments: list[str]) -> str:
        from infra.aws_cli import AwsCliError

        self.calls.append(arguments)
        if arguments[:2] == ["cloudformation", "describe-stacks"]:
            if self.outputs is None:
                raise AwsCliError(arguments, "An error occurred (ValidationError): Stack with id x does not exist")
            listed = [{"OutputKey": key, "OutputValue": value} for key, value in self.outputs.items()]
            return json.dumps({"Stacks": [{"StackName": arguments[3], "Outputs": listed}]})
        assert arguments[:2] == ["apigateway", "get-api-key"] and "--include-value" in arguments
        return "key-from-the-stack\n"


def test_the_stack_gives_the_url_the_client_and_prods_api_key(stage: tuple[Stage, str]) -> None:
    """What the deploy job runs after each stage's deploy: everything from the stack's outputs, and
    Cognito where the AWS CLI would find it (here AWS_ENDPOINT_URL, as against an emulator)."""
    state, base = stage
    aws = FakeAws({"ApiEndpoint": base + "/api/", "UserPoolClientId": "client-1", "ApiKeyId": "k-1"})
    env = {**ENV, "AWS_ENDPOINT_URL": base}
    assert main(["--stack-name", "users-api-prod", "--region", "eu-west-1"], env, aws) == 0
    keys = [headers.get("x-api-key") for method, path, headers in state.seen if path.startswith("/api/users")]
    assert keys == ["key-from-the-stack", "key-from-the-stack"]
    assert aws.calls[1][:4] == ["apigateway", "get-api-key", "--api-key", "k-1"]
    assert all(call[call.index("--region") + 1] == "eu-west-1" for call in aws.calls)


def test_staging_has_no_api_key_and_a_missing_stack_fails(
    stage: tuple[Stage, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _state, base = stage
    aws = FakeAws({"ApiEndpoint": base + "/api/", "UserPoolClientId": "client-1"})
    env = {**ENV, "AWS_ENDPOINT_URL": base}
    assert main(["--stack-name", "users-api-staging", "--region", "us-east-1"], env, aws) == 0
    assert len(aws.calls) == 1
    assert main(["--stack-name", "users-api-gone", "--region", "us-east-1"], env, FakeAws(None)) == 1
    assert "FAIL no stack users-api-gone in us-east-1" in capsys.readouterr().err
