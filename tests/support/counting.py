"""Count the DynamoDB API calls a piece of code makes, with a botocore event hook."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def take(self) -> int:
        """The number of calls so far; starts counting again from zero."""
        total = self.total
        self.calls.clear()
        return total


@contextmanager
def counting(client: Any) -> Iterator[CallCounter]:
    counter = CallCounter()
    # before-call fires once per API call (retries are not extra calls here).
    client.meta.events.register("before-call.dynamodb", counter)
    try:
        yield counter
    finally:
        client.meta.events.unregister("before-call.dynamodb", counter)
