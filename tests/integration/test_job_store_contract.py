"""One contract for the job store: the in-memory fake the unit tests use and the DynamoDB adapter
(on moto) behave the same, so what the unit tests prove of the worker holds on DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters.job_store import DynamoJobStore, create_jobs_table_kwargs
from chalicelib.domain.jobs import (
    CANCELLED,
    CREATED,
    DONE,
    EXISTS,
    EXPORT,
    IMPORT,
    QUEUED,
    RUNNING,
    ExportPoint,
    Job,
    JobStore,
    Part,
    PlanPoint,
    RowOutcome,
    failed_row,
    new_job_id,
)
from tests.unit.fake_jobs import FakeJobStore

JOBS = "users-jobs-it"


@pytest.fixture(params=["fake", "dynamodb"])
def store(request: pytest.FixtureRequest, ddb: Any) -> Iterator[JobStore]:
    if request.param == "fake":
        yield FakeJobStore()
        return
    ddb.create_table(**create_jobs_table_kwargs(JOBS))
    yield DynamoJobStore(JOBS, client=ddb)


def new_job(kind: str = IMPORT, token: str = "t1") -> Job:
    return Job(new_job_id(token), kind, QUEUED, "admin", "csv", "2026-01-01T00:00:00.000Z", 1_900_000_000)


def running(store: JobStore, kind: str = IMPORT, token: str = "t1") -> Job:
    job = store.create(new_job(kind, token))
    moved = store.move(job.job_id, frozenset({QUEUED}), RUNNING, "2026-01-01T00:00:01.000Z")
    assert moved is not None and moved.status == RUNNING and moved.started_at == "2026-01-01T00:00:01.000Z"
    return moved


def test_create_is_idempotent_and_get_reads_what_was_stored(store: JobStore) -> None:
    job = new_job()
    assert store.create(job) == job
    assert store.create(job) == job  # a retry
    assert store.get(job.job_id) == job
    assert store.get(new_job_id("other")) is None


def test_moves_happen_only_from_the_named_statuses(store: JobStore) -> None:
    job = running(store)
    assert store.move(job.job_id, frozenset({QUEUED}), RUNNING, "x") is None
    cancelled = store.move(job.job_id, frozenset({QUEUED, RUNNING}), CANCELLED, "2026-01-01T00:00:02.000Z", "why")
    assert cancelled is not None and (cancelled.status, cancelled.error) == (CANCELLED, "why")
    assert store.move(job.job_id, frozenset({QUEUED, RUNNING}), DONE, "x") is None
    store.forget(job.job_id)  # only a queued job is taken back
    assert store.get(job.job_id) is not None


def test_a_row_is_counted_once_and_the_job_is_done_when_planned_and_nothing_is_pending(store: JobStore) -> None:
    job = running(store)
    assert store.set_total(job.job_id, 3, PlanPoint(11, 0, ("name", "email"), 11))
    assert not store.set_total(job.job_id, 3, PlanPoint(11, 0, ("name", "email"), 11))
    assert store.plan_point(job.job_id) == PlanPoint(11, 0, ("name", "email"), 11)
    assert store.save_plan_point(job.job_id, 0, PlanPoint(40, 3, ("name", "email"), 11))
    assert not store.save_plan_point(job.job_id, 0, PlanPoint(99, 9, ("name", "email"), 11))
    outcomes = [RowOutcome(1, CREATED, "u-1"), RowOutcome(2, EXISTS, "u-0"), failed_row(3, "bad", "email")]
    for outcome in outcomes:
        assert store.record(job.job_id, outcome, job.expires_at)
        assert not store.record(job.job_id, outcome, job.expires_at)  # a redelivery
    assert not store.record(job.job_id, RowOutcome(1, EXISTS, "u-9"), job.expires_at)  # another outcome, too
    assert store.done_rows(job.job_id, [1, 2, 3, 4]) == {1, 2, 3}
    assert store.finish_if_complete(job.job_id, "x") is None  # not planned yet
    store.finish_planning(job.job_id)
    point = store.plan_point(job.job_id)
    assert point is not None and point.done
    done = store.finish_if_complete(job.job_id, "2026-01-01T00:00:09.000Z")
    assert done is not None and done.status == DONE
    assert done.counts.public() == {"total": 3, "processed": 3, "created": 1, "exists": 1, "failed": 1}
    assert store.finish_if_complete(job.job_id, "x") is None


def test_outcomes_page_in_row_order_and_errors_only_when_asked(store: JobStore) -> None:
    job = running(store)
    for row in range(1, 8):
        outcome = failed_row(row, f"bad {row}") if row % 2 else RowOutcome(row, CREATED, f"u-{row}")
        store.record(job.job_id, outcome, job.expires_at)
    page, after = store.outcomes(job.job_id, 3, None, failed_only=False)
    assert [o.row for o in page] == [1, 2, 3] and after == 3
    page, after = store.outcomes(job.job_id, 3, 6, failed_only=False)
    assert [o.row for o in page] == [7] and after is None
    errors, after = store.outcomes(job.job_id, 2, None, failed_only=True)
    assert [(o.row, o.problems[0]["message"]) for o in errors] == [(1, "bad 1"), (3, "bad 3")] and after == 3
    errors, after = store.outcomes(job.job_id, 2, 3, failed_only=True)
    assert [o.row for o in errors] == [5, 7] and after is None
    assert page[0] == failed_row(7, "bad 7")


def test_an_export_step_is_claimed_once_and_only_its_runner_writes(store: JobStore) -> None:
    job = store.create(new_job(EXPORT))
    point = store.claim_step(job.job_id, 0, "m1", "2026-01-01T00:00:01.000Z")
    assert point == ExportPoint(step=1)
    assert store.get(job.job_id).status == RUNNING  # type: ignore[union-attr]
    assert store.claim_step(job.job_id, 0, "m2", "x") is None  # a duplicate message
    assert store.claim_step(job.job_id, 0, "m1", "x") == ExportPoint(step=1)  # m1 handed over again
    saved = ExportPoint(1, "up-1", (Part(1, '"e1"'),), "u-10", 10, 1000)
    assert store.save_export_point(job.job_id, saved, "m1")
    assert not store.save_export_point(job.job_id, saved, "m2")
    assert store.export_point(job.job_id) == saved
    next_run = store.claim_step(job.job_id, 1, "m3", "x")
    assert next_run == ExportPoint(2, "up-1", (Part(1, '"e1"'),), "u-10", 10, 1000)
    assert not store.save_export_point(job.job_id, saved, "m1")  # m1's step is over
    final = ExportPoint(2, "up-1", (Part(1, '"e1"'), Part(2, '"e2"')), None, 15, 1500)
    assert store.save_export_point(job.job_id, final, "m3")
    assert store.export_point(job.job_id) == final
    assert store.finish_export(job.job_id, final, "m1", "exports/x.csv", "y") is None
    done = store.finish_export(job.job_id, final, "m3", "exports/x.csv", "2026-01-01T00:00:05.000Z")
    assert done is not None and (done.status, done.users, done.bytes, done.object_key) == (
        DONE,
        15,
        1500,
        "exports/x.csv",
    )
