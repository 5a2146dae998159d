"""Who holds an email: the owner of its reservation item in the users table (`EMAIL#<key>`,
chalicelib/adapters/table_schema.py), read strongly consistent. An import row whose email is
taken reports that user as the one that `exists`."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.table_schema import EMAIL_KEY_PREFIX
from chalicelib.domain.models import email_key


class ReservationOwners(aws.ClientHolder):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None):
        super().__init__(client)
        self._table = table_name

    def owner(self, email: str) -> str | None:
        result = self._call(
            "get_item",
            TableName=self._table,
            Key={"userId": {"S": EMAIL_KEY_PREFIX + email_key(email)}},
            ProjectionExpression="ownerId",
            ConsistentRead=True,
        )
        owner = result.get("Item", {}).get("ownerId")
        return str(owner["S"]) if owner else None
