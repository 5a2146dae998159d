"""The bulk jobs' IAM: the worker's role policy grants exactly the calls its code makes on moto
(an import with every kind of row, an export, each of their rarer paths) plus what Lambda's SQS event
source mapping needs; the API function's job routes use exactly their S3 and SQS grants."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.cognito import CognitoIdentityProvider
from chalicelib.adapters.dynamodb import DynamoUserRepository, user_to_item
from chalicelib.adapters.email_owners import ReservationOwners
from chalicelib.adapters.job_queue import SqsJobQueue
from chalicelib.adapters.job_store import DynamoJobStore
from chalicelib.adapters.table_schema import EMAIL_KEY_PREFIX
from chalicelib.adapters.transfers import S3Transfers
from chalicelib.adapters.user_pages import ListingPages
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.domain.bulk_files import CSV
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.exports import Exports, ExportWriter
from chalicelib.domain.import_rows import ImportPlanner, RowImporter
from chalicelib.domain.imports import ImportRequest, Imports
from chalicelib.domain.job_worker import JobWorker
from chalicelib.domain.jobs import MAX_RECEIVES, ExportPoint, export_key
from chalicelib.domain.models import NewUser
from chalicelib.domain.pacing import Pacer
from chalicelib.domain.service import UserService
from chalicelib.web.inputs import parse_new_user
from devstack.cognito_emulation import widen_email_check
from devstack.jobs import lambda_record, queue_arn
from infra.policies import (
    ACCOUNT_POOLS_ARN,
    WORKER_FUNCTION,
    export_files_arn,
    import_files_arn,
    job_queue_arn,
    jobs_table_arn,
    policy_document,
    policy_path,
    table_arn,
    worker_policy_document,
)
from infra.stages import DEPLOYED_STAGES, load_stage
from tests.integration.conftest import TABLE
from tests.support.bulk_calls import BUCKET, JOBS, QUEUE, REGION, Calls, api_job_calls, job_resources
from tests.unit.fakes import make_user

# What Lambda's event source mapping does with the worker's role: receive, delete, read the queue's attributes.
MAPPING = {("sqs:ReceiveMessage", "queue"), ("sqs:DeleteMessage", "queue"), ("sqs:GetQueueAttributes", "queue")}


class _CompletedAlready:
    """An S3 client whose CompleteMultipartUpload says the upload is gone (it was completed by a
    request whose answer was lost; moto completes an upload twice without a word)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name == "complete_multipart_upload":

            def gone(**kwargs: Any) -> Any:
                raise ClientError({"Error": {"Code": "NoSuchUpload"}}, "CompleteMultipartUpload")

            return gone
        return getattr(self._client, name)


@pytest.fixture
def worker_calls(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """Every call the worker makes: an import of a new member, a new admin, an existing user's email,
    the email of a record without a sign-in (its new sign-in taken back), a bad row; an export over
    several parts, its completion answered late and repeated, and an export given up."""
    widen_email_check()
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 64)
    url = job_resources(ddb)
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = cognito.create_user_pool(PoolName="iam", UsernameAttributes=["email"])["UserPool"]["Id"]
    cognito.create_group(UserPoolId=pool, GroupName=ADMIN_GROUP)
    # What the API did before: a user, a record without a sign-in, an import and two exports started.
    plain_jobs = DynamoJobStore(JOBS, client=ddb)
    plain_files = S3Transfers(BUCKET, 1 << 20, boto3.client("s3", region_name=REGION))
    plain_queue = SqsJobQueue(url, boto3.client("sqs", region_name=REGION))
    repo = DynamoUserRepository(TABLE, client=ddb)
    UserService(repo, CursorCodec(b"k" * 32), CognitoIdentityProvider(pool, cognito)).create_user(
        NewUser("Old", "old@example.com"), password="Sup3r-secret-pass!"
    )
    orphan = make_user("0b8a61c2-4f4e-4a43-9d1b-7f0f7f3e2a10", "Orphan", "orphan@example.com")
    ddb.put_item(TableName=TABLE, Item=user_to_item(orphan))
    reservation = {"userId": {"S": EMAIL_KEY_PREFIX + "orphan@example.com"}, "ownerId": {"S": orphan.user_id}}
    ddb.put_item(TableName=TABLE, Item=reservation)
    rows = "name,email,role\nNew,new@example.com,\nBoss,boss@example.com,admin\nOld,old@example.com,\n"
    rows += "O,orphan@example.com,\nBad,bad,\n"
    Imports(plain_jobs, plain_files, CursorCodec(b"k" * 32)).start(
        "admin", ImportRequest(CSV, True, rows.encode()), "t1"
    )
    export = Exports(plain_jobs, plain_files, plain_queue).start("admin", CSV, "t2")
    given_up = Exports(plain_jobs, plain_files, plain_queue).start("admin", CSV, "t3")
    # The worker, every call of it recorded.
    calls = Calls()
    s3 = calls.attach(boto3.client("s3", region_name=REGION))
    jobs, files = DynamoJobStore(JOBS, client=calls.attach(ddb)), S3Transfers(BUCKET, 1 << 20, s3)
    queue = SqsJobQueue(url, calls.attach(boto3.client("sqs", region_name=REGION)))
    identities = CognitoIdentityProvider(pool, calls.attach(cognito))
    service = UserService(repo, CursorCodec(b"k" * 32), identities)
    writer = ExportWriter(jobs, files, queue, ListingPages(TABLE, ddb), Pacer(0), part_bytes=100, page_users=1)
    importer = RowImporter(jobs, queue, service, ReservationOwners(TABLE, ddb), Pacer(0), parse_new_user)
    worker = JobWorker(ImportPlanner(jobs, files, queue), importer, writer)
    sqs = boto3.client("sqs", region_name=REGION)
    for _ in range(60):
        found = sqs.receive_message(QueueUrl=url, AttributeNames=["All"]).get("Messages", [])
        if not found:
            break
        record = lambda_record(found[0], queue_arn(REGION, QUEUE), REGION)
        if json.loads(found[0]["Body"]).get("job") == given_up.job_id:
            point = jobs.claim_step(given_up.job_id, 0, "m", "x")  # a run that started its upload, then
            upload = files.start_upload(export_key(given_up.job_id, CSV), "text/csv")  # crashed each time
            jobs.save_export_point(given_up.job_id, ExportPoint(1, upload), "m")
            record["attributes"]["ApproximateReceiveCount"] = str(MAX_RECEIVES)
            worker._exports.run = _crash  # type: ignore[method-assign,assignment]
            worker.handle([record], lambda: 120_000)
            del worker._exports.run  # type: ignore[attr-defined]
            assert point is not None
        else:
            worker.handle([record], lambda: 120_000)
        sqs.delete_message(QueueUrl=url, ReceiptHandle=found[0]["ReceiptHandle"])
    point = jobs.export_point(export.job_id)
    assert point is not None and len(point.parts) > 1
    late = S3Transfers(BUCKET, 1 << 20, _CompletedAlready(s3))
    late.complete_upload(export_key(export.job_id, CSV), point.upload_id or "", point.parts)
    made = {("sqs:SendMessage", r) if a == "sqs:SendMessageBatch" else (a, r) for a, r in calls.made}
    return made


def _crash(*args: Any) -> None:
    raise RuntimeError("a bug")


def _resources(stage_name: str) -> dict[str, str]:
    stage = load_stage(stage_name)
    return {
        TABLE: table_arn(stage),
        JOBS: jobs_table_arn(stage),
        "imports/": import_files_arn(stage),
        "exports/": export_files_arn(stage),
        "queue": job_queue_arn(stage),
        "pool": ACCOUNT_POOLS_ARN,
    }


def _granted(document: dict[str, Any], resources: dict[str, str]) -> set[tuple[str, str]]:
    by_arn = {arn: name for name, arn in resources.items()}
    return {
        (action, by_arn[resource])
        for statement in document["Statement"]
        for resource in _listed(statement["Resource"])
        for action in statement["Action"]
        if resource in by_arn
    }


def _listed(resource: str | list[str]) -> list[str]:
    return resource if isinstance(resource, list) else [resource]


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_worker_may_do_exactly_what_its_code_does_and_its_mapping_needs(
    worker_calls: set[tuple[str, str]], name: str
) -> None:
    committed = json.loads(Path(policy_path(name, WORKER_FUNCTION)).read_text())
    assert committed == worker_policy_document(load_stage(name))
    assert _granted(committed, _resources(name)) == worker_calls | MAPPING
    # Beyond those, only its own log group; nothing of the audit trail, the bus, avatars or secrets.
    others = [s for s in committed["Statement"] if not set(_listed(s["Resource"])) <= set(_resources(name).values())]
    assert [s["Sid"] for s in others] == ["OwnLogGroup"]
    assert not any(statement["Resource"] == "*" for statement in committed["Statement"])


def test_the_worker_touches_keys_under_the_job_prefixes_only(worker_calls: set[tuple[str, str]]) -> None:
    prefixes = {resource for action, resource in worker_calls if action.startswith("s3:")}
    assert prefixes == {"imports/", "exports/"}
    assert fnmatch.fnmatchcase("users-api-prod-avatars-1/imports/x.csv", "*/imports/*")


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_job_routes_use_exactly_their_s3_and_sqs_grants(ddb: Any, name: str) -> None:
    made = {("sqs:SendMessage", r) if a == "sqs:SendMessageBatch" else (a, r) for a, r in api_job_calls(ddb).made}
    granted = _granted(policy_document(load_stage(name)), _resources(name))
    job_grants = {(a, r) for a, r in granted if r in ("imports/", "exports/", "queue")}
    assert job_grants == {(a, r) for a, r in made if r in ("imports/", "exports/", "queue")}
    assert job_grants == {
        ("s3:PutObject", "imports/"),
        ("s3:DeleteObject", "imports/"),
        ("s3:GetObject", "exports/"),
        ("sqs:SendMessage", "queue"),
    }
