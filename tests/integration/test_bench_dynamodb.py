"""The benchmark's DynamoDB request counts on moto: every operation makes the minimum the core
issue sets, the notes name the calls, and the cost model gets its inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import dynamodb_requests
from bench.context import Context

# The core issue's minimum per operation (an email change: issue 20's, see bench/dynamodb_requests.py).
MINIMUM = {
    "get user": 1,
    "create user": 1,
    "update, email unchanged": 1,
    "list page": 1,
    "update with email change": 3,
    "delete user": 2,
}


def test_every_operation_makes_the_minimum_number_of_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An endpoint in the environment must neither redirect the measurement nor be lost after it.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    context = Context(workdir=tmp_path)

    figures = {figure.name: figure for figure in dynamodb_requests.run(context)}

    assert {name: figures[name].value for name in MINIMUM} == MINIMUM
    judged = [figure for figure in figures.values() if figure.passed is not None]
    assert judged and all(figure.passed for figure in judged)
    assert {figure.target for figure in judged} == {"= 0", "= 1", "= 2", "= 3"}
    # The revocation check: one eventually consistent read for a new caller, nothing for a warm one.
    assert (
        figures["revocation check, new caller"].value == 1 and "GetItem" in figures["revocation check, new caller"].note
    )
    assert figures["revocation check, warm caller"].value == 0
    assert "GetItem + TransactWriteItems (2 items)" in figures["delete user"].note
    assert "UpdateItem + TransactWriteItems (3 items) + GetItem" in figures["update with email change"].note
    assert "Scan (Limit 51)" in figures["list page"].note
    assert figures["create with Idempotency-Key"].value == 3
    assert figures["create replayed"].value == 1
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"


def test_the_cost_model_inputs_are_recorded(tmp_path: Path) -> None:
    context = Context(workdir=tmp_path)
    dynamodb_requests.run(context)
    measured = context.measured
    assert measured["dynamodb.get.requests"] == 1
    assert (measured["dynamodb.get.read_units"], measured["dynamodb.get.write_units"]) == (1, 0)
    assert measured["dynamodb.create.write_units"] == 4  # a two-item transaction
    assert measured["dynamodb.email_change.write_units"] == 1 + 6  # the failed update, then three items
    assert (measured["dynamodb.delete.read_units"], measured["dynamodb.delete.write_units"]) == (1, 4)
    # 51 small items, eventually consistent: 0.5 unit per 4 KB read. Each item carries its write
    # stamps (two 22-character tokens and the writer's sub), which took a page from 1.5 to 2.5 units.
    assert measured["dynamodb.list_page.read_units"] == 2.5
    assert 150 < measured["dynamodb.user_item_bytes"] < 1024
