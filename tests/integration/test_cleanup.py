"""`make cleanup STAGE=...` on the emulator: what a failed or deleted stack of a stage retained (its
tables, avatar bucket, cursor secret and pool, protected as the templates protect them) is listed
with what each holds; nothing is deleted without CONFIRM=1, nothing holding data without DATA=1,
and nothing at all while a stack of the stage is live. The documented command runs through make,
with the AWS CLI's and boto3's AWS_ENDPOINT_URL pointing it at the emulator."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest

from chalicelib.adapters.job_store import ATTRIBUTE_DEFINITIONS as JOBS_ATTRIBUTES
from chalicelib.adapters.job_store import KEY_SCHEMA as JOBS_KEY_SCHEMA
from chalicelib.adapters.table_schema import create_audit_table_kwargs, create_table_kwargs
from devstack.motoserver import MotoServer
from devstack.resources import emulator_client
from infra.stages import PROJECT_DIR, load_stage
from ops.cleanup import Clients, Names, Refused, cleanup
from tests.support.project_copy import make

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's


class Leftovers:
    """A stage's retained resources on the emulator, made as the stack makes them."""

    def __init__(self, moto: MotoServer, names: Names) -> None:
        self.names = names
        self.clients = Clients(lambda service: emulator_client(service, moto.url, REGION))
        users, audit, *jobs = names.tables
        self.clients.dynamodb.create_table(**create_table_kwargs(users), DeletionProtectionEnabled=True)
        self.clients.dynamodb.create_table(**create_audit_table_kwargs(audit), DeletionProtectionEnabled=True)
        for table in jobs:  # the bulk jobs' table, when the names have it (a deployed stage's do)
            self.clients.dynamodb.create_table(
                TableName=table,
                KeySchema=JOBS_KEY_SCHEMA,
                AttributeDefinitions=JOBS_ATTRIBUTES,
                BillingMode="PAY_PER_REQUEST",
                DeletionProtectionEnabled=True,
            )
        self.clients.s3.create_bucket(Bucket=names.bucket)
        self.clients.secrets.create_secret(Name=names.secret, SecretString="generated")
        self.pool_id = self.clients.cognito.create_user_pool(PoolName=names.pool, DeletionProtection="ACTIVE")[
            "UserPool"
        ]["Id"]

    def holding_data(self) -> None:
        users = self.names.tables[0]
        self.clients.dynamodb.put_item(TableName=users, Item={"userId": {"S": "u-1"}})
        self.clients.s3.put_object(Bucket=self.names.bucket, Key="avatars/u-1", Body=b"png")
        self.clients.cognito.admin_create_user(UserPoolId=self.pool_id, Username="someone@example.com")

    def existing(self) -> set[tuple[str, str]]:
        """(kind, name) of what is left (a stage's pool and users table share a name)."""
        tables = set(self.clients.dynamodb.list_tables()["TableNames"]) & set(self.names.tables)
        buckets = {b["Name"] for b in self.clients.s3.list_buckets()["Buckets"]} & {self.names.bucket}
        secrets = {s["Name"] for s in self.clients.secrets.list_secrets()["SecretList"]} & {self.names.secret}
        pools = {p["Name"] for p in self.clients.cognito.list_user_pools(MaxResults=60)["UserPools"]} & {
            self.names.pool
        }
        return (
            {("table", name) for name in tables}
            | {("bucket", name) for name in buckets}
            | {("secret", name) for name in secrets}
            | {("pool", name) for name in pools}
        )


@pytest.fixture
def leftovers(moto_server: MotoServer) -> Leftovers:
    # moto's backends live as long as the process: names of this test's own.
    stage = f"it{uuid.uuid4().hex[:6]}"
    names = Names(
        stacks=(f"users-api-{stage}", f"users-api-{stage}-base"),
        tables=(f"users-api-{stage}", f"users-api-{stage}-audit"),
        bucket=f"users-api-{stage}-avatars-{ACCOUNT}",
        secret=f"users-api/{stage}/cursor-secret",
        pool=f"users-api-{stage}",
    )
    return Leftovers(moto_server, names)


def run(leftovers: Leftovers, confirm: bool = False, data: bool = False) -> tuple[int, list[str]]:
    said: list[str] = []
    status = cleanup(leftovers.clients, leftovers.names, "it", confirm, data, said.append)
    return status, said


def test_without_confirm_it_lists_what_it_would_delete_and_deletes_nothing(leftovers: Leftovers) -> None:
    before = leftovers.existing()
    assert len(before) == 5
    status, said = run(leftovers)
    assert status == 0
    users, audit = leftovers.names.tables
    assert said[:5] == [
        f"{users} (DynamoDB table): empty: delete",
        f"{audit} (DynamoDB table): empty: delete",
        f"{leftovers.names.bucket} (S3 bucket): empty: delete",
        f"{leftovers.names.secret} (Secrets Manager secret): empty: delete",
        f"{leftovers.names.pool} {leftovers.pool_id} (Cognito user pool): empty: delete",
    ]
    assert said[-1] == "nothing deleted: CONFIRM=1 deletes the 5 marked delete"
    assert leftovers.existing() == before


def test_confirm_deletes_what_holds_nothing_and_keeps_what_holds_data_until_data_is_given(
    leftovers: Leftovers,
) -> None:
    leftovers.holding_data()
    users = leftovers.names.tables[0]
    status, said = run(leftovers, confirm=True)
    assert status == 1  # the stack still cannot be created
    assert f"{users} (DynamoDB table): holds items: kept (DATA=1 deletes it)" in said
    assert f"{leftovers.names.bucket} (S3 bucket): holds objects: kept (DATA=1 deletes it)" in said
    assert leftovers.existing() == {
        ("table", users),
        ("bucket", leftovers.names.bucket),
        ("pool", leftovers.names.pool),
    }
    # Deletion protection was turned off only on what was deleted.
    assert leftovers.clients.dynamodb.describe_table(TableName=users)["Table"]["DeletionProtectionEnabled"] is True

    status, said = run(leftovers, confirm=True, data=True)
    assert status == 0
    assert said[-1] == "stage it: nothing left behind; its stack can be created again"
    assert leftovers.existing() == set()
    assert run(leftovers) == (0, ["nothing of stage it is left behind: its stack can be created"])


def test_nothing_is_touched_while_a_stack_of_the_stage_is_live(leftovers: Leftovers) -> None:
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    leftovers.clients.cloudformation.create_stack(
        StackName=leftovers.names.stacks[1], TemplateBody=json.dumps(template)
    )
    before = leftovers.existing()
    with pytest.raises(Refused, match=f"the stack {leftovers.names.stacks[1]} is CREATE_COMPLETE: its resources are"):
        run(leftovers, confirm=True, data=True)
    assert leftovers.existing() == before


def test_make_cleanup_as_documented_against_the_emulator(moto_server: MotoServer) -> None:
    stage = load_stage("dev")
    names = Names.of(stage, ACCOUNT)
    made = Leftovers(moto_server, names)
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))},
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    listed = make(PROJECT_DIR, "-s", "cleanup", "STAGE=dev", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert lines[0] == "users-api-dev (DynamoDB table): empty: delete"
    assert lines[-1] == "nothing deleted: CONFIRM=1 deletes the 6 marked delete"
    assert len(made.existing()) == 6  # the users, audit and jobs tables, bucket, secret and pool
    deleted = make(PROJECT_DIR, "-s", "cleanup", "STAGE=dev", "CONFIRM=1", env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip().splitlines()[-1] == "stage dev: nothing left behind; its stack can be created again"
    assert made.existing() == set()


def test_make_cleanup_needs_the_stage_named() -> None:
    result = make(PROJECT_DIR, "-s", "cleanup")
    assert result.returncode != 0
    lines: list[Any] = [line for line in result.stderr.splitlines() if not line.startswith("make: ***")]
    assert lines == ["make cleanup: name the stage: make cleanup STAGE=dev|staging|prod"]
