"""The export writer against in-memory collaborators: a file of every user, written a part at a
time, resumed after a stop without a user twice or missing, and a duplicate message ignored."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.bulk_files import CSV, JSONL
from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.domain.exports import CSV_COLUMNS, Exports, ExportWriter, export_line
from chalicelib.domain.jobs import DONE, FAILED, MAX_BATCH_ATTEMPTS, QUEUED, backoff_s, export_key
from chalicelib.domain.models import User
from chalicelib.domain.pacing import Pacer
from tests.unit.fake_jobs import FakeFiles, FakeJobStore, FakeQueue
from tests.unit.fakes import make_user


class Pages:
    """The listing index: users in a fixed order, `limit` a page, the key after each page."""

    def __init__(self, users: list[User]) -> None:
        self.users = users
        self.reads = 0

    def pages(self, after: str | None, limit: int) -> Iterator[tuple[list[User], str | None, float]]:
        ids = [u.user_id for u in self.users]
        start = ids.index(after) + 1 if after is not None else 0
        while True:
            page = self.users[start : start + limit]
            start += limit
            self.reads += 1
            last = page[-1].user_id if page and start < len(self.users) else None
            yield page, last, 0.5 * len(page)
            if last is None:
                return


def users(count: int) -> list[User]:
    return [make_user(f"u-{n:05d}", name=f"User {n}", email=f"u{n}@example.com") for n in range(count)]


def setup(count: int, fmt: str = JSONL, part_bytes: int = 1000) -> tuple[Any, ...]:
    jobs, files, queue = FakeJobStore(), FakeFiles(), FakeQueue()
    pages = Pages(users(count))
    writer = ExportWriter(jobs, files, queue, pages, Pacer(0), part_bytes=part_bytes, page_users=7)
    job = Exports(jobs, files, queue).start("admin", fmt, "token-1")
    return jobs, files, queue, pages, writer, job


def run_queue(queue: FakeQueue, writer: ExportWriter, short: bool = False, runner: str = "m") -> int:
    runs = 0
    while (message := queue.take()) is not None:
        times = iter([False, True] * 1000) if short else iter([False] * 100000)
        writer.run(message["job"], message["step"], f"{runner}-{runs}", lambda times=times: next(times))  # type: ignore[misc]
        runs += 1
    return runs


def lines_of(files: FakeFiles, job_id: str, fmt: str) -> list[str]:
    return files.objects[export_key(job_id, fmt)].decode().splitlines()


def test_every_user_once_in_parts_with_the_csv_header_once() -> None:
    jobs, files, queue, _, writer, job = setup(123, CSV, part_bytes=2000)
    assert run_queue(queue, writer) == 1
    rows = list(csv.reader(io.StringIO(files.objects[export_key(job.job_id, CSV)].decode())))
    assert rows[0] == list(CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == [f"u-{n:05d}" for n in range(123)]
    stored = jobs.get(job.job_id)
    assert stored is not None and (stored.status, stored.users) == (DONE, 123)
    assert stored.bytes == len(files.objects[export_key(job.job_id, CSV)])
    assert len(next(iter(files.uploads.values()))) > 5  # many parts


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=700),
    part_bytes=st.integers(min_value=200, max_value=5000),
    crash_at=st.one_of(st.none(), st.integers(min_value=1, max_value=12)),
)
def test_stopped_and_crashed_runs_resume_without_a_user_twice_or_missing(
    count: int, part_bytes: int, crash_at: int | None
) -> None:
    jobs, files, queue, _, writer, job = setup(count, JSONL, part_bytes)
    if crash_at is not None:
        files.fail_next["upload_part"] = 0
        calls = {"n": 0}
        real = files.upload_part

        def flaky(*args: Any) -> str:
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise ServiceUnavailable()
            return str(real(*args))

        files.upload_part = flaky  # type: ignore[method-assign]
    runs = 0
    while (message := queue.take()) is not None:
        times = iter([False, True] * 1000)  # each run stops after its first part
        try:
            writer.run(message["job"], message["step"], f"m-{runs}", lambda times=times: next(times))  # type: ignore[misc]
        except ServiceUnavailable:
            writer.run(message["job"], message["step"], f"m-{runs}", lambda times=times: next(times))  # type: ignore[misc]  # SQS hands it over again
        runs += 1
    exported = [json.loads(line) for line in lines_of(files, job.job_id, JSONL)]
    assert [u["userId"] for u in exported] == [f"u-{n:05d}" for n in range(count)]
    stored = jobs.get(job.job_id)
    assert stored is not None and stored.status == DONE and stored.users == count


def test_a_duplicate_message_finds_its_step_taken_and_writes_nothing() -> None:
    _, files, queue, pages, writer, job = setup(30)
    message = queue.take()
    assert message is not None
    writer.run(job.job_id, message["step"], "first", lambda: False)
    before = dict(files.objects), pages.reads
    writer.run(job.job_id, message["step"], "duplicate", lambda: False)
    assert (dict(files.objects), pages.reads) == before


def test_a_run_whose_upload_aws_refused_to_complete_goes_on_later_and_completes_it() -> None:
    jobs, files, queue, _, writer, job = setup(10)
    message = queue.take()
    files.fail_next["complete_upload"] = 1
    writer.run(job.job_id, message["step"], "m", lambda: False)  # refused: queued again, later
    assert [delay for _, delay in queue.messages] == [2]
    run_queue(queue, writer)
    assert len(lines_of(files, job.job_id, JSONL)) == 10
    assert jobs.get(job.job_id).status == DONE  # type: ignore[union-attr]


class RefusedReads(Pages):
    """The table refuses the next `refusals` reads (throttling, an outage, an emulator too slow)."""

    def __init__(self, users: list[User], refusals: int) -> None:
        super().__init__(users)
        self.refusals = refusals

    def pages(self, after: str | None, limit: int) -> Iterator[tuple[list[User], str | None, float]]:
        for page in super().pages(after, limit):
            if self.refusals > 0:
                self.refusals -= 1
                raise ServiceUnavailable()
            yield page


@pytest.mark.parametrize("refusals", [1, 3, MAX_BATCH_ATTEMPTS - 1])
def test_reads_refused_run_after_run_back_off_and_every_user_is_written_once(refusals: int) -> None:
    jobs, files, queue = FakeJobStore(), FakeFiles(), FakeQueue()
    pages = RefusedReads(users(40), refusals)
    writer = ExportWriter(jobs, files, queue, pages, Pacer(0), part_bytes=1000, page_users=7)
    job = Exports(jobs, files, queue).start("admin", JSONL, "t")
    delays: list[int] = []
    while (message := queue.take()) is not None:
        writer.run(message["job"], message["step"], "m", lambda: False, message.get("attempt", 0))
        delays += [delay for _, delay in queue.messages]
    assert delays == [backoff_s(n) for n in range(1, refusals + 1)]  # 2, 4, 8, ... s
    assert [json.loads(line)["userId"] for line in lines_of(files, job.job_id, JSONL)] == [
        f"u-{n:05d}" for n in range(40)
    ]
    assert jobs.get(job.job_id).status == DONE  # type: ignore[union-attr]


def test_reads_refused_every_run_fail_the_export_after_the_last_attempt() -> None:
    jobs, files, queue = FakeJobStore(), FakeFiles(), FakeQueue()
    writer = ExportWriter(jobs, files, queue, RefusedReads(users(40), 10**6), Pacer(0), part_bytes=1000, page_users=7)
    job = Exports(jobs, files, queue).start("admin", JSONL, "t")
    runs = 0
    while (message := queue.take()) is not None:
        writer.run(message["job"], message["step"], "m", lambda: False, message.get("attempt", 0))
        runs += 1
    assert runs == MAX_BATCH_ATTEMPTS
    assert jobs.get(job.job_id).status == FAILED  # type: ignore[union-attr]
    assert files.aborted == set(files.uploads)


def test_no_user_at_all_is_an_empty_file_and_a_gave_up_export_fails_and_aborts() -> None:
    jobs, files, queue, _, writer, job = setup(0)
    run_queue(queue, writer)
    assert files.objects[export_key(job.job_id, JSONL)] == b""
    jobs, files, queue, _, writer, job = setup(50, part_bytes=200)
    message = queue.take()
    times = iter([False, True])
    writer.run(job.job_id, message["step"], "m", lambda times=times: next(times))  # type: ignore[misc]
    writer.give_up(job.job_id)
    assert jobs.get(job.job_id).status == FAILED  # type: ignore[union-attr]
    assert files.aborted == set(files.uploads)


def test_memory_holds_a_part_and_a_page_whatever_the_number_of_users() -> None:
    peaks = []
    for count in (2_000, 8_000):
        _, _, queue, _, writer, _ = setup(count, part_bytes=10_000)
        run_queue(queue, writer)
        peaks.append(writer.peak_buffer)
    assert peaks[1] <= peaks[0] * 1.1
    assert peaks[0] < 10_000 + 500 * len(export_line(users(1)[0], JSONL)) * 2


def test_start_takes_back_a_job_whose_message_could_not_be_sent() -> None:
    jobs, files, queue = FakeJobStore(), FakeFiles(), FakeQueue()
    queue.fail_next["send"] = 1
    with pytest.raises(ServiceUnavailable):
        Exports(jobs, files, queue).start("admin", JSONL, "t")
    assert jobs.jobs == {}
    job = Exports(jobs, files, queue).start("admin", JSONL, "t")  # the retry with the same key
    assert job.status == QUEUED and len(queue.messages) == 1


def test_reads_are_paced_by_the_read_units_each_page_consumed() -> None:
    taken: list[float] = []

    class Counting(Pacer):
        def take(self, units: float = 1.0) -> float:
            taken.append(units)
            return 0.0

    jobs, files, queue = FakeJobStore(), FakeFiles(), FakeQueue()
    writer = ExportWriter(jobs, files, queue, Pages(users(1200)), Counting(100.0), part_bytes=10**9, page_users=500)
    job = Exports(jobs, files, queue).start("admin", JSONL, "t")
    run_queue(queue, writer)
    assert taken == [250.0, 250.0, 100.0]  # pages of 500 users, half a unit each
    assert jobs.get(job.job_id).status == DONE  # type: ignore[union-attr]
