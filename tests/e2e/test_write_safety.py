"""Write safety over HTTP against the running stack, with the emulator stalled as DynamoDB is in life.

`Stack.stall` makes the emulator apply a request and then hold its answer back (and every other
request behind it) for longer than botocore's read timeout, so the app's client resends it
while the first attempt has already been applied. The API must answer truthfully and the data
must move once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from chalicelib.adapters.aws import READ_TIMEOUT_ENV
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_races import table_items
from tests.support import local_api

# This module's own stack answers late past a read timeout of 1 s (AWS_READ_TIMEOUT_S, a local
# stage's knob; deployed it is 3 s): the same mechanism, a third of the waiting.
READ_TIMEOUT_S = 1
# Just over one read timeout: the first attempt is applied, its answer lost, one resend.
OVER_ONE_TIMEOUT_S = 1.5 * READ_TIMEOUT_S
TIMEOUT = 60


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("slow"), {READ_TIMEOUT_ENV: str(READ_TIMEOUT_S)}) as running:
        yield running


# Long enough for a write whose every attempt the emulator answers late.
call = partial(local_api.call, timeout=TIMEOUT)


def new_user(stack: Stack, admin: str) -> dict[str, Any]:
    email = f"slow-{uuid.uuid4().hex[:10]}@example.com"
    response = call(stack, "POST", "/users", admin, {"name": "Ada", "email": email})
    assert response.status_code == 201, response.text
    return dict(response.json()["user"])


def users_with_email(stack: Stack, email: str) -> list[dict[str, Any]]:
    return [item for item in table_items(stack) if "listingId" in item and item["email"]["S"] == email]


def test_a_plain_update_with_its_answer_lost_once_is_200_and_applied_once(stack: Stack) -> None:
    admin = stack.token()
    user = new_user(stack, admin)
    stack.stall(OVER_ONE_TIMEOUT_S, ["UpdateItem"])
    response = call(stack, "PUT", f"/users/{user['userId']}", admin, {"name": "Ada King"})
    assert response.status_code == 200, response.text
    assert response.json()["user"]["version"] == 2
    assert call(stack, "GET", f"/users/{user['userId']}", admin).json()["version"] == 2  # not 3


def test_an_update_with_if_match_with_its_answer_lost_once_is_200_not_412(stack: Stack) -> None:
    admin = stack.token()
    user = new_user(stack, admin)
    etag = call(stack, "GET", f"/users/{user['userId']}", admin).headers["ETag"]
    stack.stall(OVER_ONE_TIMEOUT_S, ["UpdateItem"])
    response = call(stack, "PUT", f"/users/{user['userId']}", admin, {"name": "Ada King"}, headers={"If-Match": etag})
    assert response.status_code == 200, response.text


def test_a_create_with_its_answer_lost_once_is_201_not_409(stack: Stack) -> None:
    admin = stack.token()
    email = f"slow-{uuid.uuid4().hex[:10]}@example.com"
    stack.stall(OVER_ONE_TIMEOUT_S, ["TransactWriteItems"])
    response = call(stack, "POST", "/users", admin, {"name": "Ada", "email": email})
    assert response.status_code == 201, response.text
    assert [item["userId"]["S"] for item in users_with_email(stack, email)] == [response.json()["user"]["userId"]]


def test_an_update_whose_every_answer_is_lost_is_503_and_applied_once(stack: Stack) -> None:
    admin = stack.token()
    user = new_user(stack, admin)
    stack.stall(OVER_ONE_TIMEOUT_S, ["UpdateItem"], count=3)  # every attempt botocore makes
    response = call(stack, "PUT", f"/users/{user['userId']}", admin, {"name": "Ada King"})
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    assert "may or may not have been applied" in response.json()["error"]
    assert call(stack, "GET", f"/users/{user['userId']}", admin).json()["version"] == 2  # not 4


def test_a_keyed_create_retried_after_a_503_ends_with_one_user_and_a_201(stack: Stack) -> None:
    admin = stack.token()
    email = f"slow-{uuid.uuid4().hex[:10]}@example.com"
    body, key = {"name": "Ada", "email": email}, {"Idempotency-Key": f"slow-{uuid.uuid4()}"}
    stack.stall(OVER_ONE_TIMEOUT_S, ["TransactWriteItems"], count=3)
    first = call(stack, "POST", "/users", admin, body, headers=key)
    assert first.status_code == 503, first.text
    assert len(users_with_email(stack, email)) == 1  # it did happen, whatever the 503 said
    retry = call(stack, "POST", "/users", admin, body, headers=key)
    assert retry.status_code == 201, retry.text
    stored = users_with_email(stack, email)
    assert [item["userId"]["S"] for item in stored] == [retry.json()["user"]["userId"]]
