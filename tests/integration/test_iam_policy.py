"""The Lambda role may do exactly what the code does: every DynamoDB action the service makes
on moto is derived from the requests themselves and compared with each stage's policy file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.cursor import CursorCodec
from chalicelib.dynamodb import DynamoUserRepository
from chalicelib.models import REMOVE, NewUser, UserChanges
from chalicelib.secret_store import read_secret
from chalicelib.service import UserService
from infra.policies import policy_document, policy_path
from infra.stages import DEPLOYED_STAGES, PROJECT_DIR, load_limits, load_stage
from tests.integration.conftest import TABLE

# IAM authorises each item of a TransactWriteItems request as its own action.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Delete": "DeleteItem",
    "Update": "UpdateItem",
    "ConditionCheck": "ConditionCheckItem",
}


class Recorder:
    """(IAM action, resource kind) for every DynamoDB request, from its API parameters."""

    def __init__(self) -> None:
        self.grants: set[tuple[str, str]] = set()
        self.operations: set[str] = set()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.operations.add(model.name)
        if model.name == "TransactWriteItems":
            for item in params["TransactItems"]:
                (kind, body), *_ = item.items()
                self._grant(_TRANSACT_ACTIONS[kind], body)
        else:
            self._grant(model.name, params)

    def _grant(self, action: str, params: dict[str, Any]) -> None:
        assert params["TableName"] == TABLE
        resource = f"index/{params['IndexName']}" if "IndexName" in params else "table"
        self.grants.add((f"dynamodb:{action}", resource))


@pytest.fixture
def recorded(ddb: Any) -> Iterator[Recorder]:
    """Every service operation, through the real repository, recorded."""
    recorder = Recorder()
    ddb.meta.events.register("before-parameter-build.dynamodb", recorder)
    service = UserService(DynamoUserRepository(TABLE, client=ddb), CursorCodec(b"k" * 32))
    ada = service.create_user(NewUser(name="Ada", email="ada@example.com", phone="+14155550100"))
    grace = service.create_user(NewUser(name="Grace", email="grace@example.com"))
    service.get_user(ada.user_id)
    _, cursor = service.list_users(1, None)
    service.list_users(1, cursor)
    service.update_user(ada.user_id, UserChanges(name="Ada L.", phone=REMOVE))
    service.update_user(ada.user_id, UserChanges(email="ada@lovelace.example"))
    service.delete_user(grace.user_id)
    service.put_profile("sub-1", "new@example.com", UserChanges(name="New"))
    service.put_profile("sub-1", "new@example.com", UserChanges(name="Newer"))
    ddb.meta.events.unregister("before-parameter-build.dynamodb", recorder)
    yield recorder


def _dynamodb_grants(document: dict[str, Any], table: str) -> set[tuple[str, str]]:
    prefix = f"arn:aws:dynamodb:*:*:table/{table}"
    grants: set[tuple[str, str]] = set()
    for statement in document["Statement"]:
        actions = [a for a in statement["Action"] if a.startswith("dynamodb:")]
        if not actions:
            continue
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            assert resource.startswith(prefix), f"{resource} is not this stage's table"
            kind = resource.removeprefix(prefix).lstrip("/") or "table"
            grants |= {(action, kind) for action in actions}
    return grants


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_policy_grants_exactly_the_dynamodb_actions_the_code_makes(recorded: Recorder, name: str) -> None:
    stage = load_stage(name)
    committed = json.loads(open(policy_path(name)).read())
    assert _dynamodb_grants(committed, stage.table_name) == recorded.grants


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_committed_policy_files_are_the_generated_ones(name: str) -> None:
    assert json.loads(open(policy_path(name)).read()) == policy_document(load_stage(name)), "run `make policies`"


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_no_wildcard_data_access(name: str) -> None:
    for statement in policy_document(load_stage(name))["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not any(action.endswith(":*") or action == "*" for action in statement["Action"])
        if statement["Resource"] == "*":
            # Only X-Ray, which has no resource-level permissions.
            assert all(action.startswith("xray:") for action in statement["Action"])


def test_each_deployed_stage_uses_its_own_policy_file() -> None:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    assert config["autogen_policy"] is False
    for name in DEPLOYED_STAGES:
        assert config["stages"][name]["iam_policy_file"] == f"policy-{name}.json"


def test_dynamodb_throttle_alarm_watches_every_operation_the_code_makes(recorded: Recorder) -> None:
    watched = set(load_limits()["alarms"]["dynamodb_throttled_requests"]["operations"])
    assert watched == recorded.operations


def test_the_secret_read_is_the_one_the_policy_allows(monkeypatch: pytest.MonkeyPatch, ddb: Any) -> None:
    """read_secret calls GetSecretValue on a secret whose ARN matches the policy's pattern."""
    stage = load_stage("prod")
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name=stage.cursor_secret_name, SecretString="s" * 64)["ARN"]
    seen: list[str] = []
    client.meta.events.register("before-call.secrets-manager", lambda model, **_: seen.append(model.name))
    assert read_secret(arn, client) == b"s" * 64
    assert seen == ["GetSecretValue"]
    statement = next(s for s in policy_document(stage)["Statement"] if s["Sid"] == "CursorSecret")
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]
    pattern = statement["Resource"].replace("*", "[^:]*").replace("?", ".")
    assert re.fullmatch(pattern, arn)
