"""The AWS stand-in every contender of the request and cold start sections talks to: a botocore
`before-send` hook that answers DynamoDB and Cognito requests with canned responses.

botocore serialises and validates the request, signs it (SigV4), and parses the answer exactly
as it would over the network; only the socket is missing. So each contender pays the SDK's
whole cost for each call it makes, and no contender is flattered by a fake repository: the
app's real DynamoDB and Cognito adapters run, with the app's own clients.

What it answers (by `X-Amz-Target`):
- DynamoDB GetItem: the owner's item when the key names the owner (also for the revocation
  check's projected read, which ignores the attributes it did not ask for), else no item;
- Cognito AdminCreateUser: a new sign-in with a fresh sub (with MessageAction RESEND too);
- anything else (TransactWriteItems, ...): success with an empty body.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from bench.lambda_events import OWNER_SUB

OWNER_CREATED = "2024-01-01T00:00:00.000Z"
EVENT = "before-send"


def owner_item() -> dict[str, dict[str, Any]]:
    """The owner's record as the app's table holds it. Written out, not made with chalicelib (the
    hand-written contender's cold start loads no chalicelib); tests/unit/test_bench_runtime.py
    holds it equal to the app's own encoding."""
    return {
        "userId": {"S": OWNER_SUB},
        "listingId": {"S": OWNER_SUB},
        "name": {"S": "Owner"},
        "email": {"S": "owner@example.com"},
        "emailKey": {"S": "owner@example.com"},
        "createdAt": {"S": OWNER_CREATED},
        "updatedAt": {"S": OWNER_CREATED},
        "version": {"N": "1"},
        "role": {"S": "member"},
        "enabled": {"BOOL": True},
        "listState": {"S": "member#enabled"},
        "listCreated": {"S": f"{OWNER_CREATED}#{OWNER_SUB}"},
        "listName": {"S": f"owner\x1f{OWNER_SUB}"},
    }


class _Body:
    """What botocore reads an answer's body from (a urllib3 response, over the network)."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._content


class StandIn:
    """Install on a client with `install`; `calls` counts the operations it answered."""

    def __init__(self) -> None:
        self._owner = json.dumps({"Item": owner_item()}).encode()
        self._owner_key = OWNER_SUB.encode()
        self.calls: Counter[str] = Counter()

    def install(self, client: Any) -> Any:
        client.meta.events.register(EVENT, self)
        return client

    def answer(self, operation: str, body: bytes) -> bytes:
        if operation == "GetItem":
            return self._owner if self._owner_key in body else b"{}"
        if operation == "AdminCreateUser":
            sub = str(uuid.uuid4())
            user = {"Username": sub, "Attributes": [{"Name": "sub", "Value": sub}], "Enabled": True}
            return json.dumps({"User": {**user, "UserStatus": "FORCE_CHANGE_PASSWORD"}}).encode()
        return b"{}"

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target") or b""
        operation = (target.decode() if isinstance(target, bytes) else str(target)).rpartition(".")[2]
        self.calls[operation] += 1
        body = request.body or b""
        content = self.answer(operation, body if isinstance(body, bytes) else str(body).encode())
        headers = HTTPHeaders()
        headers["x-amzn-RequestId"] = "bench"
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["Content-Length"] = str(len(content))
        return AWSResponse(request.url, 200, headers, _Body(content))
