"""The AWS calls the bulk jobs make, recorded on moto as (IAM action, resource) for the policy tests
(tests/integration/test_iam_policy.py and test_iam_policy_bulk_jobs.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3

from chalicelib.adapters.job_queue import SqsJobQueue
from chalicelib.adapters.job_store import DynamoJobStore
from chalicelib.adapters.transfers import S3Transfers
from chalicelib.domain.bulk_files import CSV
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.errors import JobFinished, ServiceUnavailable
from chalicelib.domain.exports import Exports
from chalicelib.domain.imports import ImportRequest, Imports

REGION = "us-east-1"
JOBS, QUEUE, BUCKET = "users-jobs-it", "users-api-it-jobs", "users-api-it-avatars"
# The IAM action that authorises each S3 operation (HeadObject as GetObject; a multipart upload's
# create, parts and completion as PutObject).
S3_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
}
# IAM authorises each item of a TransactWriteItems request as its own action.
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Delete": "DeleteItem",
    "Update": "UpdateItem",
    "ConditionCheck": "ConditionCheckItem",
}


class Calls:
    """(IAM action, resource) of each call: a table (or "<table>/index/<name>"), an S3 key's prefix
    ("imports/", "exports/"), "queue" or "pool"."""

    def __init__(self) -> None:
        self.made: set[tuple[str, str]] = set()

    def _dynamodb(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "TransactWriteItems":
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                self.made.add((f"dynamodb:{TRANSACT_ACTIONS[kind]}", body["TableName"]))
        elif model.name == "BatchGetItem":
            self.made |= {("dynamodb:BatchGetItem", table) for table in params["RequestItems"]}
        else:
            resource = params["TableName"] + (f"/index/{params['IndexName']}" if "IndexName" in params else "")
            self.made.add((f"dynamodb:{model.name}", resource))

    def _service(self, prefix: str, resource: str) -> Callable[..., None]:
        def record(model: Any, params: dict[str, Any], **_: Any) -> None:
            self.made.add((f"{prefix}:{model.name}", resource))

        return record

    def attach(self, client: Any) -> Any:
        name = client.meta.service_model.service_name
        if name == "dynamodb":
            client.meta.events.register("before-parameter-build.dynamodb", self._dynamodb)
        elif name == "sqs":
            client.meta.events.register("before-parameter-build.sqs", self._service("sqs", "queue"))
        elif name == "cognito-idp":
            client.meta.events.register(
                "before-parameter-build.cognito-identity-provider", self._service("cognito-idp", "pool")
            )
        else:
            return S3Calls(client, self)
        return client


class S3Calls:
    """Wraps an S3 client: (IAM action, key prefix) of every call, and of every presigned request,
    which S3 authorises as its signer when used (a POST as PutObject)."""

    def __init__(self, client: Any, calls: Calls) -> None:
        self.client = client
        self.calls = calls

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)
        to_operation = self.client.meta.method_to_api_mapping

        def recorded(**kwargs: Any) -> Any:
            if name == "generate_presigned_post":
                operation, params = "PutObject", kwargs
            elif name == "generate_presigned_url":
                operation, params = to_operation[kwargs["ClientMethod"]], kwargs["Params"]
            else:
                operation, params = to_operation[name], kwargs
            # A KeyError here: the code makes a new S3 call; give it an IAM action above and in the policy.
            self.calls.made.add((S3_ACTIONS[operation], params["Key"].split("/")[0] + "/"))
            return method(**kwargs)

        return recorded


def job_resources(ddb: Any) -> str:
    """The jobs table, the bucket and the queue on moto; the queue's URL."""
    from devstack.jobs import create_job_resources

    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    url, _ = create_job_resources("", REGION, JOBS, QUEUE, BUCKET)
    return url


def api_job_calls(ddb: Any, calls: Calls | None = None) -> Calls:
    """Everything the API function's job routes do: start an import with a file and with a form,
    read it, page its errors and rows, cancel it, take back a job whose file could not be stored;
    start and read an export. Its DynamoDB calls go through `ddb` (whose recorder, if any, sees them)."""
    calls = calls or Calls()
    url = job_resources(ddb)
    jobs = DynamoJobStore(JOBS, client=ddb)
    files = S3Transfers(BUCKET, 1 << 20, calls.attach(boto3.client("s3", region_name=REGION)))
    queue = SqsJobQueue(url, calls.attach(boto3.client("sqs", region_name=REGION)))
    imports = Imports(jobs, files, CursorCodec(b"k" * 32))
    job, _ = imports.start("admin", ImportRequest(CSV, True, b"name,email\nAda,ada@example.com\n"), "t1")
    imports.start("admin", ImportRequest(CSV, False), "t2")  # a form
    imports.get(job.job_id)
    imports.report(job.job_id, 10, None, failed_only=True)
    imports.report(job.job_id, 10, None, failed_only=False)
    imports.cancel(job.job_id)
    try:
        imports.cancel(job.job_id)  # cancelled already: answered as it is
    except JobFinished:
        raise AssertionError("a cancelled job cancelled again is no error") from None

    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise ServiceUnavailable()

    failing = Imports(jobs, files, CursorCodec(b"k" * 32))
    files.put, real = unavailable, files.put  # type: ignore[method-assign]
    try:
        failing.start("admin", ImportRequest(CSV, True, b"name,email\nB,b@example.com\n"), "t3")
    except ServiceUnavailable:
        pass
    files.put = real  # type: ignore[method-assign]
    exports = Exports(jobs, files, queue)
    export = exports.start("admin", CSV, "t4")
    exports.get(export.job_id)
    # Done (as the worker leaves it): reading it signs a download.
    point = jobs.claim_step(export.job_id, 0, "m", "2026-01-01T00:00:00.000Z")
    assert point is not None and jobs.finish_export(export.job_id, point, "m", "exports/x.csv", "x") is not None
    assert exports.get(export.job_id)[1] is not None
    return calls
