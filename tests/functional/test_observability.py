"""What a request leaves behind: one JSON line with its ids, route, status, latency and caller (and,
with metrics on, its EMF metrics), the correlation id echoed back, X-Ray subsegments when sampled."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import config
from chalicelib.web import pipeline
from tests.functional.conftest import Api
from tests.support import tokens

ADMIN = tokens.ADMIN
MEMBER_SUB = str(uuid.uuid4())
MEMBER_EMAIL = "grace.observed@example.com"
MEMBER = tokens.token(sub=MEMBER_SUB, email=MEMBER_EMAIL)
REQUEST_FIELDS = {"requestId", "correlationId", "Method", "Route", "status", "latencyMs", "sub", "coldStart"}


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The JSON lines the app writes, with INFO on (the test stage logs WARNING and up)."""
    logger = logging.getLogger("users_api")
    level = logger.level
    logger.setLevel(logging.INFO)
    config.clear_settings()

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]

    capsys.readouterr()
    yield read
    logger.setLevel(level)
    config.clear_settings()


def request_lines(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry.get("message") == "request"]


def test_one_line_per_request_with_ids_route_status_latency_and_caller(api: Api, lines: Any) -> None:
    response = api.request("GET", f"/users/{MEMBER_SUB}", MEMBER)
    assert response.status_code == 404
    [entry] = request_lines(lines())
    assert REQUEST_FIELDS <= set(entry)
    assert (entry["Method"], entry["Route"], entry["status"]) == ("GET", "/users/{userId}", 404)
    assert entry["sub"] == MEMBER_SUB
    assert entry["latencyMs"] > 0
    # Without X-Correlation-Id, the request id is the correlation id, and it is echoed back.
    assert entry["correlationId"] == entry["requestId"] == response.headers["X-Correlation-Id"]
    assert entry["requestId"]
    assert "apiRequestId" not in entry  # Chalice's test client and local server have no gateway request id


def test_api_gateways_request_id_is_logged_to_join_the_access_log(lines: Any) -> None:
    from types import SimpleNamespace

    from chalice import Response  # type: ignore[attr-defined]

    request = SimpleNamespace(
        context={"requestId": "gw-1", "resourcePath": "/hello", "httpMethod": "GET"},
        headers={},
        lambda_context=SimpleNamespace(aws_request_id="lambda-1"),
    )
    response = pipeline.handle(request, lambda _: Response(body={}), None, ())
    [entry] = request_lines(lines())
    assert (entry["requestId"], entry["apiRequestId"], entry["correlationId"]) == ("lambda-1", "gw-1", "lambda-1")
    assert response.headers["X-Correlation-Id"] == "lambda-1"


def test_the_callers_correlation_id_is_logged_and_echoed(api: Api, lines: Any) -> None:
    response = api.request("GET", "/hello", headers={"X-Correlation-Id": "order-42:retry.1"})
    assert response.headers["X-Correlation-Id"] == "order-42:retry.1"
    [entry] = request_lines(lines())
    assert entry["correlationId"] == "order-42:retry.1"
    assert entry["requestId"] != "order-42:retry.1"
    assert entry["sub"] is None


@pytest.mark.parametrize("given", ["x" * 129, "two words", "line\nbreak", "<script>", ""])
def test_an_implausible_correlation_id_is_replaced_by_the_request_id(api: Api, lines: Any, given: str) -> None:
    response = api.request("GET", "/hello", headers={"X-Correlation-Id": given})
    assert response.status_code == 200
    [entry] = request_lines(lines())
    assert entry["correlationId"] == entry["requestId"] == response.headers["X-Correlation-Id"]


def test_the_correlation_id_is_exposed_to_browsers(api: Api) -> None:
    response = api.request("GET", "/hello")
    assert "X-Correlation-Id" in response.headers["Access-Control-Expose-Headers"]


def test_no_email_token_or_body_is_ever_logged(api: Api, lines: Any, capsys: pytest.CaptureFixture[str]) -> None:
    secret_name = "Name-" + uuid.uuid4().hex
    created = api.request("POST", "/users", ADMIN, {"name": secret_name, "email": MEMBER_EMAIL})
    assert created.status_code == 201
    user_id = created.json_body["user"]["userId"]
    api.request("PUT", f"/users/{user_id}", ADMIN, {"name": secret_name + "2", "email": "New." + MEMBER_EMAIL})
    api.request("GET", f"/users/{user_id}", MEMBER)  # 403
    api.request("POST", "/users", ADMIN, {"name": secret_name, "email": MEMBER_EMAIL.upper()})  # 409
    api.request("GET", "/users/me", "not-a-token")  # 401
    output = json.dumps(lines())
    assert len(request_lines(json.loads(output))) == 5
    for leaked in (MEMBER_EMAIL, MEMBER_EMAIL.upper(), "new.", secret_name, ADMIN, MEMBER, "not-a-token"):
        assert leaked.lower() not in output.lower()


def test_every_log_line_of_a_request_carries_its_ids(api: Api, lines: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr("chalicelib.web.authentication.authenticate", boom)
    response = api.request("GET", "/users/me", MEMBER, headers={"X-Correlation-Id": "trace-me"})
    assert response.status_code == 500
    entries = lines()
    error = next(entry for entry in entries if entry["message"] == "unhandled error")
    assert error["correlationId"] == "trace-me" and error["requestId"]
    assert request_lines(entries)[0]["status"] == 500


# --- metrics (EMF) -------------------------------------------------------------------------


@pytest.fixture
def emf(lines: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("METRICS", "emf")
    monkeypatch.setenv("METRICS_NAMESPACE", "UsersApiTest")
    config.clear_settings()
    return lines


def metric_values(entry: dict[str, Any]) -> dict[str, Any]:
    """Each metric the EMF directives declare, with its value; checks the document's shape."""
    directives = entry["_aws"]["CloudWatchMetrics"]
    assert isinstance(entry["_aws"]["Timestamp"], int)
    values: dict[str, Any] = {}
    for directive in directives:
        assert directive["Namespace"] == "UsersApiTest"
        for dimensions in directive["Dimensions"]:
            assert all(isinstance(entry[name], str) and entry[name] for name in dimensions)
        for metric in directive["Metrics"]:
            values[metric["Name"]] = entry[metric["Name"]]
    return values


def test_metrics_count_requests_latency_and_errors_per_route(api: Api, emf: Any) -> None:
    api.request("GET", "/hello")
    api.request("GET", f"/users/{MEMBER_SUB}", MEMBER)  # 404
    ok, missing = request_lines(emf())
    assert (ok["Stage"], ok["Route"], ok["Method"]) == ("test", "/hello", "GET")
    ok_values, missing_values = metric_values(ok), metric_values(missing)
    assert {k: ok_values[k] for k in ("Requests", "4xx", "5xx")} == {"Requests": 1, "4xx": 0, "5xx": 0}
    assert {k: missing_values[k] for k in ("Requests", "4xx", "5xx")} == {"Requests": 1, "4xx": 1, "5xx": 0}
    assert ok_values["Latency"] > 0
    dimensions = ok["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert dimensions == [["Stage", "Route", "Method"]]


def test_a_5xx_is_counted(api: Api, emf: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chalicelib.web.authentication.authenticate", lambda *a, **k: 1 / 0)
    assert api.request("GET", "/users/me", MEMBER).status_code == 500
    [entry] = request_lines(emf())
    assert metric_values(entry)["5xx"] == 1


def test_the_first_request_of_a_container_is_a_cold_start(api: Api, emf: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "_cold_start", True)
    api.request("GET", "/hello")
    api.request("GET", "/hello")
    first, second = request_lines(emf())
    assert (first["coldStart"], second["coldStart"]) == (True, False)
    assert metric_values(first)["ColdStart"] == 1
    assert "ColdStart" not in metric_values(second) and "ColdStart" not in second


def test_each_dynamodb_call_has_its_latency(api: Api, emf: Any) -> None:
    created = api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada.metrics@example.com"})
    user_id = created.json_body["user"]["userId"]
    api.request("DELETE", f"/users/{user_id}", ADMIN)
    create, delete = request_lines(emf())
    # The sign-in (AdminCreateUser), the record, the invitation (locally: a temporary password).
    assert create["awsCalls"] == 3 and metric_values(create)["DynamoDB.TransactWriteItems"] > 0
    assert {"Cognito Identity Provider.AdminCreateUser", "Cognito Identity Provider.AdminSetUserPassword"} <= set(
        metric_values(create)
    )
    delete_values = metric_values(delete)
    assert {
        "DynamoDB.GetItem",
        "DynamoDB.TransactWriteItems",
        "Cognito Identity Provider.AdminDeleteUser",
        "S3.DeleteObject",
    } <= set(delete_values)
    assert delete["awsCalls"] == 4
    assert delete["awsMs"] >= delete_values["DynamoDB.GetItem"]


def test_metrics_are_written_even_when_the_log_level_hides_info(api: Api, emf: Any) -> None:
    logging.getLogger("users_api").setLevel(logging.WARNING)
    api.request("GET", "/hello")
    [entry] = request_lines(emf())
    assert metric_values(entry)["Requests"] == 1


def test_without_metrics_and_below_info_nothing_is_written(
    api: Api, lines: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS", "off")
    config.clear_settings()
    logging.getLogger("users_api").setLevel(logging.WARNING)
    api.request("GET", "/hello")
    assert request_lines(lines()) == []


# --- X-Ray ---------------------------------------------------------------------------------


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A UDP socket standing in for the X-Ray daemon, and a sampled trace for the request."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{receiver.getsockname()[1]}")
    yield receiver
    receiver.close()


TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"


def subsegments(receiver: socket.socket, count: int) -> list[dict[str, Any]]:
    received = []
    for _ in range(count):
        header, _, body = receiver.recv(65536).partition(b"\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        received.append(json.loads(body))
    return received


def test_sampled_requests_send_a_subsegment_per_aws_call(
    api: Api, daemon: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={TRACE_ROOT};Parent={PARENT};Sampled=1")
    created = api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada.traced@example.com"})
    user_id = created.json_body["user"]["userId"]
    api.request("GET", f"/users/{user_id}", ADMIN)
    sign_in, write, invitation, read = subsegments(daemon, 4)
    assert (sign_in["name"], invitation["name"]) == ("Cognito Identity Provider", "Cognito Identity Provider")
    assert (sign_in["aws"]["operation"], invitation["aws"]["operation"]) == ("AdminCreateUser", "AdminSetUserPassword")
    for document in (write, read):
        assert document["type"] == "subsegment" and document["namespace"] == "aws"
        assert (document["trace_id"], document["parent_id"], document["name"]) == (TRACE_ROOT, PARENT, "DynamoDB")
        assert len(document["id"]) == 16 and document["end_time"] >= document["start_time"] > 1_600_000_000
        assert "error" not in document and "fault" not in document
    assert write["aws"]["operation"] == "TransactWriteItems"
    assert read["aws"] == {"operation": "GetItem", "region": tokens.REGION, "table_name": read["aws"]["table_name"]}
    assert read["aws"]["table_name"].startswith("users")


def test_a_failed_call_is_marked_as_an_error(api: Api, daemon: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    created = api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada.conflict@example.com"})
    assert created.status_code == 201
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={TRACE_ROOT};Parent={PARENT};Sampled=1")
    again = api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada.conflict@example.com"})
    assert again.status_code == 409
    [document] = subsegments(daemon, 1)
    assert document["error"] is True and document["http"] == {"response": {"status": 400}}


def test_unsampled_requests_send_nothing(api: Api, daemon: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={TRACE_ROOT};Parent={PARENT};Sampled=0")
    api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada.unsampled@example.com"})
    daemon.settimeout(0.2)
    with pytest.raises(TimeoutError):
        daemon.recv(65536)
