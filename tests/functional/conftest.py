"""The app through Chalice's test client, with real RS256 tokens and DynamoDB on moto."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Sets the environment app.py reads at import; ORIGIN is re-exported for the tests.
from tests.support.dynamodb_faults import Faults

from tests.support.app_env import ORIGIN as ORIGIN  # isort: skip

import boto3
import pytest
import time_machine
from chalice.test import Client
from moto import mock_aws

from app import app
from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.adapters.local_outbox import OutboxCognitoIdentityProvider
from chalicelib.adapters.table_schema import create_audit_table_kwargs, create_table_kwargs
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.web.tokens import TokenVerifier
from devstack import cognito_emulation
from devstack.emulator_tables import emulator_table
from devstack.gateway import AppGateway
from devstack.resources import client_settings, pool_settings
from tests.support import tokens
from tests.support.moto_state import moto_as_make_run_serves_it as moto_as_make_run_serves_it  # the layer's moto
from tests.support.sign_ins import seed_sign_in

PROJECT_DIR = Path(__file__).resolve().parents[2]

TABLE = "users-test"
BUCKET = "users-api-test-avatars"  # AVATAR_BUCKET of the test stage
AUDIT_TABLE, BUS = "users-audit-test", "users-api-test"  # AUDIT_TABLE_NAME, EVENT_BUS_NAME of the test stage
JOBS_TABLE, JOBS_QUEUE = "users-jobs-test", "users-api-test-jobs"  # JOBS_TABLE_NAME, JOBS_QUEUE of the test stage


class Api:
    """Small JSON helper over Chalice's test client."""

    def __init__(self, client: Client):
        self.client = client

    def request(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        raw: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers.setdefault("Authorization", f"Bearer {token}")
        payload: bytes | str | None = raw
        if body is not None:
            import json

            payload = json.dumps(body)
            all_headers.setdefault("Content-Type", "application/json")
        if isinstance(payload, str):
            payload = payload.encode()
        return self.client.http.request(method, path, headers=all_headers, body=payload or b"")


@dataclass(frozen=True)
class Emulator:
    pool_id: str
    client_id: str  # the app client as deployed (infra/limits.json): users' own Cognito calls go through it
    queue_url: str


@pytest.fixture(scope="package", autouse=True)
def pass_time() -> Iterator[Callable[[float], None]]:
    """The layer's clock, and what moves it on: the wall clock of everything in the process (the
    app, moto's Cognito stamping `iat`, the tests' tokens, PyJWT checking them) runs on from now as
    ever, but a wait moves it on at once instead of sleeping. A revoking change waits for Cognito's
    next whole second before its Cognito step (models.tokens_valid_from); slept for real, those
    waits were a third of this layer's time. One clock for the whole layer, so it never runs back
    between tests; the monotonic clocks (timeouts, Hypothesis's deadlines) are left real. The e2e
    layer waits for real, against the running stack."""
    with time_machine.travel(time.time(), tick=True) as traveller:
        yield traveller.shift


@pytest.fixture(scope="package")
def emulator() -> Iterator[Emulator]:
    """moto for the whole functional layer, built once: the users table, the avatar bucket and a
    Cognito pool and app client as deployed (devstack/resources.py: email as username, verified
    before it changes, the client's attributes; the admins group). Each test starts from it
    emptied (`ddb`), so building it, the slow part, happens once, not once per test."""
    cognito_emulation.apply()
    with mock_aws():
        aws.reset_clients()
        client = boto3.client("dynamodb", region_name=tokens.REGION)
        client.create_table(**create_table_kwargs(TABLE))
        client.create_table(**create_audit_table_kwargs(AUDIT_TABLE))
        boto3.client("events", region_name=tokens.REGION).create_event_bus(Name=BUS)
        boto3.client("s3", region_name=tokens.REGION).create_bucket(Bucket=BUCKET)
        cognito = boto3.client("cognito-idp", region_name=tokens.REGION)
        pool_id = str(cognito.create_user_pool(**pool_settings("users-test"))["UserPool"]["Id"])
        client_id = str(
            cognito.create_user_pool_client(**client_settings(pool_id, "users-test"))["UserPoolClient"]["ClientId"]
        )
        cognito.create_group(UserPoolId=pool_id, GroupName=ADMIN_GROUP)
        # The bulk jobs' table, queue and the bucket's notification of import files, as deployed.
        from devstack.jobs import create_job_resources

        queue_url, _ = create_job_resources("", tokens.REGION, JOBS_TABLE, JOBS_QUEUE, BUCKET)
        os.environ["JOBS_QUEUE_URL"] = queue_url
        yield Emulator(pool_id, client_id, queue_url)
        os.environ.pop("JOBS_QUEUE_URL", None)
        aws.reset_clients()


def _forget_stream_records() -> None:
    """moto keeps every record of a table's stream for ever, and a stream is read from its oldest
    record (TRIM_HORIZON, as the deployed mapping starts): each test's `deliver_changes` fed the
    consumer every change the worker's earlier tests made (87 ms a GetRecords, most of the layer's
    serialising), and over the thousands of sequences of `make fuzz` they filled the memory until
    the kernel killed the worker. The shard goes on from where it was, so sequence numbers never
    repeat."""
    shard = emulator_table(tokens.REGION, TABLE).stream_shard
    if shard is not None:
        shard.starting_sequence_number += len(shard.items)
        del shard.items[:]  # in place: devstack/moto_patches.py's transaction rollback holds the list


def _empty(emulator: Emulator) -> None:
    """What a test leaves behind goes: every item, avatar, job message, sign-in and stream record.
    The tables are emptied in moto itself: a Scan and a DeleteItem per item cost a fifth of the
    layer's time, and each delete put a record on the stream only to be forgotten below. moto
    finds items, and its indexes' items, in this one dict; emptied in place, as the transaction
    rollback (devstack/moto_patches.py) may hold it."""
    for table in (TABLE, JOBS_TABLE):
        emulator_table(tokens.REGION, table).items.clear()
    s3 = aws.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for found in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=found["Key"])
    sqs = aws.client("sqs")  # PurgeQueue takes one call a minute: received and deleted instead
    while found := sqs.receive_message(QueueUrl=emulator.queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in found:
            sqs.delete_message(QueueUrl=emulator.queue_url, ReceiptHandle=message["ReceiptHandle"])
    cognito = aws.client("cognito-idp")
    for found in cognito.list_users(UserPoolId=emulator.pool_id)["Users"]:
        cognito.admin_delete_user(UserPoolId=emulator.pool_id, Username=found["Username"])
    _forget_stream_records()


@pytest.fixture
def ddb(emulator: Emulator) -> Any:
    """The app's DynamoDB client, on an empty table. The app's clients live as long as the emulator,
    as they live as long as a Lambda container: a test that hooks into one unhooks when it ends."""
    _empty(emulator)
    return aws.client("dynamodb")


@pytest.fixture
def faults(ddb: Any) -> Iterator[Faults]:
    """DynamoDB faults below botocore's retry handler (tests/support/dynamodb_faults.py)."""
    injected = Faults(ddb)
    yield injected
    injected.close()


@pytest.fixture
def pool(ddb: Any, emulator: Emulator) -> str:
    """The Cognito pool, empty: the sign-ins the API makes. Tokens are still the tests' own, so a
    token's sub need not be in it."""
    return emulator.pool_id


@pytest.fixture
def sign_in(pool: str) -> Callable[..., str]:
    """A sign-in made outside the API (the console) for a test's own sub and email: what a first
    `PUT /users/me` takes the new record's email and role from (tests/support/sign_ins.py)."""

    def make(sub: str, email: str, admin: bool = False, **options: Any) -> str:
        return seed_sign_in(aws.client("cognito-idp"), pool, sub, email, admin, **options)

    return make


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox.jsonl"


@pytest.fixture
def chalice_client(ddb: Any, pool: str, outbox: Path, pass_time: Callable[[float], None]) -> Iterator[Client]:
    bootstrap.reset()
    bootstrap.override(
        sleep=pass_time,  # the service's waits for Cognito's next second move the layer's clock on
        verify=TokenVerifier(tokens.ISSUER, tokens.CLIENT_ID, lambda: tokens.jwks()).verify,
        # As in the local stages: invitations go to an outbox file, not through moto's RESEND.
        identities=OutboxCognitoIdentityProvider(pool, outbox),
    )
    with Client(app, stage_name="test", project_dir=str(PROJECT_DIR)) as client:
        yield client
    bootstrap.reset()


@pytest.fixture
def api(chalice_client: Client) -> Api:
    # The fixed local gateway that `make run` uses: Cognito tokens reach the app untouched.
    chalice_client.http._local_gateway = AppGateway(app, chalice_client.http._config)
    api = Api(chalice_client)
    # As a warm container that served the admin before: its record (none) is in the revocation
    # check's cache, so the AWS calls a test counts are those of the request itself
    # (tests/functional/test_lifecycle.py counts the check's own read).
    api.request("GET", "/users/me", tokens.ADMIN)
    return api


@pytest.fixture
def stock_api(chalice_client: Client) -> Api:
    """Chalice's own local gateway, which fabricates claims from unverified tokens."""
    return Api(chalice_client)


@pytest.fixture
def deliver_changes(chalice_client: Client, ddb: Any) -> Callable[[], None]:
    """Deliver every new record of the table's stream to the app's consumer (`user_changes`), as
    Lambda's event source mapping would: what `chalice local` and the test client never do."""
    from botocore.config import Config

    from devstack.streams import StreamPoller, StreamReader, stream_arn

    # botocore sends stream calls to an account-based host moto 5.2.5 does not serve.
    streams = boto3.client(
        "dynamodbstreams", region_name=tokens.REGION, config=Config(account_id_endpoint_mode="disabled")
    )
    poller = StreamPoller(
        StreamReader(streams, stream_arn(ddb, TABLE)),
        lambda event: chalice_client.lambda_.invoke("user_changes", event).payload,
    )
    return poller.drain


@pytest.fixture(autouse=True)
def retries_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retries wait up to a second between attempts; the fault tests count the
    attempts, not the seconds, so here they follow at once."""
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)


@pytest.fixture
def job_worker(chalice_client: Client, pool: str, outbox: Path, emulator: Emulator) -> Any:
    """The bulk jobs worker as its function would wire it (chalicelib/job_wiring.py), on the emulator's
    pool, its invitations to the outbox; handed to app.py's `bulk_jobs` handler."""
    from chalicelib.job_wiring import build_worker

    settings = {
        "STAGE": "test",
        "TABLE_NAME": TABLE,
        "USER_POOL_ID": pool,
        "JOBS_TABLE_NAME": JOBS_TABLE,
        "JOBS_QUEUE_URL": emulator.queue_url,
        "AVATAR_BUCKET": BUCKET,
        "OUTBOX_FILE": str(outbox),
        "IMPORT_ROWS_PER_SECOND": "0",
        "EXPORT_READ_UNITS_PER_SECOND": "0",
    }
    with pytest.MonkeyPatch.context() as env:
        for name, value in settings.items():
            env.setenv(name, value)
        worker = build_worker()
    bootstrap.use_job_worker(worker)
    return worker


@pytest.fixture
def run_jobs(job_worker: Any, emulator: Emulator) -> Callable[[], int]:
    """Deliver every message of the job queue to app.py's `bulk_jobs`, one at a time as its event
    source mapping does, until the queue is empty (messages it queues meanwhile included); how many."""
    from chalice.local import LambdaContext

    from app import bulk_jobs
    from devstack.jobs import lambda_record, queue_arn

    sqs = aws.client("sqs")
    arn = queue_arn(tokens.REGION, JOBS_QUEUE)

    def drain() -> int:
        handled = 0
        for _ in range(2000):
            found = sqs.receive_message(QueueUrl=emulator.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"]).get(
                "Messages", []
            )
            if not found:
                return handled
            context = LambdaContext("bulk_jobs", memory_size=512, max_runtime_ms=120_000)
            bulk_jobs({"Records": [lambda_record(found[0], arn, tokens.REGION)]}, context)
            sqs.delete_message(QueueUrl=emulator.queue_url, ReceiptHandle=found[0]["ReceiptHandle"])
            handled += 1
        raise RuntimeError("the job queue did not drain")

    return drain
