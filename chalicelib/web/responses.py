"""JSON responses."""

from __future__ import annotations

import json
from typing import Any

from chalice import Response  # type: ignore[attr-defined]

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": JSON, **(headers or {})})


def json_text(body: Any) -> str:
    """`body` as Chalice sends a view's dict or list (Response.to_dict: no spaces): for the
    responses it does not serialise itself, so every body has one spacing."""
    return json.dumps(body, separators=(",", ":"))
