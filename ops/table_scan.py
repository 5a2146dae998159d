"""A strongly consistent Scan of a whole table (or of one of its parallel segments), page by page:
what `make reindex` reads the users table with, one segment per worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def consistent_scan(client: Any, table: str, **segment: int) -> Iterator[dict[str, Any]]:
    """Every item of `table`; `segment`: Segment= and TotalSegments= of a parallel scan."""
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True, **segment}
    while True:
        page = client.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
