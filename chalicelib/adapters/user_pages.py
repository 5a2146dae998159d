"""Users a page at a time for an export: a Scan of the users table's `listing` index, which holds
users only (chalicelib/adapters/table_schema.py), so a page holds no reservation, idempotency
record or counter, and the read units are those of the users themselves.

Each page reports the read units DynamoDB says it consumed (ReturnConsumedCapacity), which the
export paces itself by; where DynamoDB reports none (an emulator) they are estimated from the
items' sizes, as DynamoDB bills an eventually consistent Scan: 0.5 units per 4 KB read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamodb import item_to_user
from chalicelib.adapters.table_schema import LISTING_INDEX
from chalicelib.domain.models import User


def _estimated_units(items: list[dict[str, Any]]) -> float:
    size = sum(len(json.dumps(item, separators=(",", ":"))) for item in items)
    return max(0.5, math.ceil(size / 4096) * 0.5)


class ListingPages(aws.ClientHolder):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None):
        super().__init__(client)
        self._table = table_name
        self.read_units = 0.0  # consumed in all, for the figures

    def pages(self, after: str | None, limit: int) -> Iterator[tuple[list[User], str | None, float]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LISTING_INDEX,
            "Limit": limit,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"userId": {"S": after}, "listingId": {"S": after}}
        while True:
            result = self._call("scan", **kwargs)
            items = result.get("Items", [])
            consumed = result.get("ConsumedCapacity", {}).get("CapacityUnits")
            units = float(consumed) if consumed is not None else _estimated_units(items)
            self.read_units += units
            users: list[User] = [user for user in (item_to_user(item) for item in items) if user is not None]
            last = result.get("LastEvaluatedKey")
            yield users, (last["userId"]["S"] if last else None), units
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last
