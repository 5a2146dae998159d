"""HTTP calls to a running local stack (tests/e2e), as a client makes them."""

from __future__ import annotations

from typing import Any

import requests

from devstack.process import Stack

TIMEOUT_S = 15


def call(
    stack: Stack,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT_S,
    **kwargs: Any,
) -> requests.Response:
    """`method path` on the stack's API, with `token` as a bearer token and `body` as JSON."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return requests.request(method, stack.url + path, headers=sent, json=body, timeout=timeout, **kwargs)
