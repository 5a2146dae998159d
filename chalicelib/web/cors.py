"""Which origin a response names in Access-Control-Allow-Origin, request by request.

Chalice's CORSConfig (and API Gateway's preflight mock) names one fixed origin. That is all a
deployed stage has (chalicelib.config.cors_allow_origins), so its responses keep it as is. A local
stage may allow a short list: each allowed origin is answered with itself, with `Vary: Origin` so
no cache hands one origin's answer to another, and any other origin gets no
Access-Control-Allow-Origin at all, so the browser refuses to let it read the response.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

ALLOW_ORIGIN = "Access-Control-Allow-Origin"


def _get(headers: Mapping[str, Any], name: str) -> tuple[str | None, Any]:
    """(the key as spelled in headers, its value) for a case-insensitive name."""
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return key, value
    return None, None


@dataclass(frozen=True)
class CorsOrigins:
    allowed: tuple[str, ...]

    @property
    def per_request(self) -> bool:
        """More than one origin, so the answer depends on the request's Origin."""
        return len(self.allowed) > 1

    def apply(self, response_headers: MutableMapping[str, Any], request_headers: Mapping[str, Any]) -> None:
        if not self.per_request:
            return
        _, origin = _get(request_headers, "Origin")
        key, _ = _get(response_headers, ALLOW_ORIGIN)
        if key is not None:
            del response_headers[key]
        if origin in self.allowed:
            response_headers[ALLOW_ORIGIN] = origin
        vary_key, vary = _get(response_headers, "Vary")
        listed = [part.strip() for part in str(vary or "").split(",") if part.strip()]
        if "origin" not in {part.lower() for part in listed}:
            response_headers[vary_key or "Vary"] = ", ".join([*listed, "Origin"])
