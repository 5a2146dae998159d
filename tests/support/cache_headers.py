"""What the app itself tells caches, read through Chalice's test client (no network)."""

from __future__ import annotations

import re

from chalice.test import Client

from app import app


def public_max_age(path: str) -> int:
    """max-age of a `public` Cache-Control on GET `path`; fails the test if it is not public."""
    with Client(app) as client:
        header = client.http.get(path).headers["Cache-Control"]
    match = re.search(r"max-age=(\d+)", header)
    assert match and header.startswith("public"), header
    return int(match.group(1))
