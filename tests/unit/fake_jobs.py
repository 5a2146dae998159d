"""In-memory stand-ins for the bulk jobs' collaborators: the job store (the semantics of
chalicelib/adapters/job_store.py, held to them by tests/integration/test_job_store_contract.py), the
bucket and the queue. Each can be told to fail its next calls of a method (`fail_next`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.domain.jobs import (
    DONE,
    EXPORT,
    QUEUED,
    ROW_FAILED,
    RUNNING,
    ExportPoint,
    FileGone,
    Job,
    Part,
    PlanPoint,
    RowOutcome,
    UploadForm,
)


class Failing:
    """`fail_next[method] = n`: the next n calls of `method` raise ServiceUnavailable first."""

    def __init__(self) -> None:
        self.fail_next: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def _enter(self, method: str) -> None:
        self.calls[method] += 1
        if self.fail_next[method] > 0:
            self.fail_next[method] -= 1
            raise ServiceUnavailable()


@dataclass
class _Stored:
    job: Job
    pending: int = 0
    planned: bool = False
    plan: PlanPoint | None = None
    export: ExportPoint = field(default_factory=ExportPoint)
    runner: str = ""


class FakeJobStore(Failing):
    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[str, _Stored] = {}
        self.results: dict[tuple[str, int], RowOutcome] = {}

    def create(self, job: Job) -> Job:
        self._enter("create")
        if job.job_id in self.jobs:
            return self.jobs[job.job_id].job
        self.jobs[job.job_id] = _Stored(job)
        return job

    def get(self, job_id: str) -> Job | None:
        self._enter("get")
        stored = self.jobs.get(job_id)
        return stored.job if stored else None

    def forget(self, job_id: str) -> None:
        self._enter("forget")
        if job_id in self.jobs and self.jobs[job_id].job.status == QUEUED:
            del self.jobs[job_id]

    def move(self, job_id: str, old: frozenset[str], new: str, at: str, error: str | None = None) -> Job | None:
        self._enter("move")
        stored = self.jobs.get(job_id)
        if stored is None or stored.job.status not in old:
            return None
        job = replace(stored.job, status=new, error=error if error is not None else stored.job.error)
        stored.job = replace(job, started_at=at) if new == RUNNING else replace(job, finished_at=at)
        return stored.job

    def set_total(self, job_id: str, total: int, point: PlanPoint) -> bool:
        self._enter("set_total")
        stored = self.jobs.get(job_id)
        if stored is None or stored.job.counts.total is not None or stored.job.status != RUNNING:
            return False
        stored.job = replace(stored.job, counts=replace(stored.job.counts, total=total))
        stored.pending += total
        stored.plan = point
        return True

    def plan_point(self, job_id: str) -> PlanPoint | None:
        self._enter("plan_point")
        stored = self.jobs.get(job_id)
        return replace(stored.plan, done=stored.planned) if stored and stored.plan else None

    def save_plan_point(self, job_id: str, old_row: int, point: PlanPoint) -> bool:
        self._enter("save_plan_point")
        stored = self.jobs.get(job_id)
        if stored is None or stored.plan is None or stored.plan.row != old_row:
            return False
        stored.plan = point
        return True

    def finish_planning(self, job_id: str) -> None:
        self._enter("finish_planning")
        if job_id in self.jobs:
            self.jobs[job_id].planned = True

    def done_rows(self, job_id: str, rows: list[int]) -> set[int]:
        self._enter("done_rows")
        return {row for row in rows if (job_id, row) in self.results}

    def record(self, job_id: str, outcome: RowOutcome, expires_at: int) -> bool:
        self._enter("record")
        stored = self.jobs.get(job_id)
        if (job_id, outcome.row) in self.results or stored is None:
            return False
        self.results[(job_id, outcome.row)] = outcome
        counts = stored.job.counts
        field_name = {"created": "created", "exists": "exists", "failed": "failed"}[outcome.outcome]
        stored.job = replace(stored.job, counts=replace(counts, **{field_name: getattr(counts, field_name) + 1}))
        stored.pending -= 1
        return True

    def finish_if_complete(self, job_id: str, at: str) -> Job | None:
        self._enter("finish_if_complete")
        stored = self.jobs.get(job_id)
        if stored is None or stored.job.status != RUNNING or not stored.planned or stored.pending != 0:
            return None
        stored.job = replace(stored.job, status=DONE, finished_at=at)
        return stored.job

    def outcomes_of(self, job_id: str) -> list[RowOutcome]:
        return [outcome for (job, _), outcome in sorted(self.results.items()) if job == job_id]

    def outcomes(
        self, job_id: str, limit: int, after: int | None, failed_only: bool
    ) -> tuple[list[RowOutcome], int | None]:
        self._enter("outcomes")
        found = [
            outcome
            for outcome in self.outcomes_of(job_id)
            if (after is None or outcome.row > after) and (not failed_only or outcome.outcome == ROW_FAILED)
        ]
        page = found[:limit]
        return page, (page[-1].row if len(found) > limit else None)

    def claim_step(self, job_id: str, step: int, runner: str, at: str) -> ExportPoint | None:
        self._enter("claim_step")
        stored = self.jobs.get(job_id)
        if stored is None or stored.job.kind != EXPORT or stored.job.status not in (QUEUED, RUNNING):
            return None
        current = stored.export.step
        if not (current == step or (current == step + 1 and stored.runner == runner)):
            return None
        stored.export = replace(stored.export, step=step + 1)
        stored.runner = runner
        if stored.job.status == QUEUED:
            stored.job = replace(stored.job, status=RUNNING, started_at=at)
        return stored.export

    def export_point(self, job_id: str) -> ExportPoint | None:
        self._enter("export_point")
        stored = self.jobs.get(job_id)
        return stored.export if stored else None

    def save_export_point(self, job_id: str, point: ExportPoint, runner: str) -> bool:
        self._enter("save_export_point")
        stored = self.jobs.get(job_id)
        if stored is None or stored.export.step != point.step or stored.runner != runner:
            return False
        stored.export = point
        return True

    def finish_export(self, job_id: str, point: ExportPoint, runner: str, key: str, at: str) -> Job | None:
        self._enter("finish_export")
        stored = self.jobs.get(job_id)
        if (
            stored is None
            or stored.job.status != RUNNING
            or stored.export.step != point.step
            or stored.runner != runner
        ):
            return None
        stored.job = replace(
            stored.job, status=DONE, finished_at=at, object_key=key, users=point.users, bytes=point.bytes
        )
        return stored.job


class FakeFiles(Failing):
    """The bucket: objects by key, multipart uploads by id (their parts by number)."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.aborted: set[str] = set()
        self.chunk = 7  # tiny chunks: every line split across reads

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._enter("put")
        self.objects[key] = body

    def import_form(self, key: str, content_type: str, expires_in: int) -> UploadForm:
        return UploadForm("https://bucket.example", {"key": key}, key, expires_in, 1, content_type)

    def read(self, key: str, offset: int = 0) -> Iterator[bytes]:
        self._enter("read")
        if key not in self.objects:
            raise FileGone()
        data = self.objects[key][offset:]
        return iter([data[i : i + self.chunk] for i in range(0, len(data), self.chunk)])

    def delete(self, key: str) -> None:
        self._enter("delete")
        self.objects.pop(key, None)

    def start_upload(self, key: str, content_type: str) -> str:
        self._enter("start_upload")
        upload_id = f"upload-{len(self.uploads) + 1}"
        self.uploads[upload_id] = {}
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        self._enter("upload_part")
        self.uploads[upload_id][number] = data
        return f"etag-{number}-{len(data)}"

    def complete_upload(self, key: str, upload_id: str, parts: tuple[Part, ...]) -> None:
        self._enter("complete_upload")
        stored = self.uploads[upload_id]
        assert [p.etag for p in parts] == [f"etag-{n}-{len(stored[n])}" for n in sorted(stored)], "parts differ"
        self.objects[key] = b"".join(stored[n] for n in sorted(stored))

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._enter("abort_upload")
        self.aborted.add(upload_id)

    def download_url(self, key: str, filename: str, expires_in: int) -> str:
        return f"https://bucket.example/{key}?expires={expires_in}"


class FakeQueue(Failing):
    """Messages in order, with the delay each was sent with; `take()` hands the oldest over."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[dict[str, Any], int]] = []
        self.sent = 0

    def send(self, messages: list[dict[str, Any]], delay_s: int = 0) -> None:
        self._enter("send")
        self.messages += [(message, delay_s) for message in messages]
        self.sent += len(messages)

    def take(self) -> dict[str, Any] | None:
        return self.messages.pop(0)[0] if self.messages else None


class FakeOwners:
    """Who holds an email, as the reservation says (tests/unit/fakes.py's repository)."""

    def __init__(self, reservations: dict[str, str]) -> None:
        self._reservations = reservations

    def owner(self, email: str) -> str | None:
        return self._reservations.get(email.strip().lower())
