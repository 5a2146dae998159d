"""JSON responses."""

from __future__ import annotations

from typing import Any

from chalice import Response  # type: ignore[attr-defined]

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": JSON, **(headers or {})})
