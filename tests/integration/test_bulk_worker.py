"""The bulk jobs worker with its real adapters on moto (DynamoDB, S3, SQS, Cognito): batches from the
queue, rows made once whatever is delivered twice or answered late, the audit of sign-ins against
records (`make drift`'s check) clean afterwards, and an export streamed through S3's multipart upload."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.adapters.dynamodb import DynamoUserRepository, user_to_item
from chalicelib.adapters.email_owners import ReservationOwners
from chalicelib.adapters.job_queue import SqsJobQueue
from chalicelib.adapters.job_store import DynamoJobStore
from chalicelib.adapters.local_outbox import OutboxCognitoIdentityProvider
from chalicelib.adapters.transfers import S3Transfers
from chalicelib.adapters.user_pages import ListingPages
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.domain.bulk_files import CSV, JSONL
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.exports import Exports, ExportWriter
from chalicelib.domain.import_rows import ImportPlanner, RowImporter
from chalicelib.domain.imports import ImportRequest, Imports
from chalicelib.domain.job_worker import JobWorker
from chalicelib.domain.jobs import CANCELLED, CREATED, DONE, EXISTS, Job, export_key
from chalicelib.domain.pacing import Pacer
from chalicelib.domain.service import UserService
from chalicelib.web.inputs import parse_new_user
from devstack import cognito_emulation
from devstack.jobs import create_job_resources, lambda_record, queue_arn
from ops.drift import Drift
from tests.integration.conftest import TABLE
from tests.support.dynamodb_faults import Faults, answered_late, aws_error
from tests.unit.fakes import make_user

JOBS, QUEUE, BUCKET, REGION = "users-jobs-it", "users-api-it-jobs", "users-api-it-avatars", "us-east-1"
BATCH = 10


@dataclass
class Stack:
    ddb: Any
    cognito: Any
    pool: str
    queue_url: str
    jobs: DynamoJobStore
    files: S3Transfers
    service: UserService
    worker: JobWorker
    imports: Imports
    exports: Exports
    writer: ExportWriter

    def drain(self, twice: Callable[[dict[str, Any]], bool] = lambda message: False) -> int:
        """Deliver every message as the event source mapping does; `twice(body)`: deliver it again."""
        sqs = boto3.client("sqs", region_name=REGION)
        handled = 0
        for _ in range(1000):
            found = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"])
            if not found.get("Messages"):
                return handled
            message = found["Messages"][0]
            record = lambda_record(message, queue_arn(REGION, QUEUE), REGION)
            try:
                self.worker.handle([record], lambda: 120_000)
            except BaseException:
                # As after a crash, SQS hands it over again (here at once, not after its timeout).
                sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
                raise
            if twice(json.loads(message["Body"])):
                self.worker.handle([{**record, "messageId": "again"}], lambda: 120_000)
            sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            handled += 1
        raise AssertionError("the queue did not drain")

    def start(self, fmt: str, body: str, token: str = "t1") -> Job:
        job, _ = self.imports.start("admin", ImportRequest(fmt, True, body.encode()), token)
        return job


@pytest.fixture
def stack(ddb: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stack]:
    cognito_emulation.apply()  # Cognito's email check and aliases (a retried row adopts its sign-in)
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1024)  # small parts, as S3's 5 MiB
    # Batches of BATCH rows (50 deployed): a few dozen rows make several batches, as thousands do.
    monkeypatch.setattr("chalicelib.domain.import_rows.BATCH_ROWS", BATCH)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    queue_url, _ = create_job_resources("", REGION, JOBS, QUEUE, BUCKET)
    sqs = boto3.client("sqs", region_name=REGION)
    for message in sqs.receive_message(QueueUrl=queue_url).get("Messages", []):  # S3's test event
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = cognito.create_user_pool(PoolName="bulk", UsernameAttributes=["email"])["UserPool"]["Id"]
    cognito.create_group(UserPoolId=pool, GroupName=ADMIN_GROUP)
    jobs, queue = DynamoJobStore(JOBS, client=ddb), SqsJobQueue(queue_url, boto3.client("sqs", region_name=REGION))
    files = S3Transfers(BUCKET, 1 << 20, boto3.client("s3", region_name=REGION))
    # Invitations to an outbox, as in the local stages: moto's RESEND would duplicate the user.
    identities = OutboxCognitoIdentityProvider(pool, tmp_path / "outbox.jsonl", cognito)
    service = UserService(DynamoUserRepository(TABLE, client=ddb), CursorCodec(b"k" * 32), identities)
    writer = ExportWriter(jobs, files, queue, ListingPages(TABLE, ddb), Pacer(0), part_bytes=2048, page_users=10)
    worker = JobWorker(
        ImportPlanner(jobs, files, queue),
        RowImporter(jobs, queue, service, ReservationOwners(TABLE, ddb), Pacer(0), parse_new_user),
        writer,
    )
    yield Stack(
        ddb,
        cognito,
        pool,
        queue_url,
        jobs,
        files,
        service,
        worker,
        Imports(jobs, files, CursorCodec(b"k" * 32)),
        Exports(jobs, files, queue),
        writer,
    )


def rows_csv(count: int, start: int = 0) -> str:
    return "name,email,role\n" + "".join(
        f"User {n},user{n}@example.com,{'admin' if n % 10 == 0 else 'member'}\n" for n in range(start, start + count)
    )


def outcomes(stack: Stack, job: Job) -> list[Any]:
    found, after = [], None
    while True:
        page, after = stack.jobs.outcomes(job.job_id, 100, after, failed_only=False)
        found += page
        if after is None:
            return found


def audit(stack: Stack) -> None:
    """Every sign-in has its record and every record its sign-in, groups and states agreeing."""
    report = Drift(TABLE, stack.pool, stack.ddb, stack.cognito).check()
    assert report.clean, list(report.lines())


def test_rows_delivered_twice_make_each_user_once_and_count_once(stack: Stack) -> None:
    job = stack.start(CSV, rows_csv(25))
    stack.drain(twice=lambda body: body.get("kind") == "rows" or "Records" in body)
    stored = stack.jobs.get(job.job_id)
    assert stored is not None and stored.status == DONE
    assert stored.counts.public() == {"total": 25, "processed": 25, "created": 25, "exists": 0, "failed": 0}
    assert len({o.user_id for o in outcomes(stack, job)}) == 25
    audit(stack)


def test_answers_lost_after_the_writes_and_throttling_leave_no_duplicate_and_every_row_counted(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)
    monkeypatch.setattr("chalicelib.domain.import_rows.backoff_s", lambda attempt: 0)
    faults = Faults(stack.ddb)
    try:
        # Slow successes below botocore's retries: the user's transaction and the row's outcome
        # are applied, their answers lost, and botocore resends them; then throttling.
        faults.inject("TransactWriteItems", answered_late, times=6)
        faults.inject("BatchGetItem", aws_error(400, "ThrottlingException"), times=3)
        faults.inject("UpdateItem", answered_late, times=3)
        job = stack.start(CSV, rows_csv(25))
        stack.drain()
    finally:
        faults.close()
    stored = stack.jobs.get(job.job_id)
    assert stored is not None and stored.status == DONE
    assert stored.counts.created == 25 and stored.counts.processed == 25
    assert [o.outcome for o in outcomes(stack, job)] == [CREATED] * 25
    audit(stack)


def test_a_worker_stopped_mid_batch_is_finished_by_the_redelivery_and_a_rerun_creates_none(stack: Stack) -> None:
    job = stack.start(CSV, rows_csv(30))
    real = stack.service.create_user
    calls = {"n": 0}

    def dies_on_the_seventh(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        created = real(*args, **kwargs)
        if calls["n"] == 7:
            raise SystemError("the worker was killed")  # after the user, before its outcome
        return created

    stack.service.create_user = dies_on_the_seventh  # type: ignore[method-assign]
    with pytest.raises(SystemError):
        stack.drain()
    stack.drain()  # SQS hands the batch over again (here at once)
    stored = stack.jobs.get(job.job_id)
    assert stored is not None and stored.counts.public()["created"] == 30 and stored.status == DONE
    again = stack.start(CSV, rows_csv(30), token="t2")
    stack.drain()
    assert [o.outcome for o in outcomes(stack, again)] == [EXISTS] * 30
    assert {o.user_id for o in outcomes(stack, again)} == {o.user_id for o in outcomes(stack, job)}
    audit(stack)


def test_a_cancel_between_batches_stops_the_rest(stack: Stack) -> None:
    job = stack.start(
        JSONL, "".join(json.dumps({"name": f"U{n}", "email": f"u{n}@example.com"}) + "\n" for n in range(3 * BATCH))
    )
    sqs = boto3.client("sqs", region_name=REGION)
    handled = 0

    def handle_one() -> bool:
        found = sqs.receive_message(QueueUrl=stack.queue_url, AttributeNames=["All"]).get("Messages", [])
        if not found:
            return False
        stack.worker.handle([lambda_record(found[0], queue_arn(REGION, QUEUE), REGION)], lambda: 120_000)
        sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=found[0]["ReceiptHandle"])
        return True

    handle_one()  # the file's event: planned, 3 batches queued
    handle_one()  # the first batch
    handled = 2
    stack.imports.cancel(job.job_id)
    while handle_one():
        handled += 1
    stored = stack.jobs.get(job.job_id)
    assert stored is not None and stored.status == CANCELLED and stored.counts.processed == BATCH
    assert handled == 4


def test_an_export_streams_every_user_once_through_a_multipart_upload(stack: Stack) -> None:
    for n in range(240):
        stack.ddb.put_item(
            TableName=TABLE, Item=user_to_item(make_user(f"u-{n:04d}", f"User {n}", f"u{n}@example.com"))
        )
    job = stack.exports.start("admin", CSV, "t1")
    runs = 0
    sqs = boto3.client("sqs", region_name=REGION)
    while found := sqs.receive_message(QueueUrl=stack.queue_url, AttributeNames=["All"]).get("Messages", []):
        record = lambda_record(found[0], queue_arn(REGION, QUEUE), REGION)
        calls = iter([120_000, 120_000] + [10_000] * 1000)  # each run stops after its first part
        stack.worker.handle([record], lambda calls=calls: next(calls))  # type: ignore[misc]
        sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=found[0]["ReceiptHandle"])
        runs += 1
    assert runs > 3
    stored, url, _ = stack.exports.get(job.job_id)
    assert stored.status == DONE and stored.users == 240 and url is not None
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=export_key(job.job_id, CSV))
    lines = body["Body"].read().decode().splitlines()
    assert lines[0].startswith("userId,") and sorted(line.split(",")[0] for line in lines[1:]) == [
        f"u-{n:04d}" for n in range(240)
    ]
    assert stack.writer.peak_buffer < 2048 + 10 * 200
