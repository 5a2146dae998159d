"""`make cleanup STAGE=...`: what a failed or deleted CloudFormation stack of a stage left behind, so
that the stack can be created again.

The stack keeps what holds data when it is deleted or its first create rolls back (DeletionPolicy
Retain): the users, audit and bulk jobs tables, the avatar bucket, the cursor secret and the user pool. Their
names are fixed (the role policies, .chalice/config.json and the operators' tools name them), so a
new create of the stage stops at the first of them with "already exists". This lists each one that
exists, with what it holds, and what it would do about it; it deletes only with CONFIRM=1, and what
holds data only with DATA=1 as well:

- a table holds data when it has an item; a bucket when it has an object; a pool when it has a user;
  the secret when it was ever read (Secrets Manager's LastAccessedDate: list cursors the API signed
  with it may still be in clients' hands). A secret nobody read, an empty table, bucket or pool
  hold nothing a failed create did not just make.
- a stack of the stage in ROLLBACK_COMPLETE (a first create that failed) is deleted too: CloudFormation
  cannot update it, only create it again once it is gone.

It refuses while a stack of the stage (the CloudFormation stack, or the `chalice deploy` path's base
stack) is in any other state: those resources are in use. Terraform needs none of this: a failed
apply leaves its resources in the state, and the next apply carries on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.stages import Stage

# Stack states in which the stage's retained resources belong to nobody.
GONE = {"DELETE_COMPLETE"}
FAILED_CREATE = "ROLLBACK_COMPLETE"


class Refused(Exception):
    """Cleanup would touch what a live stack uses: one line, nothing deleted."""


@dataclass(frozen=True)
class Names:
    """What the stage's stacks are and retain, by name."""

    stacks: tuple[str, ...]
    tables: tuple[str, ...]
    bucket: str
    secret: str
    pool: str

    @classmethod
    def of(cls, stage: Stage, account: str) -> Names:
        return cls(
            stacks=(stage.api_name, f"{stage.api_name}-base"),
            tables=(stage.table_name, stage.audit_table_name, stage.jobs_table_name),
            bucket=stage.avatar_bucket_name(account),
            secret=stage.cursor_secret_name,
            pool=stage.user_pool_name,
        )


@dataclass
class Leftover:
    kind: str
    name: str
    holds: str  # what it holds, said; "" when nothing
    delete: Callable[[], None]

    @property
    def holds_data(self) -> bool:
        return bool(self.holds)

    def line(self, data: bool) -> str:
        if not self.holds_data:
            return f"{self.name} ({self.kind}): empty: delete"
        action = "delete" if data else "kept (DATA=1 deletes it)"
        return f"{self.name} ({self.kind}): {self.holds}: {action}"


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class Clients:
    """The AWS clients cleanup needs (boto3's, or fakes in tests)."""

    def __init__(self, make: Callable[[str], Any]):
        self.cloudformation = make("cloudformation")
        self.dynamodb = make("dynamodb")
        self.s3 = make("s3")
        self.secrets = make("secretsmanager")
        self.cognito = make("cognito-idp")


def _stack_status(cloudformation: Any, name: str) -> str | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except Exception as exc:
        if _code(exc) == "ValidationError" and "does not exist" in str(exc):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def _stacks(clients: Clients, names: Names) -> list[Leftover]:
    found = []
    for name in names.stacks:
        status = _stack_status(clients.cloudformation, name)
        if status is None or status in GONE:
            continue
        if status != FAILED_CREATE:
            raise Refused(
                f"the stack {name} is {status}: its resources are in use. Cleanup is for a stage whose stack "
                "failed to create (ROLLBACK_COMPLETE) or was deleted"
            )

        def delete(stack: str = name) -> None:
            clients.cloudformation.delete_stack(StackName=stack)
            clients.cloudformation.get_waiter("stack_delete_complete").wait(StackName=stack)

        found.append(Leftover("CloudFormation stack, a failed first create", name, "", delete))
    return found


def _tables(clients: Clients, names: Names) -> list[Leftover]:
    found = []
    for table in names.tables:
        try:
            clients.dynamodb.describe_table(TableName=table)
        except Exception as exc:
            if _code(exc) == "ResourceNotFoundException":
                continue
            raise
        page = clients.dynamodb.scan(TableName=table, Limit=1, Select="COUNT", ConsistentRead=True)
        holds = "holds items" if page.get("Count", 0) or page.get("LastEvaluatedKey") else ""

        def delete(name: str = table) -> None:
            # Retained tables are deletion-protected (infra/cloudformation.py): turned off first.
            clients.dynamodb.update_table(TableName=name, DeletionProtectionEnabled=False)
            clients.dynamodb.delete_table(TableName=name)

        found.append(Leftover("DynamoDB table", table, holds, delete))
    return found


def _bucket(clients: Clients, names: Names) -> list[Leftover]:
    bucket = names.bucket
    try:
        clients.s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        if _code(exc) in {"404", "NoSuchBucket", "NotFound"}:
            return []
        raise
    holds = "holds objects" if clients.s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("KeyCount", 0) else ""

    def delete() -> None:
        # Unversioned (infra/cloudformation.py): deleting each key deletes the object.
        while keys := [
            {"Key": entry["Key"]} for entry in clients.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        ]:
            clients.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        clients.s3.delete_bucket(Bucket=bucket)

    return [Leftover("S3 bucket", bucket, holds, delete)]


def _secret(clients: Clients, names: Names) -> list[Leftover]:
    try:
        secret = clients.secrets.describe_secret(SecretId=names.secret)
    except Exception as exc:
        if _code(exc) == "ResourceNotFoundException":
            return []
        raise
    holds = "read by the API (list cursors signed with it may be in use)" if secret.get("LastAccessedDate") else ""
    kind = "Secrets Manager secret"
    if secret.get("DeletedDate"):
        kind += ", scheduled for deletion: its name stays taken until then"

    def delete() -> None:
        if secret.get("DeletedDate"):
            clients.secrets.restore_secret(SecretId=names.secret)
        # At once: a scheduled deletion would keep the name taken for up to 30 days.
        clients.secrets.delete_secret(SecretId=names.secret, ForceDeleteWithoutRecovery=True)

    return [Leftover(kind, names.secret, holds, delete)]


def _pools(clients: Clients, names: Names) -> list[Leftover]:
    found = []
    kwargs: dict[str, Any] = {"MaxResults": 60}
    while True:
        page = clients.cognito.list_user_pools(**kwargs)
        for pool in page.get("UserPools", []):
            if pool["Name"] != names.pool:
                continue
            pool_id = str(pool["Id"])
            users = clients.cognito.list_users(UserPoolId=pool_id, Limit=1).get("Users", [])

            def delete(pool_id: str = pool_id) -> None:
                # Deletion protection is on (infra/cloudformation.py); the pool is deleted right after.
                clients.cognito.update_user_pool(UserPoolId=pool_id, DeletionProtection="INACTIVE")
                clients.cognito.delete_user_pool(UserPoolId=pool_id)

            found.append(Leftover("Cognito user pool", f"{names.pool} {pool_id}", "has users" if users else "", delete))
        if not page.get("NextToken"):
            return found
        kwargs["NextToken"] = page["NextToken"]


def leftovers(clients: Clients, names: Names) -> list[Leftover]:
    """Everything the stage's stacks left behind, stacks first (Refused while one is live)."""
    return [
        *_stacks(clients, names),
        *_tables(clients, names),
        *_bucket(clients, names),
        *_secret(clients, names),
        *_pools(clients, names),
    ]


def cleanup(
    clients: Clients, names: Names, stage: str, confirm: bool, data: bool, say: Callable[[str], None] = print
) -> int:
    found = leftovers(clients, names)
    if not found:
        say(f"nothing of stage {stage} is left behind: its stack can be created")
        return 0
    for leftover in found:
        say(leftover.line(data))
    chosen = [leftover for leftover in found if data or not leftover.holds_data]
    kept = [leftover for leftover in found if leftover not in chosen]
    if not confirm:
        say(
            f"nothing deleted: CONFIRM=1 deletes the {len(chosen)} marked delete"
            + (f"; {len(kept)} hold data (CONFIRM=1 DATA=1 deletes them too)" if kept else "")
        )
        return 0
    for leftover in chosen:
        leftover.delete()
        say(f"deleted {leftover.name} ({leftover.kind})")
    if kept:
        say(f"kept {len(kept)} that hold data: the stack cannot be created while they exist (DATA=1 deletes them)")
        return 1
    say(f"stage {stage}: nothing left behind; its stack can be created again")
    return 0


def main(stage: Stage, confirm: bool, data: bool) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        clients = Clients(boto3.client)
        account = str(boto3.client("sts").get_caller_identity()["Account"])
        sys.exit(cleanup(clients, Names.of(stage, account), stage.name, confirm, data))
    except Refused as exc:
        sys.exit(f"make cleanup: {exc}")
    except ClientError as exc:
        error = exc.response.get("Error", {})
        sys.exit(f"make cleanup: AWS answered {error.get('Code')}: {error.get('Message')} (nothing more was done)")
    except BotoCoreError as exc:
        sys.exit(f"make cleanup: {exc} (nothing more was done)")
