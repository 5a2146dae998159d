"""The emulator's stall control (devstack/stall.py) as SerializedApp serves it, around a fake moto.

Time is only bounded from below (a held answer takes at least its stall), never measured as a target.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from devstack import stall
from devstack.motoserver import SerializedApp
from tests.support.waiting import wait_until

HOLD_S = 0.3


class FakeMoto:
    """A WSGI app that records each request's operation and when it was applied."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, float]] = []
        self.update_applied = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        operation = str(environ.get("HTTP_X_AMZ_TARGET", "-")).rpartition(".")[2]
        self.applied.append((operation, time.monotonic()))
        if operation == "UpdateItem":
            self.update_applied.set()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b"{}"]


@pytest.fixture
def moto() -> FakeMoto:
    return FakeMoto()


@pytest.fixture
def app(moto: FakeMoto) -> SerializedApp:
    return SerializedApp(moto)


def call(app: SerializedApp, method: str = "POST", path: str = "/", target: str | None = None, body: Any = None):
    """(status, JSON body or raw bytes) of one request through `app`."""
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    headers = [("X-Amz-Target", target)] if target else []
    environ = EnvironBuilder(method=method, path=path, headers=headers, data=data).get_environ()
    status: list[str] = []
    payload = b"".join(app(environ, lambda s, _headers: status.append(s)))
    try:
        return status[0], json.loads(payload)
    except ValueError:
        return status[0], payload


def dynamodb(app: SerializedApp, operation: str) -> Any:
    return call(app, target=stall.DYNAMODB_TARGET_PREFIX + operation)


def test_post_arms_get_shows_delete_disarms_and_moto_sees_none_of_it(app: SerializedApp, moto: FakeMoto) -> None:
    armed = call(app, "POST", stall.PATH, body={"seconds": 4.5, "operations": ["UpdateItem"], "count": 2})
    assert armed == ("200 OK", {"armed": True})
    status, state = call(app, "GET", stall.PATH)
    assert status == "200 OK"
    assert state == {
        "armed": True,
        "seconds": 4.5,
        "operations": ["UpdateItem"],
        "remaining": 2,
        "matched": 0,
        "stalled": 0,
    }
    assert call(app, "DELETE", stall.PATH) == ("200 OK", {"armed": False})
    assert call(app, "GET", stall.PATH)[1]["armed"] is False
    assert call(app, "PUT", stall.PATH)[0] == "405 Method Not Allowed"
    assert moto.applied == []
    assert app.requests == 0


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        [4.5],
        {},
        {"seconds": 0},
        {"seconds": -1},
        {"seconds": True},
        {"seconds": "4.5"},
        {"seconds": stall.MAX_SECONDS + 1},
        {"seconds": 1, "operations": "UpdateItem"},
        {"seconds": 1, "operations": [1]},
        {"seconds": 1, "operations": ["updateitem"]},
        {"seconds": 1, "operations": ["Update Item"]},
        {"seconds": 1, "count": 0},
        {"seconds": 1, "count": 1.5},
        {"seconds": 1, "count": True},
        {"seconds": 1, "count": stall.MAX_COUNT + 1},
        {"seconds": 1, "operation": ["UpdateItem"]},
    ],
)
def test_a_bad_body_is_400_and_arms_nothing(app: SerializedApp, body: Any) -> None:
    status, answer = call(app, "POST", stall.PATH, body=body)
    assert status == "400 Bad Request"
    assert answer["error"]
    assert call(app, "GET", stall.PATH)[1]["armed"] is False


def test_null_or_empty_operations_mean_any_dynamodb_operation(app: SerializedApp) -> None:
    operations: list[str] | None
    for operations in (None, []):
        assert call(app, "POST", stall.PATH, body={"seconds": 1, "operations": operations})[0] == "200 OK"
        assert call(app, "GET", stall.PATH)[1]["operations"] == []


def test_a_matching_request_is_applied_then_answered_late_with_the_lock_held(
    app: SerializedApp, moto: FakeMoto
) -> None:
    app.stall(HOLD_S, ["UpdateItem"], count=1)
    answered: dict[str, float] = {}

    def held() -> None:
        started = time.monotonic()
        assert dynamodb(app, "UpdateItem")[0] == "200 OK"
        answered["after"] = time.monotonic() - started

    thread = threading.Thread(target=held)
    thread.start()
    assert moto.update_applied.wait(5)  # applied at once...
    applied_at = moto.applied[0][1]
    assert dynamodb(app, "GetItem")[0] == "200 OK"  # ...and nothing overtakes it
    thread.join(5)
    assert answered["after"] >= HOLD_S  # ...and answered late
    get_applied_at = moto.applied[1][1]
    assert get_applied_at - applied_at >= HOLD_S
    assert [operation for operation, _ in moto.applied] == ["UpdateItem", "GetItem"]

    started = time.monotonic()
    dynamodb(app, "UpdateItem")  # the count is spent: answered at once
    assert time.monotonic() - started < HOLD_S
    assert call(app, "GET", stall.PATH)[1] | {"seconds": None} == {
        "armed": False,
        "seconds": None,
        "operations": ["UpdateItem"],
        "remaining": 0,
        "matched": 2,  # the two UpdateItems, not the GetItem
        "stalled": 1,
    }


def test_only_dynamodb_requests_are_matched(app: SerializedApp, moto: FakeMoto) -> None:
    app.stall(HOLD_S)
    for target in ("AWSCognitoIdentityProviderService.InitiateAuth", "DynamoDBStreams_20120810.GetRecords", None):
        started = time.monotonic()
        call(app, target=target)
        assert time.monotonic() - started < HOLD_S
    assert call(app, "GET", stall.PATH)[1]["matched"] == 0
    started = time.monotonic()
    dynamodb(app, "PutItem")
    assert time.monotonic() - started >= HOLD_S
    assert len(moto.applied) == 4


def test_unstall_lets_an_answer_being_held_back_go(app: SerializedApp, moto: FakeMoto) -> None:
    app.stall(stall.MAX_SECONDS)
    thread = threading.Thread(target=dynamodb, args=(app, "TransactWriteItems"))
    thread.start()
    assert wait_until(lambda: len(moto.applied) == 1)  # applied, answer held back
    app.unstall()
    thread.join(10)
    assert not thread.is_alive()


def test_the_method_refuses_what_the_http_control_refuses(app: SerializedApp) -> None:
    with pytest.raises(stall.BadStallRequest):
        app.stall(0)
    with pytest.raises(stall.BadStallRequest):
        app.stall(1, ["not an operation"])
    with pytest.raises(stall.BadStallRequest):
        app.stall(1, count=0)
