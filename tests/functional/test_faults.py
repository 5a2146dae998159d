"""DynamoDB faults injected below botocore's retry handler (tests/support/dynamodb_faults.py):
the retries run, then a clean 503."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from chalicelib.adapters import aws
from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.web.errors import RETRY_AFTER_S
from tests.functional.conftest import Api
from tests.functional.test_users_api import ADMIN, assert_error, create
from tests.support.dynamodb_faults import Faults, aws_error, raise_

UNAVAILABLE = {"error": ServiceUnavailable.message}


def assert_unavailable(response: Any) -> None:
    body = assert_error(response, 503)
    assert body == UNAVAILABLE
    assert response.headers["Retry-After"] == RETRY_AFTER_S
    text = response.body.decode().lower()
    for leak in ("throttl", "dynamo", "aws", "timeout", "injected", "amazon"):
        assert leak not in text


@pytest.mark.parametrize(
    "fault",
    [
        aws_error(400, "ThrottlingException"),
        aws_error(400, "ProvisionedThroughputExceededException"),
        aws_error(500, "InternalServerError"),
        aws_error(503, "ServiceUnavailable"),
        raise_(ReadTimeoutError(endpoint_url="https://dynamodb")),
        raise_(ConnectTimeoutError(endpoint_url="https://dynamodb")),
        raise_(EndpointConnectionError(endpoint_url="https://dynamodb")),
    ],
    ids=["throttling", "throughput", "500", "503", "read-timeout", "connect-timeout", "connection"],
)
def test_a_persistent_fault_is_retried_then_503(api: Api, faults: Faults, fault: Any) -> None:
    user = create(api)
    faults.attempts.clear()
    faults.inject("GetItem", fault)
    assert_unavailable(api.request("GET", f"/users/{user['userId']}", ADMIN))
    assert faults.attempts == {"GetItem": aws.MAX_ATTEMPTS}


def test_a_fault_that_clears_within_the_retries_is_invisible(api: Api, faults: Faults) -> None:
    faults.inject("TransactWriteItems", aws_error(400, "ThrottlingException"), times=aws.MAX_ATTEMPTS - 1)
    response = api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada@example.com"})
    assert response.status_code == 201
    assert faults.attempts == {"TransactWriteItems": aws.MAX_ATTEMPTS}


@pytest.mark.parametrize(
    ("method", "operation"),
    [("POST", "TransactWriteItems"), ("PUT", "UpdateItem"), ("LIST", "Query"), ("DELETE", "TransactWriteItems")],
)
def test_every_write_and_the_listing_answer_503_and_change_nothing(
    api: Api, faults: Faults, ddb: Any, method: str, operation: str
) -> None:
    user = create(api)
    before = ddb.scan(TableName="users-test")["Items"]
    faults.inject(operation, aws_error(400, "ThrottlingException"))
    requests = {
        "POST": ("POST", "/users", {"name": "Bo", "email": "bo@example.com"}),
        "PUT": ("PUT", f"/users/{user['userId']}", {"name": "Bo"}),
        "LIST": ("GET", "/users", None),
        "DELETE": ("DELETE", f"/users/{user['userId']}", None),
    }
    verb, path, body = requests[method]
    assert_unavailable(api.request(verb, path, ADMIN, body))
    faults.close()
    assert sorted(map(str, ddb.scan(TableName="users-test")["Items"])) == sorted(map(str, before))


def test_a_transaction_cancelled_by_throttling_is_503_not_a_conflict(api: Api, faults: Faults) -> None:
    reasons = [{"Code": "ThrottlingError", "Message": "injected"}, {"Code": "None"}]
    faults.inject("TransactWriteItems", aws_error(400, "TransactionCanceledException", CancellationReasons=reasons))
    assert_unavailable(api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada@example.com"}))


def test_an_unexpected_aws_error_is_a_bare_500(api: Api, faults: Faults) -> None:
    faults.inject("GetItem", aws_error(400, "AccessDeniedException"))
    response = api.request("GET", "/users/me", ADMIN)
    assert_error(response, 500)
    assert response.json_body == {"error": "Internal server error"}
    assert "AccessDenied" not in response.body.decode()


def test_an_idempotent_create_that_failed_can_be_retried_with_its_key(api: Api, faults: Faults) -> None:
    body = {"name": "Ada", "email": "ada@example.com"}
    faults.inject("TransactWriteItems", aws_error(400, "ThrottlingException"), times=aws.MAX_ATTEMPTS)
    assert_unavailable(api.request("POST", "/users", ADMIN, body, headers={"Idempotency-Key": "k-1"}))
    retry = api.request("POST", "/users", ADMIN, body, headers={"Idempotency-Key": "k-1"})
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry.headers
