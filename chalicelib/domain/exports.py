"""Exports: every user (public fields, role, enabled, createdAt, ...) to one file in S3, JSON Lines
or CSV, and a short-lived link to download it.

The worker (`ExportWriter`) streams: it reads the users a page at a time (a Scan of the users
table keeping its user items, chalicelib/adapters/user_pages.py) and sends the file to S3 as a
multipart upload, a part of PART_BYTES at a time, so its memory is one part and one page whatever
the number of users. After each part it saves the multipart upload, its parts and the table key
after the part's last user: a run that stops (its time is up, it crashed) continues from there, so
no user is written twice or skipped. The scan follows the table's key order (the user's id), which
no write moves: a user created or deleted during the export may or may not be in the file; every
other user is, once.

Its reads are paced to EXPORT_READ_UNITS_PER_SECOND read units a second (measured from what
DynamoDB reports it consumed), so an export never takes more than that from the table's
capacity, whatever its size.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, Protocol

from chalicelib.domain.bulk_files import CSV, FORMULA_STARTS, MEDIA_TYPES
from chalicelib.domain.errors import JobNotFound, ServiceUnavailable
from chalicelib.domain.jobs import (
    DONE,
    EXPORT,
    FAILED,
    JOB_RETENTION_S,
    MAX_BATCH_ATTEMPTS,
    QUEUED,
    RUNNING,
    ExportPoint,
    Files,
    Job,
    JobStore,
    Queue,
    backoff_s,
    export_key,
    is_job_id,
    new_job_id,
)
from chalicelib.domain.models import User, public_user
from chalicelib.domain.pacing import Pacer
from chalicelib.domain.service import utc_now

logger = logging.getLogger("users_api.exports")

# S3 takes parts of 5 MiB or more (the last excepted); 8 MiB keeps a part per run of work.
PART_BYTES = 8 * 1024 * 1024
# Items asked for per read of the table (a page also stops at DynamoDB's 1 MB, about 2,000 users
# with their reservations): few requests for a whole table, one page's memory whatever its size.
PAGE_USERS = 2_000
# A download link is good this long; GET the job again for a fresh one.
DOWNLOAD_EXPIRES_S = 15 * 60
GAVE_UP = "The export failed every time it was tried (see the worker's logs); start another"
CSV_COLUMNS = ("userId", "name", "email", "phone", "role", "enabled", "createdAt", "updatedAt", "version")

Deadline = Callable[[], bool]


class UserPages(Protocol):
    def pages(self, after: str | None, limit: int) -> Iterator[tuple[list[User], str | None, float]]:
        """Pages of users after the listing key `after`: each page's users, the key to continue
        after it (None after the last page) and the read units it consumed."""


def export_message(job_id: str, step: int, attempt: int = 0) -> dict[str, Any]:
    """The work of one run: continue the export from `step`; `attempt`: how many runs in a row AWS
    refused before this one (0 once a run got through)."""
    return {"kind": "export", "job": job_id, "step": step, **({"attempt": attempt} if attempt else {})}


def _neutral(value: str) -> str:
    """A cell a spreadsheet would run as a formula, quoted (OWASP, CSV injection); the import
    takes the quote off again (chalicelib/domain/bulk_files.py)."""
    return "'" + value if value[:1] in FORMULA_STARTS and value[:1] != "" else value


def csv_header() -> bytes:
    return (",".join(CSV_COLUMNS) + "\r\n").encode()


def export_line(user: User, fmt: str) -> bytes:
    """One user as one line of the file."""
    public = public_user(user)
    if fmt != CSV:
        return json.dumps(public, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    out = io.StringIO()
    values = {**public, "enabled": "true" if user.enabled else "false"}
    for name in ("name", "email"):
        values[name] = _neutral(str(values[name]))
    csv.writer(out).writerow([values.get(column, "") for column in CSV_COLUMNS])
    return out.getvalue().encode()


class Exports:
    """What the API does with exports: start one, read one."""

    def __init__(
        self,
        jobs: JobStore,
        files: Files,
        queue: Queue,
        clock: Callable[[], str] = utc_now,
        epoch: Callable[[], float] = time.time,
    ):
        self._jobs = jobs
        self._files = files
        self._queue = queue
        self._clock = clock
        self._epoch = epoch

    def start(self, actor: str, fmt: str, token: str) -> Job:
        job = Job(
            job_id=new_job_id(token),
            kind=EXPORT,
            status=QUEUED,
            actor=actor,
            format=fmt,
            created_at=self._clock(),
            expires_at=int(self._epoch()) + JOB_RETENTION_S,
        )
        stored = self._jobs.create(job)
        if stored.status == QUEUED:
            # Sent again by a retry with the same Idempotency-Key: the duplicate finds its step taken.
            try:
                self._queue.send([export_message(stored.job_id, 0)])
            except ServiceUnavailable:
                if stored == job:  # ours: take it back, so no job waits for a message never sent
                    self._jobs.forget(stored.job_id)
                raise
        return stored

    def get(self, job_id: str) -> tuple[Job, str | None, int | None]:
        """The export, and when it is done a download link and when the link expires."""
        job = self._jobs.get(job_id) if is_job_id(job_id) else None
        now = int(self._epoch())
        if job is None or job.kind != EXPORT or job.expires_at <= now:
            raise JobNotFound()
        if job.status != DONE or job.object_key is None:
            return job, None, None
        filename = f"users-{job.created_at[:10]}-{job.job_id[:8]}.{job.format}"
        url = self._files.download_url(job.object_key, filename, DOWNLOAD_EXPIRES_S)
        return job, url, now + DOWNLOAD_EXPIRES_S


class ExportWriter:
    """The worker's side: write the file, a part at a time, resuming where the last run stopped."""

    def __init__(
        self,
        jobs: JobStore,
        files: Files,
        queue: Queue,
        users: UserPages,
        pacer: Pacer,
        clock: Callable[[], str] = utc_now,
        part_bytes: int = PART_BYTES,
        page_users: int = PAGE_USERS,
    ):
        self._jobs = jobs
        self._files = files
        self._queue = queue
        self._users = users
        self._pacer = pacer
        self._clock = clock
        self._part_bytes = part_bytes
        self._page_users = page_users
        self.peak_buffer = 0  # the most bytes held at once, for the figures

    def run(self, job_id: str, step: int, runner: str, deadline: Deadline, attempt: int = 0) -> None:
        """One run: from the saved point to the end, or to the deadline (the rest is queued). When
        AWS refuses a read or a part (throttling, an outage, a slow emulator), what is saved stands
        and the run is queued again later, each time later, as an import's rows are (the live API
        keeps the table's capacity meanwhile); after MAX_BATCH_ATTEMPTS runs in a row the export
        fails. Other errors raise, for SQS to hand the message over again."""
        try:
            self._run(job_id, step, runner, deadline)
        except ServiceUnavailable:
            point = self._jobs.export_point(job_id)
            if point is None or point.step != step + 1 or attempt + 1 >= MAX_BATCH_ATTEMPTS:
                if point is not None and point.step == step + 1:
                    logger.error("an export failed after %d runs: AWS kept refusing", MAX_BATCH_ATTEMPTS)
                    self.give_up(job_id)
                    return
                raise
            delay = backoff_s(attempt + 1)
            logger.warning("AWS refused an export's read or part: it goes on in %d s", delay)
            self._queue.send([export_message(job_id, point.step, attempt + 1)], delay_s=delay)

    def _run(self, job_id: str, step: int, runner: str, deadline: Deadline) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.status not in (QUEUED, RUNNING):
            return
        point = self._jobs.claim_step(job_id, step, runner, self._clock())
        if point is None:
            return  # a duplicate message: another run has (or had) this step
        key = export_key(job_id, job.format)
        if point.upload_id is None:
            point = replace(point, upload_id=self._files.start_upload(key, MEDIA_TYPES[job.format]))
            if not self._jobs.save_export_point(job_id, point, runner):
                return
        if point.parts and point.after is None:
            self._complete(job_id, key, point, runner)  # an earlier run stopped after the last part
            return
        upload_id = point.upload_id
        assert upload_id is not None
        buffer = bytearray(csv_header() if job.format == CSV and not point.parts else b"")
        users = 0
        for page, after, units in self._users.pages(point.after, self._page_users):
            for user in page:
                buffer += export_line(user, job.format)
            users += len(page)
            self.peak_buffer = max(self.peak_buffer, len(buffer))
            self._pacer.take(units)
            if after is not None and len(buffer) >= self._part_bytes:
                etag = self._files.upload_part(key, upload_id, len(point.parts) + 1, bytes(buffer))
                point = point.next_part(etag, after, users, len(buffer))
                if not self._jobs.save_export_point(job_id, point, runner):
                    return
                buffer.clear()
                users = 0
                if deadline():
                    self._queue.send([export_message(job_id, point.step)])
                    return
        if not point.parts and not buffer:
            # No user at all: S3 completes no upload without a part, so the empty file is put whole.
            self._files.abort_upload(key, upload_id)
            self._files.put(key, b"", MEDIA_TYPES[job.format])
            self._jobs.finish_export(job_id, point, runner, key, self._clock())
            return
        if buffer:
            etag = self._files.upload_part(key, upload_id, len(point.parts) + 1, bytes(buffer))
            point = point.next_part(etag, None, users, len(buffer))
        else:
            point = replace(point, after=None)
        if self._jobs.save_export_point(job_id, point, runner):
            self._complete(job_id, key, point, runner)

    def _complete(self, job_id: str, key: str, point: ExportPoint, runner: str) -> None:
        assert point.upload_id is not None
        self._files.complete_upload(key, point.upload_id, point.parts)
        self._jobs.finish_export(job_id, point, runner, key, self._clock())

    def give_up(self, job_id: str) -> None:
        """The export crashed every time SQS handed it over: it fails, and its upload is dropped."""
        job = self._jobs.move(job_id, frozenset({QUEUED, RUNNING}), FAILED, self._clock(), GAVE_UP)
        point = self._jobs.export_point(job_id)
        if job is None or point is None or point.upload_id is None:
            return
        try:
            self._files.abort_upload(export_key(job_id, job.format), point.upload_id)
        except Exception:
            logger.warning("could not abort a failed export's upload; the bucket's rule removes it", exc_info=True)
