"""The OpenAPI 3.1 description of the API, built on first request.

Every bound and pattern comes from the constant the server checks against, so the document
cannot drift from the code (tests/unit/test_openapi.py proves they accept the same values, and
tests/e2e/test_contract.py runs Schemathesis against the running stack with this document).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from chalicelib.config import LOCAL_STAGES
from chalicelib.domain import avatars, bulk_files, exports, imports, jobs
from chalicelib.domain import idempotency as idempotency_port
from chalicelib.domain.change_events import EVENT_TYPES, PUBLIC_FIELDS
from chalicelib.domain.cursor import CURSOR_PATTERN, MAX_CURSOR_LEN
from chalicelib.domain.history import RETENTION_DAYS
from chalicelib.domain.models import (
    CONTROL_CHARS,
    E164_PATTERN,
    EMAIL_LOCAL_MAX,
    EMAIL_MAX,
    FORMAT_CHARS,
    INVISIBLE_CHARS,
    MEMBER,
    NAME_MAX,
    ROLES,
    USER_ID_PATTERN,
)
from chalicelib.domain.search import DEFAULT_SORT, Q_MAX, Q_MIN, SORTS
from chalicelib.domain.service import EMAIL_CODE_TTL, MAX_CODE_ATTEMPTS
from chalicelib.web import idempotency
from chalicelib.web.conditional import MAX_TAG_CHARS, MAX_TAGS
from chalicelib.web.inputs import EMAIL_CODE_PATTERN, PAGE_DEFAULT, PAGE_MAX

# RFC 9110 entity tags as chalicelib.web.conditional reads them: an optional weak prefix, a quoted
# opaque tag of at most MAX_TAG_CHARS visible characters other than the double quote.
_ENTITY_TAG = rf'(?:W/)?"[\x21\x23-\x7e]{{0,{MAX_TAG_CHARS}}}"'
_LISTED_TAG = rf"[ \t]*{_ENTITY_TAG}[ \t]*"
# `*`, or 1 to MAX_TAGS entity tags separated by commas (a trailing comma is tolerated, as there).
IF_MATCH_PATTERN = rf"^(?:[ \t]*\*[ \t]*|{_LISTED_TAG}(?:,{_LISTED_TAG}){{0,{MAX_TAGS - 1}}},?)$"
# The ETags the API sends are strong: never the W/ prefix.
ETAG_PATTERN = rf'^"[\x21\x23-\x7e]{{1,{MAX_TAG_CHARS}}}"$'

_ERROR_TEXT = {
    "400": "Invalid input: malformed JSON, wrong or unknown fields or query parameters, bad limit, filter, sort or "
    "header, or a cursor issued for another route, caller or query (details name each field or parameter)",
    "401": "Missing, malformed, forged, expired or unverifiable token, or one revoked since (its user was "
    "disabled, deleted, changed role or email, had their password reset or was signed out after it was issued)",
    "403": "Signed in but not allowed (a member on admin routes or another user's record, or changing email, role "
    "or enabled; anyone changing their own role or enabled, or deleting themselves)",
    "404": "No such user (or, for an avatar read, no avatar uploaded); no such job (unknown, expired, or of the "
    "other kind)",
    "409": "Email already used (or pending) by another user, the change would leave no enabled admin, a concurrent "
    "change won, the sign-in is not in a state the action applies to (an invitation after the first sign-in, a "
    "reset before it, a disabled user), no email change is pending, a request with this Idempotency-Key is "
    "still in progress (then with Retry-After: the seconds until its lock expires, also said in the error), or a "
    "cancel of a job that has finished",
    "412": "If-Match names no current version of the user (read it again for a new ETag and retry), or "
    "If-None-Match names the current one",
    "413": "Request body above the configured limit",
    "415": "Request body is not application/json (POST /users/imports also takes text/csv and application/x-ndjson)",
    "422": "This Idempotency-Key was already used with a different request (body or If-Match)",
    "503": "A dependency (DynamoDB, S3, Cognito) is unavailable after retries; retry after the Retry-After delay. "
    "For a write the outcome is unknown (a timed-out attempt may have been applied): retry with the same "
    "Idempotency-Key to apply it exactly once",
}


def _ref(name: str, kind: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _headers(*names: str) -> dict[str, Any]:
    return {name: _ref(name, "headers") for name in names}


def _json(schema: dict[str, Any], description: str, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = _headers(*headers)
    return response


# What a client does next with a user it created: the id is in the answer (and its Location).
_CREATED_USER_LINKS = {
    name: {"operationId": operation, "parameters": {"userId": "$response.body#/user/userId"}}
    for name, operation in (("GetUser", "getUser"), ("UpdateUser", "updateUser"), ("DeleteUser", "deleteUser"))
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _ref(f"E{code}", "responses") for code in sorted(codes)}


def _op(
    op_id: str,
    summary: str,
    responses: dict[str, Any],
    body: str | None = None,
    secure: bool = True,
    parameters: tuple[str, ...] = (),
    query: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses}
    op["security"] = [{"cognito": []}] if secure else []
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    listed = [_ref(name, "parameters") for name in parameters] + (query or [])
    if listed:
        op["parameters"] = listed
    return op


_WRITE = ("400", "401", "413", "415", "503")
_NOT_MODIFIED = {"description": "If-None-Match names the current version; no body", "headers": _headers("ETag")}


def _parameters() -> dict[str, Any]:
    return {
        "UserId": {
            "name": "userId",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": USER_ID_PATTERN},
        },
        "IfMatch": {
            "name": "If-Match",
            "in": "header",
            "description": f"Write only if the user is still at this version: `*` or up to {MAX_TAGS} ETags from an "
            "earlier response (compared strongly: a weak tag never matches). Malformed: 400; no match: 412.",
            "schema": {"type": "string", "pattern": IF_MATCH_PATTERN},
        },
        "IfNoneMatch": {
            "name": "If-None-Match",
            "in": "header",
            "description": "ETags the client already has (or `*`): 304 without a body when one names the current "
            "version (compared weakly). A malformed value is ignored.",
            "schema": {"type": "string"},
        },
        "IfNoneMatchWrite": {
            "name": "If-None-Match",
            "in": "header",
            "description": f"Write only if the user is not at one of these versions: up to {MAX_TAGS} ETags "
            "(compared weakly), or `*`: only if the user does not exist (for PUT /users/me, a create only). "
            "Malformed: 400; a match: 412.",
            "schema": {"type": "string", "pattern": IF_MATCH_PATTERN},
        },
        "JobId": {
            "name": "jobId",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": jobs.JOB_ID_PATTERN},
        },
        "IdempotencyKey": {
            "name": idempotency.HEADER,
            "in": "header",
            "description": "Makes a retry safe: the same key with the same request gets the first response again "
            f"(with `{idempotency.REPLAYED_HEADER}: true`); with another body or precondition 422; while the first is "
            "still in progress 409, whose Retry-After says when the key's lock expires (at most "
            f"{idempotency_port.LOCK_S + 1} seconds). After a 503 the write may or may not have happened: a retry "
            "with the same key finds out and applies it at most once. Keys are the caller's own and expire after "
            f"{idempotency_port.RECORD_TTL_S // 3600} hours.",
            "schema": {"type": "string", "pattern": idempotency.KEY_PATTERN},
        },
    }


def _response_headers() -> dict[str, Any]:
    return {
        "ETag": {
            "description": "Strong, opaque tag of this version of the user, for If-Match and If-None-Match",
            "required": True,
            "schema": {"type": "string", "pattern": ETAG_PATTERN},
        },
        "Location": {
            "description": "Path of the created user (of a started job: where its status is read)",
            "required": True,
            "schema": {"type": "string"},
        },
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        },
        # The same header on a 409, sent only when the conflict is a locked Idempotency-Key.
        "RetryAfterLockedKey": {
            "description": "Only when a request with this Idempotency-Key is still in progress: whole seconds until "
            "its lock expires and a retry with the key runs (at least 1)",
            "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
        },
        idempotency.REPLAYED_HEADER: {
            "description": "Present when this is the stored response to an earlier request with the same "
            "Idempotency-Key",
            "schema": {"type": "string", "enum": ["true"]},
        },
    }


def _email_schema() -> dict[str, Any]:
    return {
        "type": "string",
        "format": "email",
        "maxLength": EMAIL_MAX,
        "description": "ASCII (Amazon SES, which sends Cognito's mail, cannot deliver to non-ASCII local parts): a "
        f"dot-atom local part of at most {EMAIL_LOCAL_MAX} characters (no quoted local part, none of "
        '`< > ( ) [ ] \\ , ; : "` or spaces) and a host name (an internationalised domain in its xn-- form). '
        "NFC-normalised first; unique regardless of case.",
    }


def _schemas() -> dict[str, Any]:
    refused = CONTROL_CHARS + FORMAT_CHARS
    name = {
        "type": "string",
        "minLength": 1,
        "maxLength": NAME_MAX,
        "description": "No control characters, and no invisible format or text-direction characters (every Unicode "
        "format character but ZWNJ and ZWJ, the Hangul fillers, the tag characters, ...) anywhere; at least one "
        "visible character (whitespace, ZWNJ, ZWJ, variation selectors and the blank braille cell are not). "
        "Surrounding whitespace is trimmed.",
        # Some visible character, and nothing refused anywhere.
        "pattern": f"^[^{refused}]*[^{refused}{INVISIBLE_CHARS}\\s][^{refused}]*$",
    }
    email = _email_schema()
    phone = {"type": "string", "pattern": E164_PATTERN, "description": "E.164"}
    timestamp = {"type": "string", "format": "date-time"}
    role = {"type": "string", "enum": list(ROLES), "description": "admin: a member of the Cognito group admins"}
    enabled = {"type": "boolean", "description": "false: the user cannot sign in, and their tokens are refused"}
    return {
        "User": {
            "type": "object",
            "additionalProperties": False,
            "required": ["userId", "name", "email", "role", "enabled", "createdAt", "updatedAt", "version"],
            "properties": {
                "userId": {"type": "string", "description": "The user's Cognito sub"},
                "name": {"type": "string"},
                "email": {"type": "string"},
                "pendingEmail": {
                    "type": "string",
                    "description": "A new address the user asked for (PUT /users/me) and has not confirmed yet: "
                    "reserved for them until pendingEmailExpiresAt, while the user keeps signing in with email",
                },
                "pendingEmailExpiresAt": timestamp,
                "phone": {"type": "string"},
                "role": role,
                "enabled": enabled,
                "createdAt": timestamp,
                "updatedAt": timestamp,
                "version": {"type": "integer", "minimum": 1},
            },
        },
        "NewUser": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "email"],
            "properties": {"name": name, "email": email, "phone": phone, "role": {**role, "default": MEMBER}},
            "description": "Creates the Cognito user (email verified), which Cognito invites with a temporary "
            "password, and its record; role admin also puts it in the admins group.",
            "examples": [{"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+14155550123"}],
        },
        "UserUpdate": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "name": name,
                "email": email,
                "phone": {"oneOf": [phone, {"type": "null"}]},
                "role": role,
                "enabled": enabled,
            },
            "description": "Partial update; phone null removes the phone. Members may change their own name and "
            "phone only (email, role or enabled: 403); admins anything but their own role and enabled. A role "
            "change moves the user in or out of the admins group; enabled false disables the sign-in and signs "
            "the user out everywhere; either refuses the user's earlier tokens within a minute. An email change "
            "changes the sign-in's email too.",
            "examples": [{"name": "Ada King"}, {"phone": None}],
        },
        "ProfileUpdate": {
            # Two shapes, never mixed: a profile edit, or an email change on its own.
            "oneOf": [
                {
                    "title": "Profile edit",
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {"name": name, "phone": {"oneOf": [phone, {"type": "null"}]}},
                },
                {
                    "title": "Email change",
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["email"],
                    "properties": {"email": email},
                },
            ],
            "description": "The first PUT creates the profile and requires name; its email is the sign-in's. "
            "`email` (on its own: with other fields 400) asks for a new address: it is reserved for you at once "
            "(409 if another user has or awaits it), your record shows it as pendingEmail and keeps its email, "
            "and a 6-digit code goes to the new address, valid "
            f"{int(EMAIL_CODE_TTL.total_seconds() // 60)} minutes; confirm it with POST /users/me/email-verification. "
            "Asking again replaces the pending change.",
            "examples": [{"name": "Ada Lovelace", "phone": "+14155550123"}, {"email": "ada.new@example.com"}],
        },
        "EmailVerification": {
            "type": "object",
            "additionalProperties": False,
            "required": ["code"],
            "properties": {"code": {"type": "string", "pattern": EMAIL_CODE_PATTERN}},
            "description": "The code mailed to the pending address. A wrong one is 400 and counts: after "
            f"{MAX_CODE_ATTEMPTS} the change must be asked for again.",
            "examples": [{"code": "123456"}],
        },
        "UserEnvelope": {
            "type": "object",
            "required": ["message", "user"],
            "properties": {"message": {"type": "string"}, "user": _ref("User")},
        },
        "UserList": {
            "type": "object",
            "required": ["users", "count", "nextCursor"],
            "properties": {
                "users": {"type": "array", "items": _ref("User")},
                "count": {"type": "integer", "minimum": 0},
                "nextCursor": {"type": ["string", "null"]},
            },
        },
        "HistoryEvent": {
            "type": "object",
            "additionalProperties": False,
            "required": ["eventId", "type", "at", "actor", "changed"],
            "properties": {
                "eventId": {"type": "string", "description": "The id of the change event published on the bus"},
                "type": {"type": "string", "enum": list(EVENT_TYPES)},
                "at": timestamp,
                "actor": {
                    "type": "string",
                    "description": "The sub of the caller whose request made the change (`system` or `devstack` for "
                    "tools, `unknown` for a write that recorded none)",
                },
                "changed": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(PUBLIC_FIELDS)},
                    "description": "The fields whose values differ before and after: every field the user has for "
                    "a create or a delete. Never the values.",
                },
            },
        },
        "History": {
            "type": "object",
            "required": ["events", "count", "nextCursor"],
            "properties": {
                "events": {"type": "array", "items": _ref("HistoryEvent")},
                "count": {"type": "integer", "minimum": 0},
                "nextCursor": {"type": ["string", "null"]},
            },
        },
        "AvatarRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["contentType"],
            "properties": {"contentType": {"type": "string", "enum": list(avatars.CONTENT_TYPES)}},
            "examples": [{"contentType": avatars.CONTENT_TYPES[0]}],
        },
        "AvatarUpload": {
            "type": "object",
            "additionalProperties": False,
            "required": ["uploadUrl", "fields", "fileKey"],
            "description": f"A presigned S3 POST: send `fields` then the file (at most {avatars.MAX_BYTES} bytes, "
            f"of the requested content type) as multipart/form-data to `uploadUrl` within "
            f"{avatars.UPLOAD_EXPIRES_S // 60} minutes. A new upload replaces the previous avatar.",
            "properties": {
                "uploadUrl": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "fileKey": {"type": "string"},
            },
        },
        "AvatarDownload": {
            "type": "object",
            "additionalProperties": False,
            "required": ["downloadUrl"],
            "description": f"A presigned S3 GET, valid for {avatars.DOWNLOAD_EXPIRES_S // 60} minutes.",
            "properties": {"downloadUrl": {"type": "string"}},
        },
        **_job_schemas(timestamp),
        "Message": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
        "Hello": {
            "type": "object",
            "required": ["message", "timestamp"],
            "properties": {"message": {"type": "string"}, "timestamp": {"type": "string"}},
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        },
    }


def _job_properties(kind: str, timestamp: dict[str, Any]) -> dict[str, Any]:
    return {
        "jobId": {"type": "string", "pattern": jobs.JOB_ID_PATTERN},
        "kind": {"type": "string", "enum": [kind]},
        "status": {
            "type": "string",
            "enum": list(jobs.STATUSES),
            "description": "queued -> running -> done; failed (the job as a whole) and cancelled are final too",
        },
        "format": {"type": "string", "enum": list(bulk_files.FORMATS)},
        "createdAt": timestamp,
        "startedAt": timestamp,
        "finishedAt": timestamp,
        "expiresAt": {
            **timestamp,
            "description": f"The job and its report are deleted after this ({jobs.JOB_RETENTION_DAYS} days after "
            "it was created)",
        },
        "error": {"type": "string", "description": "Why the job failed as a whole"},
    }


def _job_schemas(timestamp: dict[str, Any]) -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    problem = {
        "type": "object",
        "required": ["field", "message"],
        "properties": {"field": {"type": ["string", "null"]}, "message": {"type": "string"}},
    }
    import_job = {
        **_job_properties(jobs.IMPORT, timestamp),
        "invite": {"type": "boolean"},
        "source": {"type": "string", "enum": [jobs.INLINE, jobs.UPLOAD]},
        "counts": _ref("ImportCounts"),
    }
    import_required = ["jobId", "kind", "status", "format", "createdAt", "expiresAt", "invite", "source", "counts"]
    page = {"count": count, "nextCursor": {"type": ["string", "null"]}}
    export_job = {**_job_properties(jobs.EXPORT, timestamp), "users": count, "bytes": count}
    export_required = ["jobId", "kind", "status", "format", "createdAt", "expiresAt", "users", "bytes"]
    return {
        "ImportCounts": {
            "type": "object",
            "additionalProperties": False,
            "required": ["total", "processed", "created", "exists", "failed"],
            "properties": {
                "total": {"type": ["integer", "null"], "minimum": 0, "description": "null until the file is read"},
                "processed": count,
                "created": count,
                "exists": {**count, "description": "rows whose email belonged to a user already"},
                "failed": count,
            },
        },
        "ImportUploadRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["upload"],
            "properties": {
                "upload": {"type": "boolean", "enum": [True]},
                "format": {"type": "string", "enum": list(bulk_files.FORMATS), "default": bulk_files.CSV},
                "invite": {"type": "boolean", "default": True},
            },
            "description": "Asks for a presigned S3 form to upload a file larger than the request body limit; "
            "the job starts when the file lands.",
            "examples": [{"upload": True, "format": "csv", "invite": True}],
        },
        "UploadForm": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url", "fields", "key", "expiresAt", "maxBytes", "contentType"],
            "description": "A presigned S3 POST: send `fields`, then the file as `file`, as multipart/form-data to "
            f"`url` before `expiresAt` ({imports.UPLOAD_EXPIRES_S // 60} minutes), of the content type named and at "
            f"most `maxBytes` ({imports.MAX_UPLOAD_BYTES // (1024 * 1024)} MiB).",
            "properties": {
                "url": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "key": {"type": "string"},
                "expiresAt": timestamp,
                "maxBytes": count,
                "contentType": {"type": "string", "enum": list(bulk_files.MEDIA_TYPES.values())},
            },
        },
        "ImportJob": {
            "type": "object",
            "additionalProperties": False,
            "required": import_required,
            "properties": {**import_job, "upload": _ref("UploadForm")},
        },
        "RowError": {
            "type": "object",
            "additionalProperties": False,
            "required": ["row", "field", "message"],
            "properties": {
                "row": {"type": "integer", "minimum": 1},
                "field": {"type": ["string", "null"], "description": "null: the row as a whole"},
                "message": {"type": "string"},
            },
        },
        "ImportReport": {
            "type": "object",
            "additionalProperties": False,
            "required": [*import_required, "errors", "count", "nextCursor"],
            "properties": {**import_job, "errors": {"type": "array", "items": _ref("RowError")}, **page},
        },
        "ImportRow": {
            "type": "object",
            "additionalProperties": False,
            "required": ["row", "outcome"],
            "properties": {
                "row": {"type": "integer", "minimum": 1},
                "outcome": {"type": "string", "enum": list(jobs.OUTCOMES)},
                "userId": {"type": "string", "description": "The user created, or the one that has the email"},
                "errors": {"type": "array", "items": problem},
            },
        },
        "ImportRows": {
            "type": "object",
            "additionalProperties": False,
            "required": ["jobId", "rows", "count", "nextCursor"],
            "properties": {
                "jobId": {"type": "string", "pattern": jobs.JOB_ID_PATTERN},
                "rows": {"type": "array", "items": _ref("ImportRow")},
                **page,
            },
        },
        "ExportRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"format": {"type": "string", "enum": list(bulk_files.FORMATS), "default": "jsonl"}},
            "examples": [{"format": "csv"}],
        },
        "ExportJob": {
            "type": "object",
            "additionalProperties": False,
            "required": export_required,
            "properties": {
                **export_job,
                "download": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["url", "expiresAt"],
                    "description": f"When done: a presigned S3 GET of the file, valid "
                    f"{exports.DOWNLOAD_EXPIRES_S // 60} minutes (read the job again for a fresh one)",
                    "properties": {"url": {"type": "string"}, "expiresAt": timestamp},
                },
            },
        },
    }


def _import_body() -> dict[str, Any]:
    csv_example = "name,email,phone,role\nAda Lovelace,ada@example.com,+14155550123,member\n"
    jsonl_example = '{"name": "Grace Hopper", "email": "grace@example.com", "role": "admin"}\n'
    return {
        "required": True,
        "description": f"The file itself (up to the request body limit, {bulk_files.MAX_ROW_BYTES} bytes a row), "
        "or a JSON request for an upload form. CSV: a header naming `name`, `email` (required), `phone`, "
        "`role` (an export's other columns are ignored); JSON Lines: one object per line with those fields. "
        "Each row is checked as POST /users checks a body; a bad row fails on its own.",
        "content": {
            "text/csv": {"schema": {"type": "string", "minLength": 1}, "examples": {"csv": {"value": csv_example}}},
            "application/x-ndjson": {
                "schema": {"type": "string", "minLength": 1},
                "examples": {"jsonl": {"value": jsonl_example}},
            },
            "application/json": {"schema": _ref("ImportUploadRequest")},
        },
    }


def _search_query() -> list[dict[str, Any]]:
    """GET /users's filters and sort (chalicelib/domain/search.py), besides limit and cursor."""
    text = f"[^{CONTROL_CHARS}]"
    edge = f"[^{CONTROL_CHARS}\\s]"
    return [
        {
            "name": "email",
            "in": "query",
            "description": "Exactly this email, regardless of case (normalised as on write): at most one user, found "
            "in one lookup whatever the number of users. Combines with role and enabled; not with q or sort.",
            "schema": _email_schema(),
        },
        {
            "name": "q",
            "in": "query",
            "description": "Users whose name or email starts with this text, regardless of case (Unicode case "
            "folding and NFC for names: `strasse` finds Straße; accents count: `jose` does not find José). Results "
            "come in the order of the name or email that matched, each user once. Combines with role and "
            "enabled; not with email or sort.",
            "schema": {
                "type": "string",
                "minLength": Q_MIN,
                "maxLength": Q_MAX,
                # At least two characters once surrounding spaces are removed, and no control character.
                "pattern": f"^\\s*{edge}{text}*{edge}\\s*$",
            },
        },
        {"name": "role", "in": "query", "schema": {"type": "string", "enum": list(ROLES)}},
        {"name": "enabled", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]}},
        {
            "name": "sort",
            "in": "query",
            "description": "createdAt: oldest first; -createdAt: newest first; name: by name, regardless of case (code "
            "point order, not a locale's collation). Stable across pages: a user created before the walk and not "
            "deleted appears exactly once (by name: unless renamed meanwhile).",
            "schema": {"type": "string", "enum": list(SORTS), "default": DEFAULT_SORT},
        },
    ]


def _page_query() -> list[dict[str, Any]]:
    return [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": PAGE_DEFAULT},
        },
        {
            "name": "cursor",
            "in": "query",
            "description": "The nextCursor of the previous page, as given, with the same filters and sort: opaque, "
            "signed and bound to this route, this caller and this query, so any other value gets 400. A cursor may "
            "lead to an empty last page when the results end exactly where its page did.",
            "schema": {"type": "string", "maxLength": MAX_CURSOR_LEN, "pattern": CURSOR_PATTERN},
        },
    ]


def _paths() -> dict[str, Any]:
    envelope = _ref("UserEnvelope")
    replayed = idempotency.REPLAYED_HEADER
    return {
        "/hello": {"get": _op("hello", "Liveness greeting", {"200": _json(_ref("Hello"), "Greeting")}, secure=False)},
        "/openapi.json": {
            "get": _op("openapi", "This document", {"200": _json({"type": "object"}, "OpenAPI document")}, secure=False)
        },
        "/users": {
            "post": _op(
                "createUser",
                "Create a user (admins)",
                {
                    "201": {**_json(envelope, "Created", ("ETag", "Location", replayed)), "links": _CREATED_USER_LINKS},
                    **_errors(*_WRITE, "403", "409", "422"),
                },
                body="NewUser",
                parameters=("IdempotencyKey",),
            ),
            "get": _op(
                "listUsers",
                "Find users: all of them, or by email, name or email prefix, role and state; newest first, oldest "
                "first or by name; a page at a time (admins)",
                {"200": _json(_ref("UserList"), "A page of users"), **_errors("400", "401", "403", "503")},
                query=[*_search_query(), *_page_query()],
            ),
        },
        "/users/me": {
            "get": _op(
                "getProfile",
                "Your own profile",
                {
                    "200": _json(_ref("User"), "Your profile", ("ETag",)),
                    "304": _NOT_MODIFIED,
                    **_errors("401", "404", "503"),
                },
                parameters=("IfNoneMatch",),
            ),
            "put": _op(
                "putProfile",
                "Create (first call) or update your own profile",
                {
                    "200": _json(envelope, "Updated", ("ETag", replayed)),
                    "201": _json(envelope, "Created", ("ETag", "Location", replayed)),
                    **_errors(*_WRITE, "403", "409", "412", "422"),
                },
                body="ProfileUpdate",
                parameters=("IfMatch", "IfNoneMatchWrite", "IdempotencyKey"),
            ),
        },
        "/users/{userId}": {
            "get": _op(
                "getUser",
                "A user (admins, or the owner)",
                {
                    "200": _json(_ref("User"), "The user", ("ETag",)),
                    "304": _NOT_MODIFIED,
                    **_errors("401", "403", "404", "503"),
                },
                parameters=("UserId", "IfNoneMatch"),
            ),
            "put": _op(
                "updateUser",
                "Partially update a user (admins, or the owner)",
                {
                    "200": _json(envelope, "Updated", ("ETag", replayed)),
                    **_errors(*_WRITE, "403", "404", "409", "412", "422"),
                },
                body="UserUpdate",
                parameters=("UserId", "IfMatch", "IfNoneMatchWrite", "IdempotencyKey"),
            ),
            "delete": _op(
                "deleteUser",
                "Delete a user (admins)",
                {
                    "200": _json(_ref("Message"), "Deleted", (replayed,)),
                    **_errors("400", "401", "403", "404", "409", "412", "422", "503"),
                },
                parameters=("UserId", "IfMatch", "IfNoneMatchWrite", "IdempotencyKey"),
            ),
        },
        "/users/me/email-verification": {
            "post": _op(
                "verifyEmail",
                "Confirm your pending email change with the mailed code: sign-in, record and reservation move "
                "together, the old address is released, and tokens issued before (with the old address) are refused",
                {
                    "200": _json(envelope, "Email changed", ("ETag", replayed)),
                    **_errors(*_WRITE, "404", "409", "422"),
                },
                body="EmailVerification",
                parameters=("IdempotencyKey",),
            )
        },
        **{
            f"/users/{{userId}}/{action}": {
                "post": _op(
                    operation,
                    summary,
                    {
                        "200": _json(envelope, "Done: one change event of this type", ("ETag", replayed)),
                        **_errors("400", "401", "403", "404", "409", "422", "503"),
                    },
                    parameters=("UserId", "IdempotencyKey"),
                )
            }
            for action, operation, summary in (
                (
                    "invitation",
                    "resendInvitation",
                    "Send the invitation again with a new temporary password, only while the user has never signed "
                    "in (admins; event InvitationResent)",
                ),
                (
                    "password-reset",
                    "resetPassword",
                    "Cognito's admin reset: the user gets a code and must set a new password; tokens issued before "
                    "are refused (admins, not for oneself; event PasswordReset)",
                ),
                (
                    "sign-out",
                    "signOut",
                    "Sign the user out everywhere: refresh tokens revoked, ID tokens issued before refused "
                    "(admins; event SignedOut)",
                ),
            )
        },
        "/users/{userId}/history": {
            "get": _op(
                "getUserHistory",
                "A user's changes, oldest first, a page at a time (admins, or the owner)",
                {
                    "200": _json(
                        _ref("History"),
                        "A page of the user's history: kept "
                        f"{RETENTION_DAYS} days after each change, so also after a delete; empty for an id "
                        "without changes. A change appears within seconds of its write.",
                    ),
                    **_errors("400", "401", "403", "404", "503"),
                },
                parameters=("UserId",),
                query=_page_query(),
            )
        },
        **_job_paths(),
        "/users/{userId}/avatar": {
            "post": _op(
                "createAvatarUpload",
                "A presigned form to upload the user's avatar (admins, or the owner)",
                {"200": _json(_ref("AvatarUpload"), "Upload form"), **_errors(*_WRITE, "403", "404")},
                body="AvatarRequest",
                parameters=("UserId",),
            ),
            "get": _op(
                "getAvatar",
                "A presigned URL to download the user's avatar (admins, or the owner)",
                {"200": _json(_ref("AvatarDownload"), "Download URL"), **_errors("401", "403", "404", "503")},
                parameters=("UserId",),
            ),
        },
    }


def _job_paths() -> dict[str, Any]:
    replayed = idempotency.REPLAYED_HEADER
    start_import = _op(
        "startImport",
        "Import users from a CSV or JSON Lines file, as a job (admins)",
        {
            "202": _json(_ref("ImportJob"), "Queued; an upload job carries its form", ("Location", replayed)),
            **_errors(*_WRITE, "403", "409", "422"),
        },
        parameters=("IdempotencyKey",),
        query=[
            {
                "name": "invite",
                "in": "query",
                "description": "false sends no invitations (an upload request may say it in its JSON body "
                "too: false in either sends none)",
                "schema": {"type": "string", "enum": ["true", "false"], "default": "true"},
            }
        ],
    )
    start_import["requestBody"] = _import_body()
    start_export = _op(
        "startExport",
        "Export every user to a file, as a job (admins)",
        {
            "202": _json(_ref("ExportJob"), "Queued", ("Location", replayed)),
            **_errors(*_WRITE, "403", "409", "422"),
        },
        parameters=("IdempotencyKey",),
    )
    start_export["requestBody"] = {
        "required": False,
        "description": "Optional: JSON Lines unless `format` is csv",
        "content": {"application/json": {"schema": _ref("ExportRequest")}},
    }
    return {
        "/users/imports": {"post": start_import},
        "/users/imports/{jobId}": {
            "get": _op(
                "getImport",
                "An import's status, counts and failed rows, a page at a time (admins)",
                {
                    "200": _json(_ref("ImportReport"), "The job and a page of its row errors, in row order"),
                    **_errors("400", "401", "403", "404", "503"),
                },
                parameters=("JobId",),
                query=_page_query(),
            ),
            "delete": _op(
                "cancelImport",
                "Cancel an import between batches: rows done stay done (admins)",
                {
                    "200": _json(_ref("ImportJob"), "Cancelled (also when it was already)"),
                    **_errors("401", "403", "404", "409", "503"),
                },
                parameters=("JobId",),
            ),
        },
        "/users/imports/{jobId}/rows": {
            "get": _op(
                "getImportRows",
                "Every processed row's outcome and user, a page at a time (admins)",
                {
                    "200": _json(_ref("ImportRows"), "A page of row outcomes, in row order"),
                    **_errors("400", "401", "403", "404", "503"),
                },
                parameters=("JobId",),
                query=_page_query(),
            )
        },
        "/users/exports": {"post": start_export},
        "/users/exports/{jobId}": {
            "get": _op(
                "getExport",
                "An export's status and, when done, a download link (admins)",
                {"200": _json(_ref("ExportJob"), "The job"), **_errors("401", "403", "404", "503")},
                parameters=("JobId",),
            )
        },
    }


def _error_responses() -> dict[str, Any]:
    responses = {
        f"E{code}": _json(_ref("Error"), text, ("Retry-After",) if code == "503" else ())
        for code, text in _ERROR_TEXT.items()
    }
    responses["E409"]["headers"] = {"Retry-After": _ref("RetryAfterLockedKey", "headers")}
    return responses


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "User Management API",
            "version": "1.0.0",
            "description": "Users on API Gateway, Lambda, DynamoDB and Cognito, avatars in S3. Undeclared methods "
            'get 405, unknown paths 404, all errors as {"error": ...}.',
        },
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "cognito": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Cognito ID token, as `Bearer <token>` or the bare token.",
                }
            },
            "schemas": _schemas(),
            "parameters": _parameters(),
            "headers": _response_headers(),
            "responses": _error_responses(),
        },
    }


DOCUMENT_PATH = "/openapi.json"
# A host name or IP literal with an optional port: all a server URL may take from a request.
_HOST = re.compile(r"([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


def server_url(stage: str, context: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """The API's base URL as the caller reached this document, for its `servers`: so an OpenAPI
    client (Postman, Swagger UI) calls the API where it found it, with no edits.

    Deployed, API Gateway gives the domain (`domainName`) and the path as requested, which starts
    with the stage (`/api/openapi.json`) or a custom domain's base path; locally the Host header
    says how the developer reached `make run` (127.0.0.1 or localhost: Swagger UI on /docs then
    calls the same origin). None if the host is not a plain host[:port].
    """
    host = str(context.get("domainName") or headers.get("host") or "")
    if not _HOST.fullmatch(host):
        return None
    path = str(context.get("path") or "")
    prefix = path.removesuffix(DOCUMENT_PATH) if path.endswith(DOCUMENT_PATH) else ""
    scheme = "http" if stage in LOCAL_STAGES else "https"  # API Gateway serves HTTPS only
    return f"{scheme}://{host}{prefix}"


def document_for(base_url: str | None) -> dict[str, Any]:
    """The document with `servers` naming `base_url` (none given: OpenAPI's default, `/`)."""
    described = document()
    if base_url is None:
        return described
    return {"openapi": described["openapi"], "info": described["info"], "servers": [{"url": base_url}], **described}
