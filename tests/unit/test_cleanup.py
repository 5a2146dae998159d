"""`make cleanup`'s decisions where the emulator cannot put a stage (a stack in ROLLBACK_COMPLETE, a
secret the API has read or one scheduled for deletion), with fake clients."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.cleanup import Clients, Names, Refused, cleanup

NAMES = Names(
    stacks=("users-api-prod", "users-api-prod-base"),
    tables=("users-api-prod", "users-api-prod-audit"),
    bucket="users-api-prod-avatars-123456789012",
    secret="users-api/prod/cursor-secret",
    pool="users-api-prod",
)


def missing(code: str, message: str = "missing") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Describe")


class Fake:
    """Every client at once: records each call; `answers` by operation."""

    def __init__(self, stacks: dict[str, str], secret: dict[str, Any] | None) -> None:
        self.stacks, self.secret = stacks, secret
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, operation: str) -> Any:
        if operation.startswith("_"):
            raise AttributeError(operation)

        def call(**kwargs: Any) -> Any:
            self.calls.append((operation, kwargs))
            return getattr(self, f"_{operation}", lambda **_: {})(**kwargs)

        return call

    def _describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName not in self.stacks:
            raise missing("ValidationError", f"Stack with id {StackName} does not exist")
        return {"Stacks": [{"StackStatus": self.stacks[StackName]}]}

    def get_waiter(self, name: str) -> Any:
        fake = self

        class Waiter:
            def wait(self, **kwargs: Any) -> None:
                fake.calls.append((f"wait:{name}", kwargs))

        return Waiter()

    def _describe_table(self, TableName: str) -> dict[str, Any]:
        raise missing("ResourceNotFoundException")

    def _head_bucket(self, Bucket: str) -> dict[str, Any]:
        raise missing("404")

    def _describe_secret(self, SecretId: str) -> dict[str, Any]:
        if self.secret is None:
            raise missing("ResourceNotFoundException")
        return self.secret

    def _list_user_pools(self, **kwargs: Any) -> dict[str, Any]:
        return {"UserPools": []}


def run(fake: Fake, confirm: bool = True, data: bool = False) -> tuple[int, list[str]]:
    said: list[str] = []
    return cleanup(Clients(lambda service: fake), NAMES, "prod", confirm, data, said.append), said


def test_a_failed_first_create_is_deleted_before_anything_else() -> None:
    fake = Fake({"users-api-prod": "ROLLBACK_COMPLETE"}, {"Name": NAMES.secret})
    status, said = run(fake)
    assert status == 0
    assert said[0] == "users-api-prod (CloudFormation stack, a failed first create): empty: delete"
    deletes = [(op, kw) for op, kw in fake.calls if op.startswith(("delete", "wait"))]
    assert deletes == [
        ("delete_stack", {"StackName": "users-api-prod"}),
        ("wait:stack_delete_complete", {"StackName": "users-api-prod"}),
        ("delete_secret", {"SecretId": NAMES.secret, "ForceDeleteWithoutRecovery": True}),
    ]


@pytest.mark.parametrize(
    "status", ["CREATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_IN_PROGRESS", "DELETE_FAILED"]
)
def test_a_live_or_half_deleted_stack_refuses_everything(status: str) -> None:
    fake = Fake({"users-api-prod-base": status}, {"Name": NAMES.secret})
    with pytest.raises(Refused, match=f"users-api-prod-base is {status}"):
        run(fake, data=True)
    assert not [op for op, _ in fake.calls if op.startswith("delete")]


def test_a_secret_the_api_has_read_holds_data() -> None:
    fake = Fake({}, {"Name": NAMES.secret, "LastAccessedDate": datetime(2025, 1, 1, tzinfo=UTC)})
    status, said = run(fake)
    assert status == 1
    assert said[0] == (
        f"{NAMES.secret} (Secrets Manager secret): read by the API (list cursors signed with it may be in use): "
        "kept (DATA=1 deletes it)"
    )
    assert not [op for op, _ in fake.calls if op == "delete_secret"]


def test_a_secret_scheduled_for_deletion_is_restored_then_deleted_at_once() -> None:
    fake = Fake({}, {"Name": NAMES.secret, "DeletedDate": datetime(2025, 1, 1, tzinfo=UTC)})
    status, said = run(fake)
    assert status == 0
    assert "scheduled for deletion: its name stays taken until then" in said[0]
    assert [op for op, _ in fake.calls if op.endswith("_secret") and op != "describe_secret"] == [
        "restore_secret",
        "delete_secret",
    ]


def test_an_aws_error_other_than_not_found_is_not_taken_for_absence() -> None:
    class Denied(Fake):
        def _describe_stacks(self, StackName: str) -> dict[str, Any]:
            raise missing("AccessDenied", "not authorized")

    with pytest.raises(ClientError):
        run(Denied({}, None))
