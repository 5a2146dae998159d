"""Idempotent requests: what the store of Idempotency-Key records keeps and promises (the port the
web layer's chalicelib/web/idempotency.py uses and chalicelib/adapters/idempotency_store.py
implements), and how long a record and its lock last."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

RECORD_TTL_S = 24 * 3600
# Longer than the Lambda timeout (28 s): a lock older than this belongs to a request that died.
LOCK_S = 30


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str  # the JSON text sent the first time
    headers: dict[str, str]

    def to_json(self) -> str:
        return json.dumps({"status": self.status, "body": self.body, "headers": self.headers})

    @classmethod
    def from_json(cls, text: str) -> StoredResponse:
        data = json.loads(text)
        return cls(int(data["status"]), str(data["body"]), {str(k): str(v) for k, v in data["headers"].items()})


@dataclass(frozen=True)
class Claimed:
    """A key claimed for this request, and the write token the request must use."""

    write_token: str


class IdempotencyStore(Protocol):
    def claim(
        self, record_id: str, fingerprint: str, lock: str, write_token: str, now: int
    ) -> Claimed | StoredResponse:
        """Claim `record_id` for one request: Claimed (go ahead) with `write_token`, or with the
        token of an earlier attempt of the same request that ended unfinished; or the response of
        the request that completed it. Raises IdempotencyKeyReused when it was claimed with another
        fingerprint, IdempotentRequestInFlight (with `retry_after(locked_until, now)`) while
        another claim is live."""

    def complete(self, record_id: str, lock: str, response: StoredResponse, now: int) -> None:
        """Store the response under our claim; raises AppError when it cannot."""

    def release(self, record_id: str, lock: str) -> None:
        """Forget the key (nothing was written), so a retry runs afresh; raises AppError when it cannot."""

    def unlock(self, record_id: str, lock: str) -> None:
        """Give up our lock but keep the record and its write token (the outcome is unknown), so a
        retry with the same request takes it over at once; raises AppError when it cannot."""


def retry_after(locked_until: int, now: int) -> int:
    """Whole seconds from `now` until a lock held through `locked_until` has expired: a claim at
    `locked_until + 1` takes it over. At least 1."""
    return max(1, locked_until + 1 - now)
