"""JSON request bodies: the object a route reads, or the error that says why there is none."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.web.errors import PayloadTooLarge, UnsupportedMediaType
from chalicelib.web.responses import JSON

# Every media type POST /users/imports takes (Chalice answers any other with 415). Here, not with
# the rest of that route's parsing (chalicelib/web/bulk_requests.py), since the route's declaration
# needs it at import and the API's INIT loads none of the bulk jobs' modules.
IMPORT_CONTENT_TYPES = [JSON, "text/csv", "application/x-ndjson", "application/jsonl", "application/x-jsonlines"]


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_json_object(raw_body: bytes | None, content_type: str | None, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, or the error that explains why it is not one."""
    body = raw_body or b""
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"Request body exceeds {max_bytes} bytes")
    if not body.strip():
        raise ValidationError("Request body is required")
    if _media_type(content_type) != JSON:
        raise UnsupportedMediaType()
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError("Request body is not valid JSON") from exc
    except RecursionError as exc:  # "[[[[..." fits under the size limit but nests too deep
        raise ValidationError("Request body nests too deeply") from exc
    if not isinstance(data, dict):
        raise ValidationError("Request body must be a JSON object")
    try:
        # JSON may escape a lone UTF-16 surrogate ("\\ud800"), which no UTF-8 text can hold: refused
        # here, before it can reach a fingerprint, a log line or an AWS request.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError("Request body holds a string that is not valid Unicode (a lone surrogate)") from exc
    return data
