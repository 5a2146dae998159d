"""The emulator `make run` starts: moto with the local stack's patches, and the stall control that
fault tests use to make DynamoDB slow over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from devstack import moto_patches, stall
from tests.e2e.conftest import Stack

READ_TIMEOUT_S = 1
# Past one read timeout, short of two: the first attempt's answer is late, the resend's is not.
STALL_S = 1.5


def test_the_stack_runs_moto_with_the_patches_applied(stack: Stack) -> None:
    assert stack.info["emulator_patches"] == list(moto_patches.ALL_PATCHES)


def dynamodb(stack: Stack, **config: Any) -> Any:
    return stack.client("dynamodb", proxies={}, **config)


@pytest.fixture
def probe_table(stack: Stack) -> Iterator[str]:
    """A table of its own, so the app's table is left alone."""
    name = f"stall-probe-{uuid.uuid4().hex[:8]}"
    client = dynamodb(stack)
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield name
    finally:
        stack.unstall()
        client.delete_table(TableName=name)


def test_a_stalled_update_is_applied_once_and_resent_by_botocore(stack: Stack, probe_table: str) -> None:
    setup = dynamodb(stack)
    setup.put_item(TableName=probe_table, Item={"id": {"S": "x"}, "version": {"N": "1"}, "applied": {"N": "0"}})
    impatient = dynamodb(
        stack, read_timeout=READ_TIMEOUT_S, connect_timeout=5, retries={"mode": "standard", "max_attempts": 2}
    )
    stack.stall(STALL_S, ["UpdateItem"])
    with pytest.raises(ClientError) as refused:
        impatient.update_item(
            TableName=probe_table,
            Key={"id": {"S": "x"}},
            UpdateExpression="SET version = :next ADD applied :one",
            ConditionExpression="version = :current",
            ExpressionAttributeValues={":current": {"N": "1"}, ":next": {"N": "2"}, ":one": {"N": "1"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    # The first attempt was applied and its answer held back past the read timeout; botocore resent
    # it, and the resend found the condition already spent by its own first attempt.
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert refused.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    assert refused.value.response["Item"]["version"] == {"N": "2"}
    stored = setup.get_item(TableName=probe_table, Key={"id": {"S": "x"}}, ConsistentRead=True)["Item"]
    assert (stored["version"], stored["applied"]) == ({"N": "2"}, {"N": "1"})
    state = stack.stall_state()
    assert (state["matched"], state["stalled"], state["armed"]) == (2, 1, False)


def test_the_stall_control_refuses_bad_input_and_disarms_over_http(stack: Stack) -> None:
    url = stack.info["aws_endpoint_url"] + stall.PATH
    with requests.Session() as session:
        session.trust_env = False
        refused = session.post(url, json={"seconds": -1, "operations": ["UpdateItem"]}, timeout=5)
        assert refused.status_code == 400 and "seconds" in refused.json()["error"]
        assert session.post(url, json={"seconds": 4.5, "operations": ["PutItem"], "count": 3}, timeout=5).json() == {
            "armed": True
        }
        assert session.get(url, timeout=5).json()["remaining"] == 3
        assert session.delete(url, timeout=5).json() == {"armed": False}
        assert session.get(url, timeout=5).json()["armed"] is False
