"""The import worker against in-memory collaborators: every row ends with exactly one outcome and
nobody is created twice, whatever the queue and AWS do (redelivered and duplicated messages, a
worker stopped anywhere, slow successes, throttling), as a property over random files and faults."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain.bulk_files import CSV, JSONL
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.domain.exports import ExportWriter
from chalicelib.domain.import_rows import CRASHED, UNAVAILABLE, ImportPlanner, RowImporter
from chalicelib.domain.imports import ImportRequest, Imports
from chalicelib.domain.job_worker import JobWorker
from chalicelib.domain.jobs import (
    CANCELLED,
    CREATED,
    DONE,
    EXISTS,
    FAILED,
    MAX_BATCH_ATTEMPTS,
    MAX_RECEIVES,
    ROW_FAILED,
    Job,
    import_key,
)
from chalicelib.domain.models import NewUser, email_key
from chalicelib.domain.pacing import Pacer
from chalicelib.domain.service import UserService
from chalicelib.web.inputs import parse_new_user
from tests.unit.fake_jobs import FakeFiles, FakeJobStore, FakeOwners, FakeQueue
from tests.unit.fakes import FakeIdentityProvider, FakeUserRepository

ACTOR = "admin-sub"


class _NoUsers:
    def pages(self, after: str | None, limit: int) -> Iterator[tuple[list[Any], str | None, float]]:
        yield [], None, 0.0


@dataclass
class World:
    repo: FakeUserRepository = field(default_factory=FakeUserRepository)
    identities: FakeIdentityProvider = field(default_factory=FakeIdentityProvider)
    jobs: FakeJobStore = field(default_factory=FakeJobStore)
    files: FakeFiles = field(default_factory=FakeFiles)
    queue: FakeQueue = field(default_factory=FakeQueue)
    deliveries: int = 0
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.service = UserService(self.repo, CursorCodec(b"k" * 32), self.identities)
        self.rows = RowImporter(
            self.jobs, self.queue, self.service, FakeOwners(self.repo.reservations), Pacer(0), parse_new_user
        )
        self.worker = JobWorker(
            ImportPlanner(self.jobs, self.files, self.queue),
            self.rows,
            ExportWriter(self.jobs, self.files, self.queue, _NoUsers(), Pacer(0)),
        )
        self.imports = Imports(self.jobs, self.files, CursorCodec(b"k" * 32))

    def start(self, fmt: str, body: str, invite: bool = True) -> Job:
        job, _ = self.imports.start(ACTOR, ImportRequest(fmt, invite, body.encode()), f"token-{next(self._ids)}")
        # The bucket's notification of the new file, as S3 sends it to the queue.
        key = import_key(job.job_id, fmt)
        self.queue.send([{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": key}}}]}])
        return job

    def deliver(
        self,
        before: Callable[[int], None] = lambda n: None,
        duplicate: Callable[[int], bool] = lambda n: False,
        short: Callable[[int], bool] = lambda n: False,
    ) -> None:
        """Hand every message to the worker as SQS and Lambda would: a message that raised comes
        back (at the end of the queue) with its receive count up, and goes to the dead letters after
        MAX_RECEIVES; `duplicate(n)` delivers the n-th delivery's message again (at least once);
        `short(n)` gives the n-th delivery almost no time left."""
        pending: list[tuple[dict[str, Any], str, int]] = []
        for _ in range(5000):
            if not pending:
                message = self.queue.take()
                if message is None:
                    return
                pending.append((message, f"m-{next(self._ids)}", 1))
            message, message_id, receives = pending.pop(0)
            number = self.deliveries
            self.deliveries += 1
            before(number)
            times: Iterator[int] = iter([120_000] + [10_000] * 10_000) if short(number) else itertools.repeat(120_000)
            record = {
                "messageId": message_id,
                "body": json.dumps(message),
                "attributes": {"ApproximateReceiveCount": str(receives)},
            }
            try:
                self.worker.handle([record], lambda times=times: next(times))  # type: ignore[misc]
            except Exception:
                if receives >= MAX_RECEIVES:
                    self.dead_letters.append(message)
                else:
                    pending.append((message, message_id, receives + 1))
                continue
            if duplicate(number):
                pending.append((message, f"m-{next(self._ids)}", 1))
            if not pending:
                next_message = self.queue.take()
                if next_message is not None:
                    pending.append((next_message, f"m-{next(self._ids)}", 1))
        raise AssertionError("the queue never drained")

    def outcomes(self, job: Job) -> list[Any]:
        return self.jobs.outcomes_of(job.job_id)


def csv_file(rows: list[tuple[str, str]]) -> str:
    return "name,email\n" + "".join(f"{name},{email}\n" for name, email in rows)


# --- The property: every row accounted for once, nobody twice -----------------------------------

KINDS = st.sampled_from(["new", "new", "new", "dup", "existing", "bad-email", "bad-row"])
FAULTS = st.sampled_from(
    [
        "slow record write",  # the user's record is written, its answer lost (botocore resends)
        "cognito create throttled",
        "cognito invite throttled",
        "outcome write fails",
        "done rows read fails",
        "queue send fails",
        "file read fails",
        "plan point save fails",
    ]
)


def arm(world: World, fault: str) -> None:
    if fault == "slow record write":
        world.repo.lose_answer_next["create"] += 1
    elif fault == "cognito create throttled":
        world.identities.fail_next["create"] = ServiceUnavailable()
    elif fault == "cognito invite throttled":
        world.identities.fail_next["invite"] = ServiceUnavailable()
    elif fault == "outcome write fails":
        world.jobs.fail_next["record"] += 1
    elif fault == "done rows read fails":
        world.jobs.fail_next["done_rows"] += 1
    elif fault == "queue send fails":
        world.queue.fail_next["send"] += 1
    elif fault == "file read fails":
        world.files.fail_next["read"] += 1
    else:
        world.jobs.fail_next["save_plan_point"] += 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(KINDS, min_size=1, max_size=130),
    existing=st.integers(min_value=1, max_value=3),
    faults=st.lists(st.tuples(st.integers(min_value=0, max_value=40), FAULTS), max_size=3),
    duplicated=st.sets(st.integers(min_value=0, max_value=40), max_size=4),
    shortened=st.sets(st.integers(min_value=0, max_value=40), max_size=3),
    fmt=st.sampled_from([CSV, JSONL]),
    invite=st.booleans(),
)
def test_every_row_ends_with_one_outcome_and_nobody_is_created_twice(
    kinds: list[str],
    existing: int,
    faults: list[tuple[int, str]],
    duplicated: set[int],
    shortened: set[int],
    fmt: str,
    invite: bool,
) -> None:
    world = World()
    held = {}
    for n in range(existing):
        user = world.service.create_user(NewUser(f"Old {n}", f"old{n}@example.com"))
        held[email_key(user.email)] = user.user_id
    world.identities.invited.clear()
    rows: list[tuple[str, str]] = []
    for index, kind in enumerate(kinds):
        fresh = [email for name, email in rows if email.startswith("new")]
        if kind == "dup" and fresh:
            rows.append((f"Dup {index}", fresh[index % len(fresh)].upper()))
        elif kind == "existing":
            rows.append((f"Again {index}", f"old{index % existing}@example.com"))
        elif kind == "bad-email":
            rows.append((f"Bad {index}", "not-an-email"))
        elif kind == "bad-row":
            rows.append(("", ""))  # CSV: empty fields (400-worthy); JSON Lines: the line below is garbage
        else:
            rows.append((f"New {index}", f"new{index}@example.com"))
    if fmt == CSV:
        body = csv_file(rows)
    else:
        lines = [json.dumps({"name": n, "email": e}) if n else "{not json" for n, e in rows]
        body = "\n".join(lines) + "\n"
    plan = dict(faults)
    job = world.start(fmt, body, invite)
    world.deliver(
        before=lambda n: arm(world, plan[n]) if n in plan else None,
        duplicate=lambda n: n in duplicated,
        short=lambda n: n in shortened,
    )

    assert world.dead_letters == []
    stored = world.jobs.get(job.job_id)
    assert stored is not None and stored.status == DONE
    outcomes = world.outcomes(job)
    assert [o.row for o in outcomes] == list(range(1, len(rows) + 1))  # each row once
    tally = Counter(o.outcome for o in outcomes)
    assert stored.counts.public() == {
        "total": len(rows),
        "processed": len(rows),
        "created": tally[CREATED],
        "exists": tally[EXISTS],
        "failed": tally[ROW_FAILED],
    }
    created_by_email: dict[str, str] = {}
    for outcome, (name, email) in zip(outcomes, rows, strict=True):
        if not name or email == "not-an-email":
            assert outcome.outcome == ROW_FAILED and outcome.problems
            continue
        assert outcome.outcome in (CREATED, EXISTS), outcome
        key = email_key(email)
        record = world.repo.users[outcome.user_id or ""]
        assert email_key(record.email) == key  # the user reported holds the row's email
        if key in held:
            assert (outcome.outcome, outcome.user_id) == (EXISTS, held[key])
        if outcome.outcome == CREATED:
            assert key not in created_by_email, "two rows created a user for one email"
            created_by_email[key] = outcome.user_id or ""
    new_emails = {email_key(e) for n, e in rows if n and e != "not-an-email"} - set(held)
    assert set(created_by_email) == new_emails
    # Exactly the users there were and those the rows created; every record with its sign-in.
    assert set(world.repo.users) == set(held.values()) | set(created_by_email.values())
    assert set(world.identities.accounts) == set(world.repo.users)
    invited = {sub for sub, _ in world.identities.invited}
    assert invited == (set(created_by_email.values()) if invite else set())
    assert import_key(job.job_id, fmt) not in world.files.objects  # the file goes once planned


# --- Examples ----------------------------------------------------------------------------------


def test_batches_are_planned_in_order_and_a_planner_out_of_time_hands_over_where_it_stopped() -> None:
    world = World()
    rows = [(f"N{i}", f"n{i}@example.com") for i in range(1234)]
    job = world.start(CSV, csv_file(rows))
    world.deliver(short=lambda n: n == 0)
    outcomes = world.outcomes(job)
    assert [o.outcome for o in outcomes] == [CREATED] * 1234
    assert world.jobs.jobs[job.job_id].plan is not None
    # 1234 rows in batches of 50: 25 batch messages, sent once each, and two plan messages.
    assert world.queue.sent == 25 + 1 + 1


def test_a_bad_header_fails_the_job_creates_nobody_and_deletes_the_file() -> None:
    world = World()
    job, _ = world.imports.start(ACTOR, ImportRequest(CSV, True, b"name,email\nA,a@example.com\n"), "t")
    world.files.objects[import_key(job.job_id, CSV)] = b"name,mail\nA,a@example.com\n"  # replaced behind our back
    world.queue.send([{"kind": "plan", "job": job.job_id}])
    world.deliver()
    stored = world.jobs.get(job.job_id)
    assert stored is not None and stored.status == FAILED and "header" in (stored.error or "")
    assert world.repo.users == {} and world.files.objects == {}


def test_a_cancelled_job_queues_no_more_and_creates_no_more_users() -> None:
    world = World()
    rows = [(f"N{i}", f"n{i}@example.com") for i in range(120)]
    job = world.start(CSV, csv_file(rows))

    def cancel_after_first_batch(n: int) -> None:
        if n == 2:
            world.imports.cancel(job.job_id)

    world.deliver(before=cancel_after_first_batch)
    stored = world.jobs.get(job.job_id)
    assert stored is not None and stored.status == CANCELLED
    assert stored.counts.created == 50 == len(world.repo.users)  # the first batch only


def test_aws_refusing_for_over_an_hour_fails_the_rows_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    job = world.start(CSV, csv_file([("A", "a@example.com"), ("B", "b@example.com")]))
    world.identities.fail_next = _Always(ServiceUnavailable())  # type: ignore[assignment]
    world.deliver()
    outcomes = world.outcomes(job)
    assert [(o.outcome, o.problems[0]["message"]) for o in outcomes] == [(ROW_FAILED, UNAVAILABLE)] * 2
    assert [delay for _, delay in world.queue.messages] == []
    assert world.identities.calls.count(("create", "a@example.com")) == MAX_BATCH_ATTEMPTS
    assert world.jobs.get(job.job_id).status == DONE  # type: ignore[union-attr]


class _Always(dict):  # type: ignore[type-arg]
    """fail_next that never runs out."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self._error = error

    def pop(self, key: Any, default: Any = None) -> Any:
        return self._error if key == "create" else default


def test_a_batch_that_crashes_the_worker_every_time_ends_its_rows_failed_not_lost() -> None:
    world = World()
    job = world.start(CSV, csv_file([("A", "a@example.com"), ("B", "b@example.com")]))

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    world.service.create_user = crash  # type: ignore[method-assign]
    world.deliver()
    assert [(o.outcome, o.problems[0]["message"]) for o in world.outcomes(job)] == [(ROW_FAILED, CRASHED)] * 2
    assert world.dead_letters == [] and world.jobs.get(job.job_id).status == DONE  # type: ignore[union-attr]


def test_throttling_requeues_the_rest_of_the_batch_later_each_time() -> None:
    world = World()
    world.start(CSV, csv_file([("A", "a@example.com"), ("B", "b@example.com"), ("C", "c@example.com")]))
    plan = world.queue.take()
    world.worker.handle([{"messageId": "m", "body": json.dumps(plan)}], lambda: 120_000)
    batch = world.queue.take()
    world.identities.fail_next["create"] = ServiceUnavailable()
    world.worker.handle([{"messageId": "b", "body": json.dumps(batch)}], lambda: 120_000)
    ((again, delay),) = world.queue.messages
    assert (again["attempt"], delay, [r["n"] for r in again["rows"]]) == (1, 2, [1, 2, 3])
