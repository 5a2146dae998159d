"""What the bulk job routes read from a request: an import (a file in the body, or a JSON ask for an
upload form) and an export's format. Everything is checked before anything is stored, so a 4xx
changes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.bulk_files import CSV, FORMATS, JSONL, format_of_media_type
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.imports import ImportRequest
from chalicelib.web.errors import PayloadTooLarge, UnsupportedImportType
from chalicelib.web.requests import parse_json_object
from chalicelib.web.responses import JSON

_TRUE_FALSE = {"true": True, "false": False}


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _problem(field: str, message: str) -> ValidationError:
    return ValidationError("Invalid import request", details=[{"field": field, "message": message}])


def parse_import_request(
    raw_body: bytes | None, content_type: str | None, query: Mapping[str, str] | None, max_bytes: int
) -> ImportRequest:
    """The import a request asks for: the file itself (text/csv, application/x-ndjson; `?invite=false`
    to send no invitations) or, as JSON, `{"upload": true, "format": "csv"|"jsonl", "invite": bool}`."""
    media_type = _media_type(content_type)
    query = query or {}
    unknown = sorted(set(query) - {"invite"})
    if unknown:
        raise _problem(unknown[0], "unknown query parameter")
    query_invite = _TRUE_FALSE.get(query.get("invite", "true"))
    if query_invite is None:
        raise _problem("invite", "must be true or false")
    if media_type == JSON:
        upload = _upload_request(parse_json_object(raw_body, content_type, max_bytes))
        # `invite` may come in the body or the query: false in either sends none (never ignored).
        return ImportRequest(format=upload.format, invite=upload.invite and query_invite)
    fmt = format_of_media_type(media_type)
    if fmt is None:
        raise UnsupportedImportType()
    body = raw_body or b""
    if len(body) > max_bytes:
        raise PayloadTooLarge(
            f"Request body exceeds {max_bytes} bytes: ask for an upload form instead "
            '(POST /users/imports with {"upload": true})'
        )
    if not body.strip():
        raise ValidationError("Request body is required: the file to import")
    return ImportRequest(format=fmt, invite=query_invite, body=body)


def _upload_request(body: dict[str, Any]) -> ImportRequest:
    problems = [{"field": key, "message": "unknown field"} for key in body if key not in ("upload", "format", "invite")]
    if body.get("upload") is not True:
        problems.append(
            {
                "field": "upload",
                "message": "must be true (or send the file itself as text/csv or application/x-ndjson)",
            }
        )
    fmt = body.get("format", CSV)
    if fmt not in FORMATS:
        problems.append({"field": "format", "message": f"must be one of {', '.join(FORMATS)}"})
    invite = body.get("invite", True)
    if not isinstance(invite, bool):
        problems.append({"field": "invite", "message": "must be true or false"})
    if problems:
        raise ValidationError("Invalid import request", details=problems)
    return ImportRequest(format=str(fmt), invite=bool(invite))


def import_fingerprint(request: ImportRequest) -> dict[str, Any]:
    """What an Idempotency-Key's first request is remembered by: the file by its hash."""
    digest = hashlib.sha256(request.body).hexdigest() if request.body is not None else None
    return {"format": request.format, "invite": request.invite, "upload": request.body is None, "sha256": digest}


def parse_export_request(raw_body: bytes | None, content_type: str | None, max_bytes: int) -> str:
    """The format an export is asked in: JSON Lines unless `{"format": "csv"}`; no body is fine."""
    if not (raw_body or b"").strip():
        return JSONL
    body = parse_json_object(raw_body, content_type, max_bytes)
    problems = [{"field": key, "message": "unknown field"} for key in body if key != "format"]
    fmt = body.get("format", JSONL)
    if fmt not in FORMATS:
        problems.append({"field": "format", "message": f"must be one of {', '.join(FORMATS)}"})
    if problems:
        raise ValidationError("Invalid export request", details=problems)
    return str(fmt)
