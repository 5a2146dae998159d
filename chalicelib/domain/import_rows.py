"""The import worker: read a job's file into batches (the planner), and turn each batch's rows into
users (the row importer), exactly as `POST /users` makes them.

Every step is safe to repeat, because SQS delivers at least once and a worker may stop anywhere:
- The planner counts the rows once (a conditional write), then queues batches and saves how far
  it got after each send. Stopped, it resumes from the last save, and sends again at most what it
  sent after it: a batch delivered twice is harmless, below.
- A row's user is created with a write token made from (job, row): a second delivery of the row
  finds the sign-in and the record its first one made and reports the same user, never a second
  one. A row whose email belongs to someone already (an earlier import of the same file, a user
  made by hand) reports `exists` with that user's id.
- A row's outcome and its count are written in one transaction, only if the row has none yet, so
  a count is never taken twice. The job is done when it is planned and no row is pending.
- AWS throttling or an outage stops the batch: the rows left go back to the queue, later each
  time, and fail as "unavailable" only after MAX_BATCH_ATTEMPTS tries. No row is dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from chalicelib.domain.bulk_files import FileRefused, Reader, Row, count_rows
from chalicelib.domain.errors import (
    ConcurrentModification,
    EmailAlreadyExists,
    ServiceUnavailable,
    ValidationError,
)
from chalicelib.domain.jobs import (
    BATCH_ROWS,
    CREATED,
    EXISTS,
    FAILED,
    MAX_BATCH_ATTEMPTS,
    QUEUED,
    ROW_FAILED,
    RUNNING,
    EmailOwners,
    FileGone,
    Files,
    Job,
    JobStore,
    PlanPoint,
    Queue,
    RowOutcome,
    backoff_s,
    failed_row,
    import_key,
    row_token,
)
from chalicelib.domain.models import NewUser
from chalicelib.domain.pacing import Pacer
from chalicelib.domain.service import UserService, utc_now

logger = logging.getLogger("users_api.import_rows")

# A batch message stays well under SQS's 256 KiB per message and per SendMessageBatch request.
MAX_MESSAGE_BYTES = 96 * 1024
MESSAGES_PER_SEND = 10
UNAVAILABLE = "AWS kept refusing or throttling this row's requests for over an hour; import the file again to retry it"
CRASHED = "The worker failed on this row's batch repeatedly (see the worker's logs); import the file again to retry it"

Deadline = Callable[[], bool]


def rows_message(job_id: str, rows: list[Row], attempt: int = 0) -> dict[str, Any]:
    return {"kind": "rows", "job": job_id, "attempt": attempt, "rows": [row.to_message() for row in rows]}


def plan_message(job_id: str) -> dict[str, Any]:
    return {"kind": "plan", "job": job_id}


def _size(message: dict[str, Any]) -> int:
    return len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode())


def batches(job_id: str, rows: Iterable[Row]) -> Iterator[tuple[dict[str, Any], Row]]:
    """Messages of up to BATCH_ROWS rows (fewer if the rows are large), each with its last row."""
    batch: list[Row] = []
    size = 0
    for row in rows:
        row_size = _size(row.to_message()) + 1
        if batch and (len(batch) >= BATCH_ROWS or size + row_size > MAX_MESSAGE_BYTES):
            yield rows_message(job_id, batch), batch[-1]
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield rows_message(job_id, batch), batch[-1]


class ImportPlanner:
    def __init__(self, jobs: JobStore, files: Files, queue: Queue, clock: Callable[[], str] = utc_now):
        self._jobs = jobs
        self._files = files
        self._queue = queue
        self._clock = clock

    def plan(self, job_id: str, deadline: Deadline) -> None:
        """Queue the job's rows in batches, from where an earlier planner stopped; hand the rest to
        a new plan message when `deadline()` says this run's time is nearly up."""
        job = self._running(job_id)
        if job is None:
            return
        key = import_key(job.job_id, job.format)
        point = self._jobs.plan_point(job_id)
        if point is None:
            point = self._count(job, key)
            if point is None:
                return
        if point.done:
            return  # a duplicate of the file's event, or of a hand-over, after planning ended
        reader = Reader(job.format, point.header, point.rows_start)
        try:
            rows = reader.rows(self._files.read(key, point.offset), offset=point.offset, first_number=point.row + 1)
            pending: list[tuple[dict[str, Any], Row]] = []
            for message in batches(job_id, rows):
                pending.append(message)
                if len(pending) == MESSAGES_PER_SEND:
                    point = self._send(job_id, point, pending)
                    pending = []
                    if point is None or self._cancelled(job_id):
                        return
                    if deadline():
                        self._queue.send([plan_message(job_id)])
                        return
            if pending and self._send(job_id, point, pending) is None:
                return
        except FileGone:
            done = self._jobs.plan_point(job_id)
            if done is None or not done.done:  # else another planner finished and deleted it meanwhile
                self._fail(job_id, "The import file is gone from the bucket before every row was queued")
            return
        self._jobs.finish_planning(job_id)
        self._delete_file(key)
        self._jobs.finish_if_complete(job_id, self._clock())

    def _running(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None and job.status == QUEUED:
            job = self._jobs.move(job_id, frozenset({QUEUED}), RUNNING, self._clock()) or self._jobs.get(job_id)
        if job is None or job.status != RUNNING:
            return None  # unknown (expired, or taken back), cancelled or finished: nothing to do
        return job

    def _count(self, job: Job, key: str) -> PlanPoint | None:
        """Read the file once: its rows counted and its header checked before any row is queued, so a
        file that is refused creates nobody."""
        try:
            reader, total = count_rows(job.format, self._files.read(key))
        except FileRefused as refused:
            details = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in refused.details)
            self._fail(job.job_id, refused.message + (f" ({details})" if details else ""), key)
            return None
        except FileGone:
            self._fail(job.job_id, "The import file is not in the bucket")
            return None
        start = PlanPoint(offset=reader.rows_start, row=0, header=reader.header, rows_start=reader.rows_start)
        self._jobs.set_total(job.job_id, total, start)
        return self._jobs.plan_point(job.job_id)

    def _send(self, job_id: str, point: PlanPoint, pending: list[tuple[dict[str, Any], Row]]) -> PlanPoint | None:
        self._queue.send([message for message, _ in pending])
        last = pending[-1][1]
        moved = PlanPoint(offset=last.end, row=last.number, header=point.header, rows_start=point.rows_start)
        if not self._jobs.save_plan_point(job_id, point.row, moved):
            return None  # another planner (a duplicate message) is ahead: it goes on
        return moved

    def _cancelled(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        return job is None or job.status != RUNNING

    def _fail(self, job_id: str, error: str, key: str | None = None) -> None:
        self._jobs.move(job_id, frozenset({QUEUED, RUNNING}), FAILED, self._clock(), error)
        if key is not None:
            self._delete_file(key)

    def _delete_file(self, key: str) -> None:
        """The file (personal data) goes once its rows are queued; the bucket's expiry is the backstop."""
        try:
            self._files.delete(key)
        except Exception:
            logger.warning("could not delete an import file; the bucket expires it", exc_info=True)

    def give_up(self, job_id: str) -> None:
        """The planner crashed on this job every time SQS handed it over: the job fails."""
        self._fail(job_id, "The import could not be planned (see the worker's logs)")


class RowImporter:
    def __init__(
        self,
        jobs: JobStore,
        queue: Queue,
        users: UserService,
        owners: EmailOwners,
        pacer: Pacer,
        parse: Callable[[dict[str, Any]], NewUser],
        clock: Callable[[], str] = utc_now,
    ):
        # `parse`: a row's fields read as POST /users reads its body (chalicelib/web/inputs.py's
        # parse_new_user), the same rules and the same messages.
        self._parse = parse
        self._jobs = jobs
        self._queue = queue
        self._users = users
        self._owners = owners
        self._pacer = pacer
        self._clock = clock

    def process(self, job_id: str, rows: list[Row], attempt: int, deadline: Deadline) -> None:
        """Give each row of the batch its outcome, unless it has one. Stops at the first row AWS
        refuses (throttling, an outage): the rest go back to the queue for later."""
        job = self._jobs.get(job_id)
        if job is None or job.status != RUNNING:
            return  # cancelled (between batches: this one never starts), failed or expired
        done = self._jobs.done_rows(job_id, [row.number for row in rows])
        todo = [row for row in rows if row.number not in done]
        for index, row in enumerate(todo):
            if deadline():
                self._queue.send([rows_message(job_id, todo[index:], attempt)])
                break
            self._pacer.take()
            try:
                outcome = self.import_row(job, row)
            except (ServiceUnavailable, ConcurrentModification):
                self._later(job, todo[index:], attempt)
                break
            self._jobs.record(job_id, outcome, job.expires_at)
        self._jobs.finish_if_complete(job_id, self._clock())

    def _later(self, job: Job, rows: list[Row], attempt: int) -> None:
        if attempt + 1 >= MAX_BATCH_ATTEMPTS:
            logger.error("rows failed after %d attempts: AWS kept refusing", MAX_BATCH_ATTEMPTS)
            for row in rows:
                self._jobs.record(job.job_id, failed_row(row.number, UNAVAILABLE), job.expires_at)
            return
        delay = backoff_s(attempt + 1)
        logger.warning("AWS refused a row: %d rows go back to the queue for %d s", len(rows), delay)
        self._queue.send([rows_message(job.job_id, rows, attempt + 1)], delay_s=delay)

    def import_row(self, job: Job, row: Row) -> RowOutcome:
        """One row as `POST /users` would make it: the same checks, the same create. Raises
        ServiceUnavailable or ConcurrentModification when it should be tried again later."""
        if row.problem is not None:
            return failed_row(row.number, f"The row {row.problem}")
        try:
            new = self._parse(row.fields or {})
        except ValidationError as refused:
            return _refused(row.number, refused)
        for _ in range(2):
            try:
                user = self._users.create_user(
                    new, token=row_token(job.job_id, row.number), actor=job.actor, invite=job.invite
                )
                return RowOutcome(row.number, CREATED, user.user_id)
            except EmailAlreadyExists:
                owner = self._owners.owner(new.email)
                if owner is not None:
                    return RowOutcome(row.number, EXISTS, owner)
                # Its holder was deleted in between: the address is free now, so try again.
            except ValidationError as refused:  # Cognito refused the address
                return _refused(row.number, refused)
        raise ConcurrentModification()

    def give_up(self, job_id: str, rows: list[Row]) -> None:
        """This batch crashed the worker every time SQS handed it over: each row without an outcome
        fails, so the job still ends with every row accounted for."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        done = self._jobs.done_rows(job_id, [row.number for row in rows])
        for row in rows:
            if row.number not in done:
                self._jobs.record(job_id, failed_row(row.number, CRASHED), job.expires_at)
        self._jobs.finish_if_complete(job_id, self._clock())


def _refused(number: int, refused: ValidationError) -> RowOutcome:
    problems = tuple(refused.details) or ({"field": None, "message": refused.message},)
    return RowOutcome(number, ROW_FAILED, problems=problems)
