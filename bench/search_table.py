"""An in-memory users table for the search benchmark: it answers, through botocore, the requests a
page of GET /users makes (Query on the search indexes, GetItem of a reservation and of a user),
with DynamoDB's documented semantics, at any size, in microseconds.

Why not moto: moto answers a Query on an index by going through every item of the table and
sorting the matches (about 2.4 s a Query at 100,000 users here, and 470 MB), and a page of a
merged search makes several Queries. This stand-in keeps each index partition sorted and answers
with a binary search, so the 100,000-user table fills in seconds and every page is measured on
it. It is held to moto on random tables (tests/integration/test_bench_search.py): the same items
in the same order for the same requests. One difference is DynamoDB's and deliberate: a Query
that stops at its Limit returns a LastEvaluatedKey even when nothing follows (moto only returns
one when more items exist), which is what a deployed table does and what the cost is measured on.

botocore serialises, signs and parses each request as over the network (like bench/stand_in.py):
the repository under measurement is the app's own DynamoUserRepository, unchanged.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from bench.stand_in import _Body
from chalicelib.adapters.table_schema import SEARCH_INDEXES, STATE_ATTRIBUTE
from chalicelib.adapters.user_index import READ_UNIT_BYTES, item_size

Item = dict[str, dict[str, Any]]

# The key conditions PageReader writes (chalicelib/adapters/user_index.py): the partition, and at
# most one condition on the sort key.
_CONDITION = re.compile(r"^#p = :p(?: AND #k (?:(?P<between>BETWEEN :lo AND :hi)|(?P<ge>>= :lo)|(?P<le><= :hi)))?$")


@dataclass
class Answered:
    """One request the table answered, with the read units DynamoDB bills for it."""

    operation: str
    keys: list[str]  # userId of each item returned
    read_units: float


def read_units(operation: str, sizes: list[int], consistent: bool) -> float:
    """DynamoDB on demand: a GetItem is billed on its item's size, rounded up to 4 KB; a Query on
    the total size of the items it read, rounded up to 4 KB; at least one unit either way (an
    empty answer too); an eventually consistent read (every index read) half that."""
    units = max(1, math.ceil(sum(sizes) / READ_UNIT_BYTES))
    return units * (1.0 if consistent else 0.5)


class IndexedTable:
    """Install on a DynamoDB client with `install`; `answered` records every request."""

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._items: dict[str, bytes] = {}  # userId -> the item, as DynamoDB JSON
        self._sizes: dict[str, int] = {}
        # index -> partition -> [(sort key, userId)], sorted
        self._indexes: dict[str, dict[str, list[tuple[str, str]]]] = {
            name: defaultdict(list) for name in SEARCH_INDEXES
        }
        self.answered: list[Answered] = []
        for item in items:
            self._put(item)
        for partitions in self._indexes.values():
            for entries in partitions.values():
                entries.sort()

    def __len__(self) -> int:
        return len(self._items)

    def _put(self, item: Item) -> None:
        key = item["userId"]["S"]
        self._items[key] = json.dumps(item, separators=(",", ":")).encode()
        self._sizes[key] = item_size(item)
        if STATE_ATTRIBUTE not in item:
            return  # sparse: only user items carry the partition key
        partition = item[STATE_ATTRIBUTE]["S"]
        for index, attribute in SEARCH_INDEXES.items():
            if attribute in item:
                self._indexes[index][partition].append((item[attribute]["S"], key))

    def install(self, client: Any) -> Any:
        client.meta.events.register("before-send.dynamodb", self)
        return client

    def take(self) -> list[Answered]:
        taken, self.answered = self.answered, []
        return taken

    # --- DynamoDB ---

    def get_item(self, params: dict[str, Any]) -> dict[str, Any]:
        key = params["Key"]["userId"]["S"]
        found = self._items.get(key)
        sizes = [self._sizes[key]] if found is not None else []
        consistent = params.get("ConsistentRead", False)
        self.answered.append(Answered("GetItem", [key] if sizes else [], read_units("GetItem", sizes, consistent)))
        return {"Item": json.loads(found)} if found is not None else {}

    def query(self, params: dict[str, Any]) -> dict[str, Any]:
        index = params["IndexName"]
        values = params["ExpressionAttributeValues"]
        match = _CONDITION.match(params["KeyConditionExpression"])
        if match is None or params["ExpressionAttributeNames"].get("#p") != STATE_ATTRIBUTE:
            raise ValueError(f"the stand-in answers no such Query: {params['KeyConditionExpression']}")
        if "#k" in params["ExpressionAttributeNames"]:
            assert params["ExpressionAttributeNames"]["#k"] == SEARCH_INDEXES[index]
        entries = self._indexes[index].get(values[":p"]["S"], [])
        low = values[":lo"]["S"] if ":lo" in values else None
        high = values[":hi"]["S"] if ":hi" in values else None
        # Sort keys compare as UTF-8 bytes in DynamoDB, as code points in Python: the same order.
        start = bisect.bisect_left(entries, (low,)) if low is not None else 0
        stop = bisect.bisect_right(entries, (high, "\U0010ffff")) if high is not None else len(entries)
        chosen: Iterator[tuple[str, str]] = (
            iter(entries[start:stop]) if params.get("ScanIndexForward", True) else reversed(entries[start:stop])
        )
        limit = params.get("Limit")
        keys = [key for _, key in (chosen if limit is None else _take(chosen, limit))]
        response: dict[str, Any] = {"Items": [json.loads(self._items[key]) for key in keys], "Count": len(keys)}
        if limit is not None and len(keys) == limit:
            # DynamoDB stops at Limit and says where, whether or not anything follows.
            last = response["Items"][-1]
            attribute = SEARCH_INDEXES[index]
            response["LastEvaluatedKey"] = {name: last[name] for name in ("userId", STATE_ATTRIBUTE, attribute)}
        sizes = [self._sizes[key] for key in keys]
        self.answered.append(Answered("Query", keys, read_units("Query", sizes, consistent=False)))
        return response

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target") or b""
        operation = (target.decode() if isinstance(target, bytes) else str(target)).rpartition(".")[2]
        params = json.loads(request.body or b"{}")
        if operation == "Query":
            answer = self.query(params)
        elif operation == "GetItem":
            answer = self.get_item(params)
        else:
            raise ValueError(f"the search stand-in answers Query and GetItem, not {operation}")
        content = json.dumps(answer).encode()
        headers = HTTPHeaders()
        headers["x-amzn-RequestId"] = "bench"
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["Content-Length"] = str(len(content))
        return AWSResponse(request.url, 200, headers, _Body(content))


def _take(entries: Iterator[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    taken: list[tuple[str, str]] = []
    for entry in entries:
        if len(taken) == limit:
            break
        taken.append(entry)
    return taken
