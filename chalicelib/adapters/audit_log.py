"""The audit trail on DynamoDB: one entry per change event, in its own table (table_schema.py).

Written by the change consumer only, read by GET /users/{id}/history. An entry holds who changed
which fields of a user and when, never the values, and expires RETENTION_DAYS (domain/history.py) after the
change. Every write is conditional on the entry being absent, so a redelivered stream record
writes nothing the second time.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.table_schema import AUDIT_SORT_KEY, TTL_ATTRIBUTE
from chalicelib.config import ConfigurationError
from chalicelib.domain.change_events import ChangeEvent
from chalicelib.domain.history import RETENTION_S, AuditEntry, position
from chalicelib.domain.models import epoch_seconds


def _key(user_id: str, at: str) -> dict[str, dict[str, str]]:
    return {"userId": {"S": user_id}, AUDIT_SORT_KEY: {"S": at}}


def entry_item(event: ChangeEvent) -> dict[str, Any]:
    return {
        **_key(event.user_id, position(event)),
        "eventId": {"S": event.event_id},
        "type": {"S": event.type},
        "at": {"S": event.at},
        "actor": {"S": event.actor},
        # A list, not a string set: a set cannot be empty, and the order is the API's.
        "changed": {"L": [{"S": name} for name in event.changed]},
        TTL_ATTRIBUTE: {"N": str(epoch_seconds(event.at) + RETENTION_S)},
    }


def item_entry(item: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        event_id=item["eventId"]["S"],
        type=item["type"]["S"],
        at=item["at"]["S"],
        actor=item["actor"]["S"],
        changed=tuple(value["S"] for value in item["changed"]["L"]),
    )


class DynamoAuditLog(aws.ClientHolder):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None):
        if not table_name:
            raise ConfigurationError("environment variable AUDIT_TABLE_NAME is required for the audit trail")
        super().__init__(client)
        self._table = table_name

    def has(self, event: ChangeEvent) -> bool:
        """Whether this event's entry is written (strongly consistent: a redelivery may follow at once)."""
        result = self._call(
            "get_item",
            TableName=self._table,
            Key=_key(event.user_id, position(event)),
            ProjectionExpression="userId",
            ConsistentRead=True,
        )
        return "Item" in result

    def add(self, event: ChangeEvent) -> bool:
        """Write the event's entry unless it is there already; whether this call wrote it."""
        from botocore.exceptions import ClientError

        try:
            self._call(
                "put_item",
                TableName=self._table,
                Item=entry_item(event),
                ConditionExpression="attribute_not_exists(userId)",
            )
        except ClientError as exc:
            if aws.error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def page(self, user_id: str, limit: int, after: str | None) -> tuple[list[AuditEntry], str | None]:
        """Up to `limit` entries of the user, oldest first, after the position `after`, and the
        position to continue after (None on the last page)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "userId = :user",
            "ExpressionAttributeValues": {":user": {"S": user_id}},
            "ScanIndexForward": True,
            # One extra entry tells whether another page exists, so the last page hands out no cursor.
            "Limit": limit + 1,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = _key(user_id, after)
        result = self._call("query", **kwargs)
        items = result.get("Items", [])
        if len(items) > limit:
            items = items[:limit]
            return [item_entry(item) for item in items], items[-1][AUDIT_SORT_KEY]["S"]
        # A page cut short by DynamoDB's 1 MB limit (never at these sizes, but possible) goes on.
        last = result.get("LastEvaluatedKey")
        return [item_entry(item) for item in items], (last[AUDIT_SORT_KEY]["S"] if last else None)
