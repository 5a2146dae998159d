"""The benchmark's DynamoDB request counts on moto: every operation makes the minimum the core
issue sets, the notes name the calls, and the cost model gets its inputs."""

from __future__ import annotations

import math
import os

import pytest

from bench import dynamodb_requests
from bench.context import Context
from bench.report import Figure

# The core issue's minimum per operation (an email change: issue 20's, see bench/dynamodb_requests.py).
MINIMUM = {
    "get user": 1,
    "create user": 1,
    "update, email unchanged": 1,
    "list page, one state": 1,
    "find by email": 2,
    "update with email change": 3,
    "delete user": 2,
}


@pytest.fixture(scope="module")
def measured_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Figure], Context, str]:
    """One run of the section for the tests below (its 50-odd users take most of their time): its
    figures, its context, and the endpoint setting as the run left it."""
    with pytest.MonkeyPatch.context() as env:
        # An endpoint in the environment must neither redirect the measurement nor be lost after it.
        env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        context = Context(workdir=tmp_path_factory.mktemp("dynamodb-requests"))
        figures = {figure.name: figure for figure in dynamodb_requests.run(context)}
        return figures, context, os.environ["AWS_ENDPOINT_URL"]


def test_every_operation_makes_the_minimum_number_of_requests(
    measured_run: tuple[dict[str, Figure], Context, str],
) -> None:
    figures, _, endpoint_after = measured_run

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
    # All users: one Query per role#enabled partition (three of them empty here), no Scan.
    assert "Scan" not in " ".join(figure.note for figure in figures.values())
    assert figures["list page"].note.count("Query") >= 4
    assert figures["list page, one state"].note.count("Query") == 1
    assert figures["create with Idempotency-Key"].value == 3
    assert figures["create replayed"].value == 1
    assert endpoint_after == "http://127.0.0.1:9"


def test_the_cost_model_inputs_are_recorded(measured_run: tuple[dict[str, Figure], Context, str]) -> None:
    measured = measured_run[1].measured
    assert measured["dynamodb.get.requests"] == 1
    assert (measured["dynamodb.get.read_units"], measured["dynamodb.get.write_units"]) == (1, 0)
    # Each write of a user is written again in each index it is in: the 3 search indexes and the
    # previous release's listing index, kept for its rollout (a user item is under 1 KB: 1 unit
    # each); a key that moves in an index costs 2 there.
    assert measured["dynamodb.create.write_units"] == 4 + 4  # a two-item transaction, the user entering 4 indexes
    assert measured["dynamodb.create.index_write_units"] == 4
    assert measured["dynamodb.update.write_units"] == 1 + 4 + 1  # its name moves in the name index
    assert measured["dynamodb.update_same_email.write_units"] == 1 + 4
    # The failed update, then three transaction items; the email key moves in the email index.
    assert measured["dynamodb.email_change.write_units"] == 1 + 6 + 5
    assert (measured["dynamodb.delete.read_units"], measured["dynamodb.delete.write_units"]) == (1, 4 + 4)
    # One partition's 50 users of about 490 bytes, eventually consistent: 0.5 unit per 4 KB returned.
    assert measured["dynamodb.list_one_state.read_units"] == 0.5 * math.ceil(
        50 * measured["dynamodb.user_item_bytes"] / 4096
    )
    assert 150 < measured["dynamodb.user_item_bytes"] < 1024
