"""Imports, as the API sees them: start one (a file in the request, or a form to upload one), read
its status and its report, cancel it. The rows themselves are created by the worker
(chalicelib/domain/import_rows.py), which the file's arrival in the bucket starts.

Starting is safe to retry: the job's id comes from the request's write token (kept by an
Idempotency-Key), storing the job is a conditional put that returns the job a first attempt
stored, and putting the file again writes the same bytes under the same key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.domain.bulk_files import MEDIA_TYPES, count_rows
from chalicelib.domain.cursor import CursorCodec, CursorScope
from chalicelib.domain.errors import InvalidCursor, JobFinished, JobNotFound, ServiceUnavailable
from chalicelib.domain.jobs import (
    CANCELLED,
    FAILED,
    IMPORT,
    INLINE,
    JOB_RETENTION_S,
    QUEUED,
    RUNNING,
    UPLOAD,
    Files,
    Job,
    JobStore,
    RowOutcome,
    UploadForm,
    import_key,
    is_job_id,
    new_job_id,
)
from chalicelib.domain.service import utc_now

logger = logging.getLogger("users_api.imports")

# An upload form is good this long; the largest file it takes (about a million rows of CSV).
UPLOAD_EXPIRES_S = 15 * 60
MAX_UPLOAD_BYTES = 128 * 1024 * 1024
# A job whose file has not arrived this long after its form expired fails ("never uploaded"): an
# upload begun just before the form expired may still be finishing until then.
UPLOAD_GRACE_S = 15 * 60
NEVER_UPLOADED = "No file was uploaded before the upload form expired; start a new import"


@dataclass(frozen=True)
class ImportRequest:
    """What POST /users/imports asks for: a file in the body (`body`), or a form (`body` None)."""

    format: str
    invite: bool
    body: bytes | None = None


class Imports:
    def __init__(
        self,
        jobs: JobStore,
        files: Files,
        cursors: CursorCodec,
        clock: Callable[[], str] = utc_now,
        epoch: Callable[[], float] = time.time,
    ):
        self._jobs = jobs
        self._files = files
        self._cursors = cursors
        self._clock = clock
        self._epoch = epoch

    def start(self, actor: str, request: ImportRequest, token: str) -> tuple[Job, UploadForm | None]:
        """A queued import and, for an upload, its form. A file in the body is checked whole first
        (its header, its size): FileRefused (400) and nothing is stored."""
        if request.body is not None:
            count_rows(request.format, [request.body])
        now = int(self._epoch())
        job = Job(
            job_id=new_job_id(token),
            kind=IMPORT,
            status=QUEUED,
            actor=actor,
            format=request.format,
            created_at=self._clock(),
            expires_at=now + JOB_RETENTION_S,
            invite=request.invite,
            source=INLINE if request.body is not None else UPLOAD,
            upload_expires_at=None if request.body is not None else now + UPLOAD_EXPIRES_S,
        )
        stored = self._jobs.create(job)
        key = import_key(stored.job_id, stored.format)
        content_type = MEDIA_TYPES[stored.format]
        if request.body is None:
            expires_in = max(1, (stored.upload_expires_at or now) - now)
            return stored, self._files.import_form(key, content_type, expires_in)
        if stored.status == QUEUED:
            try:
                self._files.put(key, request.body, content_type)
            except ServiceUnavailable:
                # Whether the file landed is unknown. A retry with the same Idempotency-Key puts it
                # again under the same job; without one, the job is taken back (if its file did land,
                # the worker finds no job and deletes it).
                self._forget(stored.job_id)
                raise
        return stored, None

    def _forget(self, job_id: str) -> None:
        try:
            self._jobs.forget(job_id)
        except Exception:
            logger.warning("could not take back a job whose file was not stored; it expires unstarted", exc_info=True)

    def get(self, job_id: str) -> Job:
        """The import, as it is now; JobNotFound for an unknown, expired or other kind of job. A job
        whose upload never came is failed here, once its form and the grace after it are over."""
        job = self._jobs.get(job_id) if is_job_id(job_id) else None
        now = int(self._epoch())
        if job is None or job.kind != IMPORT or job.expires_at <= now:
            raise JobNotFound()
        deadline = (job.upload_expires_at or 0) + UPLOAD_GRACE_S
        if job.status == QUEUED and job.source == UPLOAD and now > deadline:
            moved = self._jobs.move(job_id, frozenset({QUEUED}), FAILED, self._clock(), NEVER_UPLOADED)
            return moved or self.get(job_id)
        return job

    def report(
        self, job_id: str, limit: int, cursor: str | None, failed_only: bool
    ) -> tuple[Job, list[RowOutcome], str | None]:
        """The job and a page of its rows' outcomes (failed ones only, or all), in row order."""
        job = self.get(job_id)
        after = self._decode(job_id, cursor, failed_only) if cursor is not None else None
        outcomes, last = self._jobs.outcomes(job_id, limit, after, failed_only)
        return job, outcomes, (self._encode(job_id, last, failed_only) if last is not None else None)

    @staticmethod
    def _scope(job_id: str, failed_only: bool) -> CursorScope:
        # Bound to the list (errors or all rows) and the job; any admin may page any job.
        return CursorScope(route=f"imports/{'errors' if failed_only else 'rows'}", caller="", query=job_id)

    def _encode(self, job_id: str, row: int, failed_only: bool) -> str:
        return self._cursors.encode(str(row), self._scope(job_id, failed_only))

    def _decode(self, job_id: str, cursor: str, failed_only: bool) -> int:
        """The row a cursor continues after: only a cursor this list of this job handed out."""
        row = self._cursors.decode(cursor, self._scope(job_id, failed_only))
        if not row.isdigit():
            raise InvalidCursor()
        return int(row)

    def cancel(self, job_id: str) -> Job:
        """Stop the import between batches: rows done stay done, the others are not created. A
        cancelled job cancelled again is answered as it is; a finished one is JobFinished (409)."""
        for _ in range(3):
            job = self.get(job_id)
            if job.status == CANCELLED:
                return job
            if job.final:
                raise JobFinished()
            moved = self._jobs.move(job_id, frozenset({QUEUED, RUNNING}), CANCELLED, self._clock())
            if moved is not None:
                self._discard_file(moved)
                return moved
        raise ServiceUnavailable()

    def _discard_file(self, job: Job) -> None:
        """A cancelled job's file (personal data) goes now, not at the bucket's expiry."""
        try:
            self._files.delete(import_key(job.job_id, job.format))
        except Exception:
            logger.warning("could not delete a cancelled import's file; the bucket expires it", exc_info=True)
