"""Change events over real HTTP against the running local stack: its stream delivered to the app's
consumer within about a second of each write, the history route, and `.local/events.jsonl`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jwt

from chalicelib.adapters.audit_log import DynamoAuditLog
from chalicelib.adapters.avatars import AvatarStore
from chalicelib.adapters.event_bus import SOURCE, LocalEventBusPublisher
from chalicelib.adapters.stream_records import stream_change
from chalicelib.domain.change_consumer import ChangeConsumer
from devstack.streams import StreamReader, stream_arn
from tests.e2e.conftest import Stack
from tests.support.local_api import call
from tests.support.waiting import wait_until

# The poller reads every 0.2 s, so an idle stack delivers well within a second; the patience is for
# a backlog other tests of the session may have left (each record is three emulator requests).
DELIVERY_S = 30.0


def history(stack: Stack, token: str, user_id: str) -> list[dict[str, Any]]:
    response = call(stack, "GET", f"/users/{user_id}/history?limit=100", token)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def published(stack: Stack, user_id: str) -> list[dict[str, Any]]:
    path = Path(stack.info["events_file"])
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    return [entry for entry in entries if json.loads(entry["Detail"])["userId"] == user_id]


def until_history(stack: Stack, token: str, user_id: str, count: int) -> list[dict[str, Any]]:
    assert wait_until(lambda: len(history(stack, token, user_id)) >= count, DELIVERY_S), history(stack, token, user_id)
    return history(stack, token, user_id)


def test_create_rename_email_change_delete_are_the_history_and_the_published_events(stack: Stack) -> None:
    admin = stack.token()
    admin_sub = jwt.decode(admin, options={"verify_signature": False})["sub"]
    created = call(stack, "POST", "/users", admin, {"name": "Ada", "email": f"ada-{uuid.uuid4().hex[:8]}@example.com"})
    assert created.status_code == 201, created.text
    user_id = created.json()["user"]["userId"]
    assert call(stack, "PUT", f"/users/{user_id}", admin, {"name": "Ada King"}).status_code == 200
    new_email = f"ada-{uuid.uuid4().hex[:8]}@lovelace.example"
    assert call(stack, "PUT", f"/users/{user_id}", admin, {"email": new_email}).status_code == 200
    assert call(stack, "DELETE", f"/users/{user_id}", admin).status_code == 200

    events = until_history(stack, admin, user_id, 4)
    assert [(e["type"], e["actor"], e["changed"]) for e in events] == [
        ("UserCreated", admin_sub, ["name", "email", "role", "enabled"]),
        ("UserUpdated", admin_sub, ["name"]),
        ("UserUpdated", admin_sub, ["email"]),
        ("UserDeleted", admin_sub, ["name", "email", "role", "enabled"]),
    ]
    entries = published(stack, user_id)
    assert len(entries) == 4
    assert [(entry["Source"], entry["DetailType"]) for entry in entries] == [(SOURCE, e["type"]) for e in events]
    assert all(entry["EventBusName"] == stack.info["event_bus_name"] for entry in entries)
    assert [json.loads(entry["Detail"]) for entry in entries] == [{**e, "userId": user_id} for e in events]


def test_failed_writes_add_nothing_and_a_redelivered_stream_adds_nothing(stack: Stack) -> None:
    admin = stack.token()
    bob = call(stack, "POST", "/users", admin, {"name": "Bob", "email": f"bob-{uuid.uuid4().hex[:8]}@example.com"})
    user_id = bob.json()["user"]["userId"]
    until_history(stack, admin, user_id, 1)
    taken = stack.info["admin_username"]
    assert call(stack, "PUT", f"/users/{user_id}", admin, {"email": taken}).status_code == 409
    assert (
        call(stack, "PUT", f"/users/{user_id}", admin, {"name": "B"}, headers={"If-Match": '"stale"'}).status_code
        == 412
    )
    assert call(stack, "PUT", f"/users/{user_id}", admin, {"name": ""}).status_code == 400
    # A write after the failed ones: once its event is in, the stream is read past them.
    assert call(stack, "PUT", f"/users/{user_id}", admin, {"name": "Bobby"}).status_code == 200
    events = until_history(stack, admin, user_id, 2)
    assert [(e["type"], e["changed"]) for e in events] == [
        ("UserCreated", ["name", "email", "role", "enabled"]),
        ("UserUpdated", ["name"]),
    ]
    assert len(published(stack, user_id)) == 2

    # Lambda may deliver a batch again, to another container: the whole stream, from its oldest
    # record, to a second consumer on the same table, bus and file.
    info = stack.info
    dynamodb = stack.client("dynamodb")
    second = ChangeConsumer(
        DynamoAuditLog(info["audit_table_name"], dynamodb),
        LocalEventBusPublisher(info["event_bus_name"], Path(info["events_file"]), stack.client("events")),
        AvatarStore(info["bucket_name"], stack.client("s3")),
        stream_change,
    )
    published_before = published(stack, user_id)
    reader = StreamReader(stack.client("dynamodbstreams"), stream_arn(dynamodb, info["table_name"]))
    redelivered = 0
    while batch := reader.read():
        assert second.handle(batch) == {"batchItemFailures": []}
        redelivered += len(batch)
    assert redelivered >= 5  # Bob's records, his reservation's, and the seeded users' at least
    assert history(stack, admin, user_id) == events
    assert published(stack, user_id) == published_before
