"""HTTP calls to a running local stack (tests/e2e), as a client makes them."""

from __future__ import annotations

import os
from pathlib import Path
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


def shell_env(stack_file: Path) -> dict[str, str]:
    """The environment of a developer's shell pointed at this stack: this process's, without the
    outer `make test`'s flags and level (a `make` run from it is the developer's own)."""
    env = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    env["STACK_FILE"] = str(stack_file)
    return env
