"""The users table's stream records, as Lambda's event source mapping delivers them (eventID,
eventName, dynamodb.{Keys, NewImage, OldImage, SequenceNumber, ApproximateCreationDateTime}),
decoded into the domain's values with the repository's own readers of the table's items
(chalicelib/adapters/dynamodb.py): the item format is read in one place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.dynamodb import Item, item_to_deleted, item_to_user
from chalicelib.domain.change_events import OTHER, Image, StreamChange, Written
from chalicelib.domain.models import timestamp


def image(item: Item | None) -> Image:
    """What one side of a record shows: None (no image), a user, a deleted user's trace, or another item."""
    if item is None:
        return None
    user = item_to_user(item)
    if user is not None:
        return Written(
            user,
            item.get("writtenBy", {}).get("S", ""),
            action=item.get("actionType", {}).get("S", ""),
            action_token=item.get("actionToken", {}).get("S", ""),
        )
    return item_to_deleted(item) or OTHER


def stream_change(record: dict[str, Any]) -> StreamChange:
    stream = record["dynamodb"]
    return StreamChange(
        event_id=str(record["eventID"]),
        name=str(record.get("eventName", "")),
        user_id=str(stream["Keys"]["userId"]["S"]),
        sequence=str(stream["SequenceNumber"]),
        # Epoch seconds in Lambda's event.
        at=timestamp(datetime.fromtimestamp(float(stream["ApproximateCreationDateTime"]), UTC)),
        old=image(stream.get("OldImage")),
        new=image(stream.get("NewImage")),
    )
