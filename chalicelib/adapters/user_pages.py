"""Users a page at a time for an export: a Scan of the users table, keeping its user items (those
with `listingId`; chalicelib/adapters/table_schema.py). The table's key is the user's id, which no
update changes, so the walk sees every user that lives through it exactly once, whatever is changed
meanwhile (a walk of the search indexes, partitioned by role and state, could see a user twice or
not at all when an admin disables it mid-walk). The other items it reads (email reservations,
idempotency records, counters, traces) are small; they cost their bytes' share of the read units.

Each page reports the read units DynamoDB says it consumed (ReturnConsumedCapacity), which the
export paces itself by; where none are reported they are estimated from the returned items' sizes,
as DynamoDB bills an eventually consistent Scan: 0.5 units per 4 KB read. (moto reports one fixed
figure per request; `make bulk-bench` prices the local export from the bytes read instead.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamodb import item_to_user
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
            "Limit": limit,
            # Filtered after the read: the units are those of every item the page read.
            "FilterExpression": "attribute_exists(listingId)",
            "ReturnConsumedCapacity": "TOTAL",
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"userId": {"S": after}}
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
