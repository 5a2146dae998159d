"""Stream records as Lambda's event source mapping delivers them, built from the items the
repository really writes (chalicelib/adapters/dynamodb.py), for the change consumer's tests."""

from __future__ import annotations

import itertools
from typing import Any

from chalicelib.adapters.dynamodb import user_to_item
from chalicelib.adapters.stream_records import stream_change
from chalicelib.domain.change_events import Meaning, interpret
from chalicelib.domain.models import User, Write

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/users-test/stream/2025-01-01T00:00:00.000"
ADMIN_SUB = "admin-sub"
_sequence = itertools.count(1_100_000_000_017_454_423_009)

Image = dict[str, dict[str, Any]]


def user(
    user_id: str = "u-1",
    name: str = "Ada",
    email: str = "ada@example.com",
    version: int = 1,
    at: str = "2025-01-01T00:00:00.000Z",
    actor: str = ADMIN_SUB,
    **fields: Any,
) -> Image:
    """A user item as stored after a write by `actor` at `at`."""
    record = User(
        user_id=user_id,
        name=name,
        email=email,
        created_at="2025-01-01T00:00:00.000Z",
        updated_at=at,
        version=version,
        **fields,
    )
    return user_to_item(record, Write(token="tok", actor=actor, at=at), created=version == 1)


def trace(user_id: str = "u-1", at: str = "2025-01-02T00:00:00.000Z", actor: str = ADMIN_SUB) -> Image:
    """What a delete leaves of a user (chalicelib/adapters/dynamodb.py _deletion)."""
    return {
        "userId": {"S": user_id},
        "createToken": {"S": "tok"},
        "deletedAt": {"S": at},
        "writeToken": {"S": "del"},
        "writtenBy": {"S": actor},
        "expiresAt": {"N": "1735862400"},
    }


def record(
    event_name: str,
    old: Image | None = None,
    new: Image | None = None,
    event_id: str | None = None,
    ttl: bool = False,
) -> dict[str, Any]:
    image = new if new is not None else old
    assert image is not None
    sequence = str(next(_sequence))
    stream: dict[str, Any] = {
        "ApproximateCreationDateTime": 1735776000.0,
        "Keys": {"userId": image["userId"]},
        "SequenceNumber": sequence,
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if old is not None:
        stream["OldImage"] = old
    if new is not None:
        stream["NewImage"] = new
    out: dict[str, Any] = {
        "eventID": event_id or f"evt-{sequence}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": stream,
        "eventSourceARN": STREAM_ARN,
    }
    if ttl:
        # What DynamoDB's TTL deletes carry (and no other delete does).
        out["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return out


def meaning_of(stream_record: dict[str, Any]) -> Meaning:
    """What the consumer makes of a record as Lambda delivers it: decoded, then interpreted."""
    return interpret(stream_change(stream_record))
