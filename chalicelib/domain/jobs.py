"""Bulk jobs: an import (rows of a file become users) or an export (every user to a file in S3).

A job moves `queued` -> `running` -> `done`, or ends `failed` (the job as a whole: an unreadable
file, a file never uploaded, a worker that kept crashing) or `cancelled` (an admin's DELETE, from
`queued` or `running`); the last three are final. Every row of an import ends `created`, `exists`
(its email belongs to a user already: that user's id is reported) or `failed` (with the
problems: row number, field, message). A job and its report expire JOB_RETENTION_DAYS after the
job was created.

What the domain asks of storage, the file bucket and the queue is said here as protocols; the
AWS adapters are chalicelib/adapters/job_store.py, transfers.py and job_queue.py.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

IMPORT, EXPORT = "import", "export"
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINAL = frozenset({DONE, FAILED, CANCELLED})
# Every move a job may make; anything else is refused (a stale or duplicate worker's write).
MOVES: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RUNNING, FAILED, CANCELLED}),
    RUNNING: frozenset({DONE, FAILED, CANCELLED}),
    DONE: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}
CREATED, EXISTS, ROW_FAILED = "created", "exists", "failed"
OUTCOMES = (CREATED, EXISTS, ROW_FAILED)
INLINE, UPLOAD = "inline", "upload"

JOB_RETENTION_DAYS = 7
JOB_RETENTION_S = JOB_RETENTION_DAYS * 24 * 3600
# Rows per queue message: one message is one batch, and a cancel takes effect between batches.
BATCH_ROWS = 50
# How often SQS hands a message over before the dead-letter queue takes it (the redrive policy,
# infra/limits.json bulk_jobs.max_receive_count; a test holds the two equal). On the last time a
# failing batch records its rows `failed` instead, so no row is left without an outcome.
MAX_RECEIVES = 5
# A batch throttled or refused by AWS is sent again later, each time later (capped at SQS's 15
# minutes), this many times in all (over an hour: 77 minutes), then its rows fail as unavailable.
MAX_BATCH_ATTEMPTS = 14
MAX_DELAY_S = 900


def can_move(old: str, new: str) -> bool:
    return new in MOVES.get(old, frozenset())


def new_job_id(write_token: str) -> str:
    """The job's id, from the request's write token: a retry with the same Idempotency-Key (which
    keeps the token) names the same job, so it completes that job instead of starting another."""
    digest = hashlib.sha256(f"job\n{write_token}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def row_token(job_id: str, row: int) -> str:
    """The write token of one row's create: the same for every delivery of the row, so a retried
    or redelivered batch recognises the user its earlier attempt created instead of making another."""
    digest = hashlib.sha256(f"import\n{job_id}\n{row}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def backoff_s(attempt: int) -> int:
    """Seconds before a throttled batch's `attempt`-th try (2, 4, 8, ... capped at MAX_DELAY_S)."""
    return int(min(MAX_DELAY_S, 2**attempt))


@dataclass(frozen=True)
class Counts:
    total: int | None = None  # known once the file has been read
    created: int = 0
    exists: int = 0
    failed: int = 0

    @property
    def processed(self) -> int:
        return self.created + self.exists + self.failed

    def public(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "processed": self.processed,
            "created": self.created,
            "exists": self.exists,
            "failed": self.failed,
        }


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    status: str
    actor: str
    format: str
    created_at: str
    expires_at: int  # epoch seconds: the job and its report are gone after it
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    # Imports
    invite: bool = True
    source: str = INLINE
    upload_expires_at: int | None = None
    counts: Counts = field(default_factory=Counts)
    # Exports
    users: int = 0
    bytes: int = 0
    object_key: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"jobId": self.job_id, "kind": self.kind, "status": self.status, "format": self.format}
        out["createdAt"] = self.created_at
        for name, value in (("startedAt", self.started_at), ("finishedAt", self.finished_at)):
            if value is not None:
                out[name] = value
        out["expiresAt"] = _iso(self.expires_at)
        if self.error is not None:
            out["error"] = self.error
        if self.kind == IMPORT:
            out["invite"] = self.invite
            out["source"] = self.source
            out["counts"] = self.counts.public()
        else:
            out["users"] = self.users
            out["bytes"] = self.bytes
        return out


def job_timestamp(epoch: int) -> str:
    """An epoch second as the API writes times (ISO 8601, UTC)."""
    return _iso(epoch)


def _iso(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RowOutcome:
    """How one row ended: `created` or `exists` with the user's id, or `failed` with its problems
    (each {"field": name or None for the row as a whole, "message": ...})."""

    row: int
    outcome: str
    user_id: str | None = None
    problems: tuple[dict[str, Any], ...] = ()

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row, "outcome": self.outcome}
        if self.user_id is not None:
            out["userId"] = self.user_id
        if self.problems:
            out["errors"] = [dict(problem) for problem in self.problems]
        return out

    def errors(self) -> Iterator[dict[str, Any]]:
        """The row's problems as entries of a job's error list."""
        for problem in self.problems:
            yield {"row": self.row, "field": problem.get("field"), "message": problem["message"]}


def failed_row(row: int, message: str, field_name: str | None = None) -> RowOutcome:
    return RowOutcome(row, ROW_FAILED, problems=({"field": field_name, "message": message},))


@dataclass(frozen=True)
class PlanPoint:
    """How far the planner of an import has read its file: the offset after the last row it has
    queued, and that row's number. Saved after each queued message, so a planner that stops (its
    time is up, it crashed) resumes there, and re-queues at most what it sent after the save."""

    offset: int
    row: int
    header: tuple[str, ...] = ()
    rows_start: int = 0
    done: bool = False  # every row queued (a late duplicate of the file's event finds nothing to do)


@dataclass(frozen=True)
class Part:
    number: int
    etag: str


@dataclass(frozen=True)
class ExportPoint:
    """How far an export has written: the multipart upload, its parts, and the listing key after
    the last user of the last part (the scan resumes there, so no user is written twice). `step`
    counts the runs: each run claims the next step, so a duplicated message finds it taken."""

    step: int = 0
    upload_id: str | None = None
    parts: tuple[Part, ...] = ()
    after: str | None = None
    users: int = 0
    bytes: int = 0

    def next_part(self, etag: str, after: str | None, users: int, size: int) -> ExportPoint:
        number = len(self.parts) + 1
        return replace(
            self,
            parts=(*self.parts, Part(number, etag)),
            after=after,
            users=self.users + users,
            bytes=self.bytes + size,
        )


class JobStore(Protocol):
    def create(self, job: Job) -> Job:
        """Store a new job; the stored one if a job with this id exists already (a retry of the
        request that made it)."""

    def get(self, job_id: str) -> Job | None:
        """The job (strongly consistent), or None."""

    def forget(self, job_id: str) -> None:
        """Remove a job that never started (its request failed half-way)."""

    def move(self, job_id: str, old: frozenset[str], new: str, at: str, error: str | None = None) -> Job | None:
        """Move the job from one of `old` to `new`, stamping the time; None (nothing written) if it
        is in another status."""

    def set_total(self, job_id: str, total: int, point: PlanPoint) -> bool:
        """Record how many rows the file has and where they start (once: False if already done)."""

    def plan_point(self, job_id: str) -> PlanPoint | None:
        """Where the planner stopped (None: it has not counted the rows yet)."""

    def save_plan_point(self, job_id: str, old_row: int, point: PlanPoint) -> bool:
        """Move the planner's point on from `old_row` (False: another planner moved it first)."""

    def finish_planning(self, job_id: str) -> None:
        """Note that every row has been queued."""

    def done_rows(self, job_id: str, rows: list[int]) -> set[int]:
        """Which of these rows have an outcome already."""

    def record(self, job_id: str, outcome: RowOutcome, expires_at: int) -> bool:
        """Store the row's outcome and count it, in one write, unless it has one already (False:
        then nothing is counted again)."""

    def finish_if_complete(self, job_id: str, at: str) -> Job | None:
        """Mark a running import done if it is planned and every row has an outcome (None: not yet)."""

    def outcomes(
        self, job_id: str, limit: int, after: int | None, failed_only: bool
    ) -> tuple[list[RowOutcome], int | None]:
        """Up to `limit` row outcomes after row `after`, in row order, and the row to continue after."""

    def claim_step(self, job_id: str, step: int, runner: str, at: str) -> ExportPoint | None:
        """Take an export's step `step` for `runner` (a queue message's id) and mark it running:
        its point, with step + 1. The same runner may take it again (its message came back after a
        crash); None if another took it, or the job is neither queued nor running."""

    def export_point(self, job_id: str) -> ExportPoint | None:
        """Where an export stands (None: no such job)."""

    def save_export_point(self, job_id: str, point: ExportPoint, runner: str) -> bool:
        """Save the export's point, if its step is still the runner's (False: another run took over)."""

    def finish_export(self, job_id: str, point: ExportPoint, runner: str, key: str, at: str) -> Job | None:
        """Mark the export done with what it wrote (None: it is no longer the runner's, or running)."""


@dataclass(frozen=True)
class UploadForm:
    """A presigned S3 POST: `fields` first, then the file, to `url`, before `expires_at`."""

    url: str
    fields: dict[str, str]
    key: str
    expires_at: int
    max_bytes: int
    content_type: str

    def public(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "fields": self.fields,
            "key": self.key,
            "expiresAt": _iso(self.expires_at),
            "maxBytes": self.max_bytes,
            "contentType": self.content_type,
        }


class Files(Protocol):
    """The bucket of import and export files (chalicelib/adapters/transfers.py)."""

    def put(self, key: str, body: bytes, content_type: str) -> None: ...

    def import_form(self, key: str, content_type: str, expires_in: int) -> UploadForm: ...

    def read(self, key: str, offset: int = 0) -> Iterator[bytes]:
        """The object's bytes from `offset`, a chunk at a time; FileGone if there is none."""

    def delete(self, key: str) -> None: ...

    def start_upload(self, key: str, content_type: str) -> str:
        """A multipart upload's id."""

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        """The part's ETag."""

    def complete_upload(self, key: str, upload_id: str, parts: tuple[Part, ...]) -> None: ...

    def abort_upload(self, key: str, upload_id: str) -> None: ...

    def download_url(self, key: str, filename: str, expires_in: int) -> str: ...


class FileGone(Exception):
    """The object is not (or no longer) in the bucket."""


class Queue(Protocol):
    def send(self, messages: list[dict[str, Any]], delay_s: int = 0) -> None:
        """Queue each message (a batch of up to 10 in one request); raises ServiceUnavailable."""


class EmailOwners(Protocol):
    def owner(self, email: str) -> str | None:
        """The userId of the user holding this email, if any (one strongly consistent read)."""


# Where each job's file lives in the bucket (the avatars' bucket: its own prefixes, its own rules).
IMPORT_PREFIX, EXPORT_PREFIX = "imports/", "exports/"
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl"}
JOB_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_JOB_ID_RE = re.compile(JOB_ID_PATTERN)


def is_job_id(value: str) -> bool:
    return bool(_JOB_ID_RE.fullmatch(value))


def import_key(job_id: str, fmt: str) -> str:
    return f"{IMPORT_PREFIX}{job_id}.{EXTENSIONS[fmt]}"


def export_key(job_id: str, fmt: str) -> str:
    return f"{EXPORT_PREFIX}{job_id}.{EXTENSIONS[fmt]}"


def parse_import_key(key: str) -> tuple[str, str] | None:
    """(job id, format) of an import file's key; None for any other key."""
    if not key.startswith(IMPORT_PREFIX):
        return None
    name, _, extension = key[len(IMPORT_PREFIX) :].rpartition(".")
    fmt = next((f for f, ext in EXTENSIONS.items() if ext == extension), None)
    if fmt is None or not is_job_id(name):
        return None
    return name, fmt
