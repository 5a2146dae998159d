"""Each role may do exactly what its code does: every DynamoDB action the service and the history
route make and every S3 action the avatar store needs, run on moto and derived from the calls
themselves, every call the pre-traffic hook makes, and every call the change consumer makes, are
compared with each stage's policy files."""

from __future__ import annotations

import fnmatch
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse

from chalicelib.adapters.audit_log import DynamoAuditLog
from chalicelib.adapters.avatars import KEY_PREFIX, AvatarStore
from chalicelib.adapters.cognito import CognitoIdentityProvider
from chalicelib.adapters.dynamodb import DynamoUserRepository
from chalicelib.adapters.event_bus import EventBusPublisher
from chalicelib.adapters.idempotency_store import DynamoIdempotencyStore
from chalicelib.adapters.secret_store import read_secret
from chalicelib.adapters.stream_records import stream_change
from chalicelib.adapters.table_schema import LEGACY_LISTING_INDEX, SEARCH_INDEXES, create_audit_table_kwargs
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.domain.change_consumer import ChangeConsumer
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.errors import AvatarNotFound
from chalicelib.domain.history import History
from chalicelib.domain.idempotency import StoredResponse
from chalicelib.domain.models import ADMIN, MEMBER, REMOVE, NewUser, UserChanges
from chalicelib.domain.search import UserQuery
from chalicelib.domain.service import UserService
from chalicelib.traffic_hook import SUCCEEDED, run_stream_check
from chalicelib.traffic_hook import run as run_hook
from devstack import cognito_emulation
from infra.policies import (
    ACCOUNT_POOLS_ARN,
    CHANGES_DEPLOYMENT_GROUP,
    CHANGES_HOOK_FUNCTION,
    CONSUMER_FUNCTION,
    DEAD_LETTER_ACTIONS,
    HOOK_FUNCTION,
    IDENTITY_ACTIONS,
    POLICY_ACCOUNT,
    STREAM_ACTIONS,
    WORKER_FUNCTION,
    changes_hook_policy_document,
    consumer_policy_document,
    deployment_group_arn,
    hook_policy_document,
    policy_document,
    policy_path,
    rendered_files,
    worker_policy_document,
)
from infra.stages import DEPLOYED_STAGES, PROJECT_DIR, load_limits, load_stage
from tests.integration.conftest import TABLE
from tests.support.bulk_calls import api_job_calls
from tests.support.presigned import tiny_png
from tests.support.stream_records import record, trace, user
from tests.unit.fakes import FakeIdentityProvider

AUDIT = "users-it-audit"
JOBS = "users-jobs-it"

# IAM authorises each item of a TransactWriteItems request as its own action.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Delete": "DeleteItem",
    "Update": "UpdateItem",
    "ConditionCheck": "ConditionCheckItem",
}


class Recorder:
    """(IAM action, resource kind) for every DynamoDB request, from its API parameters: the users
    table ("table"), its index ("index/<name>") or the audit table ("audit"). `operations`: those
    on the users table, which its throttling alarm watches."""

    def __init__(self) -> None:
        self.grants: set[tuple[str, str]] = set()
        self.operations: set[str] = set()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "TransactWriteItems":
            for item in params["TransactItems"]:
                (kind, body), *_ = item.items()
                self._grant(_TRANSACT_ACTIONS[kind], body)
            self.operations.add(model.name)
        else:
            if params["TableName"] == TABLE:
                self.operations.add(model.name)
            self._grant(model.name, params)

    def _grant(self, action: str, params: dict[str, Any]) -> None:
        assert params["TableName"] in (TABLE, AUDIT, JOBS)
        if params["TableName"] in (AUDIT, JOBS):
            resource = "audit" if params["TableName"] == AUDIT else "jobs"
        else:
            resource = f"index/{params['IndexName']}" if "IndexName" in params else "table"
        self.grants.add((f"dynamodb:{action}", resource))


@pytest.fixture
def recorded(ddb: Any) -> Iterator[Recorder]:
    """Every service operation and idempotency-store call, through the real adapters, recorded."""
    recorder = Recorder()
    ddb.create_table(**create_audit_table_kwargs(AUDIT))
    ddb.meta.events.register("before-parameter-build.dynamodb", recorder)
    identities = FakeIdentityProvider()
    identities.seed("sub-1", "new@example.com")
    service = UserService(DynamoUserRepository(TABLE, client=ddb), CursorCodec(b"k" * 32), identities)
    ada = service.create_user(NewUser(name="Ada", email="ada@example.com", phone="+14155550100"))
    grace = service.create_user(NewUser(name="Grace", email="grace@example.com"))
    service.get_user(ada.user_id)
    # GET /users: every index (each sort, a q search by name and email), a next page, an email lookup.
    for query in (UserQuery(), UserQuery(sort="name"), UserQuery(q="gr", role="member")):
        _, cursor = service.list_users(query, 1, None, "admin-sub")
        service.list_users(query, 1, cursor, "admin-sub")
    service.list_users(UserQuery(email="grace@example.com"), 1, None, "admin-sub")
    service.update_user(ada.user_id, UserChanges(name="Ada L.", phone=REMOVE))
    service.update_user(ada.user_id, UserChanges(email="ada@lovelace.example"))
    service.delete_user(grace.user_id)
    service.put_profile("sub-1", UserChanges(name="New"))
    service.put_profile("sub-1", UserChanges(name="Newer"))
    # Idempotency-Key: claim, complete, replay, and a claim released after a failure.
    keys = DynamoIdempotencyStore(TABLE, client=ddb)
    keys.claim("r1", "fp", "t1", "w1", 1_700_000_000)
    keys.complete("r1", "t1", StoredResponse(201, "{}", {}), 1_700_000_001)
    keys.claim("r1", "fp", "t2", "w2", 1_700_000_002)
    keys.claim("r2", "fp", "t3", "w3", 1_700_000_003)
    keys.release("r2", "t3")
    # An unknown outcome: unlocked, then taken over by the retry.
    keys.claim("r3", "fp", "t4", "w4", 1_700_000_004)
    keys.unlock("r3", "t4")
    keys.claim("r3", "fp", "t5", "w5", 1_700_000_005)
    # GET /users/{id}/history, a page of it.
    History(DynamoAuditLog(AUDIT, ddb), CursorCodec(b"k" * 32)).page(ada.user_id, 10, None, "admin-sub")
    # The bulk job routes: start, read, page and cancel an import, take back one whose file could
    # not be stored; start and read an export.
    api_job_calls(ddb)
    ddb.meta.events.unregister("before-parameter-build.dynamodb", recorder)
    yield recorder


def _dynamodb_grants(document: dict[str, Any], table: str, audit: str, jobs: str = "") -> set[tuple[str, str]]:
    prefix, audit_arn = f"arn:aws:dynamodb:*:*:table/{table}", f"arn:aws:dynamodb:*:*:table/{audit}"
    jobs_arn = f"arn:aws:dynamodb:*:*:table/{jobs}"
    grants: set[tuple[str, str]] = set()
    for statement in document["Statement"]:
        actions = [a for a in statement["Action"] if a.startswith("dynamodb:")]
        if not actions:
            continue
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            if resource == audit_arn:
                kind = "audit"
            elif resource == jobs_arn:
                kind = "jobs"
            else:
                assert resource == prefix or resource.startswith(prefix + "/"), f"{resource} is not this stage's table"
                kind = resource.removeprefix(prefix).lstrip("/") or "table"
            grants |= {(action, kind) for action in actions}
    return grants


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_policy_grants_exactly_the_dynamodb_actions_the_code_makes(recorded: Recorder, name: str) -> None:
    stage = load_stage(name)
    committed = json.loads(open(policy_path(name)).read())
    # Beyond what the code does, only the previous release's Scan of its listing index, which its
    # version still makes while a release rolls out (infra/policies.py PREVIOUS_RELEASE_ACTIONS).
    previous = {("dynamodb:Scan", f"index/{LEGACY_LISTING_INDEX}")}
    grants = _dynamodb_grants(committed, stage.table_name, stage.audit_table_name, stage.jobs_table_name)
    assert grants == recorded.grants | previous
    assert ("dynamodb:Query", "audit") in recorded.grants
    # GET /users queries each search index and nothing else: this release never scans.
    indexes = {(action, kind) for action, kind in recorded.grants if kind.startswith("index/")}
    assert indexes == {("dynamodb:Query", f"index/{name}") for name in SEARCH_INDEXES}
    assert not any(action == "dynamodb:Scan" for action, _ in recorded.grants)


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_committed_policy_files_are_the_generated_ones(name: str) -> None:
    files = rendered_files(load_stage(name))
    assert set(files) == {
        policy_path(name),
        policy_path(name, HOOK_FUNCTION),
        policy_path(name, CHANGES_HOOK_FUNCTION),
        policy_path(name, CONSUMER_FUNCTION),
        policy_path(name, WORKER_FUNCTION),
    }
    for path, content in files.items():
        assert open(path).read() == content, "run `make policies`"


def test_each_function_names_its_own_policy_file() -> None:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    for name in DEPLOYED_STAGES:
        hook = config["stages"][name]["lambda_functions"][HOOK_FUNCTION]
        assert hook["iam_policy_file"] == f"policy-{name}-pre-traffic-hook.json"
        assert PROJECT_DIR / ".chalice" / hook["iam_policy_file"] == Path(policy_path(name, HOOK_FUNCTION))
        worker = config["stages"][name]["lambda_functions"][WORKER_FUNCTION]
        assert PROJECT_DIR / ".chalice" / worker["iam_policy_file"] == Path(policy_path(name, WORKER_FUNCTION))
        changes_hook = config["stages"][name]["lambda_functions"][CHANGES_HOOK_FUNCTION]
        assert changes_hook["iam_policy_file"] == f"policy-{name}-changes-pre-traffic-hook.json"
        assert PROJECT_DIR / ".chalice" / changes_hook["iam_policy_file"] == Path(
            policy_path(name, CHANGES_HOOK_FUNCTION)
        )
        consumer = config["stages"][name]["lambda_functions"][CONSUMER_FUNCTION]
        assert consumer["iam_policy_file"] == f"policy-{name}-user-changes.json"
        assert PROJECT_DIR / ".chalice" / consumer["iam_policy_file"] == Path(policy_path(name, CONSUMER_FUNCTION))


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_no_wildcard_data_access(name: str) -> None:
    stage = load_stage(name)
    documents = (policy_document(stage), consumer_policy_document(stage), worker_policy_document(stage))
    for statement in [statement for document in documents for statement in document["Statement"]]:
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


# --- S3 (avatars) ---------------------------------------------------------------------------

# The IAM action that authorises each S3 operation; HeadObject is authorised as GetObject.
_S3_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
}
AVATAR_BUCKET = "users-api-it-avatars"


class S3Recorder:
    """Wraps the avatar store's client: (IAM action, key) for every call it makes, and for every
    presigned request, which S3 authorises as its signer when a browser uses it (a POST as PutObject)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.grants: set[tuple[str, str]] = set()
        self.buckets: set[str] = set()

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
            self.grants.add((_S3_ACTIONS[operation], params["Key"]))
            self.buckets.add(params["Bucket"])
            return method(**kwargs)

        return recorded


@pytest.fixture
def avatar_calls(ddb: Any) -> S3Recorder:
    """Every avatar store operation on moto (ddb sets up credentials and mock_aws): upload, read, delete."""
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=AVATAR_BUCKET)
    recorder = S3Recorder(client)
    store = AvatarStore(AVATAR_BUCKET, recorder)
    user_id = "0b8a61c2-4f4e-4a43-9d1b-7f0f7f3e2a10"
    with pytest.raises(AvatarNotFound):
        store.download_url(user_id)
    form = store.presigned_upload(user_id, "image/png")
    posted = requests.post(form.url, data=form.fields, files={"file": ("a.png", tiny_png(), "image/png")}, timeout=10)
    assert posted.status_code == 204
    assert requests.get(store.download_url(user_id), timeout=10).content == tiny_png()
    store.delete(user_id)
    return recorder


def _s3_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in document["Statement"] if any(a.startswith("s3:") for a in s["Action"])]


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_policy_grants_exactly_the_s3_actions_the_code_makes(avatar_calls: S3Recorder, name: str) -> None:
    stage = load_stage(name)
    (statement,) = [
        s for s in _s3_statements(json.loads(open(policy_path(name)).read())) if s["Sid"] == "AvatarObjects"
    ]
    assert set(statement["Action"]) == {action for action, _ in avatar_calls.grants}
    assert set(statement["Action"]) == {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}
    # Only objects under the avatar prefix of this stage's bucket in the caller's own account.
    bucket = stage.avatar_bucket_name(POLICY_ACCOUNT)
    assert bucket == f"users-api-{name}-avatars-${{aws:PrincipalAccount}}"
    assert statement["Resource"] == f"arn:aws:s3:::{bucket}/{KEY_PREFIX}*"
    assert "Condition" not in statement


def test_every_key_the_code_touches_is_under_the_policys_prefix(avatar_calls: S3Recorder) -> None:
    assert avatar_calls.buckets == {AVATAR_BUCKET}
    assert avatar_calls.grants
    for _, key in avatar_calls.grants:
        assert fnmatch.fnmatchcase(key, f"{KEY_PREFIX}*"), key


# --- The pre-traffic hook ---------------------------------------------------------------------

# The IAM action that authorises each call the hook makes.
_HOOK_ACTIONS = {
    "Invoke": "lambda:InvokeFunction",
    "PutLifecycleEventHookExecutionStatus": "codedeploy:PutLifecycleEventHookExecutionStatus",
}
ACCOUNT = "123456789012"


class HookCalls:
    """Records (IAM action, request parameters) of every call the hook's real boto3 clients make,
    and answers them as a healthy new version and CodeDeploy would; nothing leaves the process."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-parameter-build", self.record)
        client.meta.events.register("before-call", self.answer)
        return client

    def record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        # A KeyError here: the hook makes a new call; give it an IAM action above and in the policy.
        self.calls.append((_HOOK_ACTIONS[model.name], dict(params)))

    def answer(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        if model.name == "Invoke" and "Records" in json.loads(params["body"]):
            payload = json.dumps({"batchItemFailures": []}).encode()
            return AWSResponse("https://lambda", 200, {}, None), {"StatusCode": 200, "Payload": io.BytesIO(payload)}
        if model.name == "Invoke":
            path = json.loads(params["body"])["path"]
            status, body = (200, {"message": "hi"}) if path == "/hello" else (401, {"error": "Unauthorized"})
            payload = json.dumps({"statusCode": status, "body": json.dumps(body)}).encode()
            return AWSResponse("https://lambda", 200, {}, None), {"StatusCode": 200, "Payload": io.BytesIO(payload)}
        return AWSResponse("https://codedeploy", 200, {}, None), {}


@pytest.fixture
def hook_calls(monkeypatch: pytest.MonkeyPatch) -> HookCalls:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    recorder = HookCalls()
    target = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:users-api-prod:7"
    event = {"DeploymentId": "d-EXAMPLE11", "LifecycleEventHookExecutionId": "hook-1"}
    functions = recorder.attach(boto3.client("lambda", region_name="us-east-1"))
    codedeploy = recorder.attach(boto3.client("codedeploy", region_name="us-east-1"))
    assert run_hook(event, functions, codedeploy, target, "api") == SUCCEEDED
    return recorder


def _matches(pattern: str, arn: str) -> bool:
    # IAM's wildcards: * any run of characters (":" included), ? one character.
    return fnmatch.fnmatchcase(arn, pattern)


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_hook_policy_grants_exactly_the_calls_the_hook_makes(hook_calls: HookCalls, name: str) -> None:
    stage = load_stage(name)
    committed = json.loads(open(policy_path(name, HOOK_FUNCTION)).read())
    assert committed == hook_policy_document(stage)
    granted = {action for statement in committed["Statement"] for action in statement["Action"]}
    made = {action for action, _ in hook_calls.calls}
    assert made == {"lambda:InvokeFunction", "codedeploy:PutLifecycleEventHookExecutionStatus"}
    # Beyond those two, only writing its own logs.
    assert granted - made == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert not any(statement["Resource"] == "*" for statement in committed["Statement"])


def test_hook_may_invoke_versions_of_its_stages_function_only(hook_calls: HookCalls) -> None:
    (statement,) = [
        s for s in hook_policy_document(load_stage("prod"))["Statement"] if "lambda:InvokeFunction" in s["Action"]
    ]
    invoked = [params["FunctionName"] for action, params in hook_calls.calls if action == "lambda:InvokeFunction"]
    assert len(invoked) == 2 and all(_matches(statement["Resource"], arn) for arn in invoked)
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:users-api-prod"
    assert not _matches(statement["Resource"], function)  # not the unpublished $LATEST
    assert not _matches(statement["Resource"], function.replace("prod", "staging") + ":7")
    assert not _matches(statement["Resource"], f"{function}-other:1")
    assert not _matches(
        statement["Resource"], f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:CodeDeployHook_users-api-prod"
    )


@pytest.fixture
def changes_hook_calls(monkeypatch: pytest.MonkeyPatch) -> HookCalls:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    recorder = HookCalls()
    target = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:users-api-prod-changes:7"
    event = {"DeploymentId": "d-EXAMPLE12", "LifecycleEventHookExecutionId": "hook-2"}
    functions = recorder.attach(boto3.client("lambda", region_name="us-east-1"))
    codedeploy = recorder.attach(boto3.client("codedeploy", region_name="us-east-1"))
    assert run_stream_check(event, functions, codedeploy, target) == SUCCEEDED
    return recorder


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_consumers_hook_policy_grants_exactly_its_calls_on_the_consumer_and_its_group(
    changes_hook_calls: HookCalls, name: str
) -> None:
    stage = load_stage(name)
    committed = json.loads(open(policy_path(name, CHANGES_HOOK_FUNCTION)).read())
    assert committed == changes_hook_policy_document(stage)
    granted = {action for statement in committed["Statement"] for action in statement["Action"]}
    made = {action for action, _ in changes_hook_calls.calls}
    assert made == {"lambda:InvokeFunction", "codedeploy:PutLifecycleEventHookExecutionStatus"}
    assert granted - made == {"logs:CreateLogStream", "logs:PutLogEvents"}
    resources = {s["Sid"]: s["Resource"] for s in committed["Statement"]}
    assert resources["ReportToItsDeploymentGroup"] == deployment_group_arn(stage, CHANGES_DEPLOYMENT_GROUP)
    if name == "prod":
        (invoked,) = [p["FunctionName"] for a, p in changes_hook_calls.calls if a == "lambda:InvokeFunction"]
        assert _matches(resources["InvokeConsumerVersions"], invoked)
        # Neither the API function nor the unpublished $LATEST of the consumer.
        api = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:users-api-prod:7"
        assert not _matches(resources["InvokeConsumerVersions"], api)
        assert not _matches(resources["InvokeConsumerVersions"], invoked.rsplit(":", 1)[0])


def test_hook_reports_to_its_stages_deployment_group_only(hook_calls: HookCalls) -> None:
    (report,) = [params for action, params in hook_calls.calls if action.startswith("codedeploy:")]
    assert report == {"deploymentId": "d-EXAMPLE11", "lifecycleEventHookExecutionId": "hook-1", "status": "Succeeded"}
    # IAM authorises the call on the deployment group the deployment belongs to.
    (statement,) = [s for s in hook_policy_document(load_stage("prod"))["Statement"] if s["Sid"].startswith("Report")]
    assert statement["Resource"] == deployment_group_arn(load_stage("prod"))
    assert _matches(
        statement["Resource"], f"arn:aws:codedeploy:us-east-1:{ACCOUNT}:deploymentgroup:users-api-prod/live"
    )
    assert not _matches(
        statement["Resource"], f"arn:aws:codedeploy:us-east-1:{ACCOUNT}:deploymentgroup:users-api-staging/live"
    )


# --- Cognito (sign-ins) ---------------------------------------------------------------------


@pytest.fixture
def identity_calls(ddb: Any) -> set[str]:
    """Every Cognito call the API's routes can make, through the service and the real adapter on
    moto (ddb sets up credentials and mock_aws): invite, promote, demote, disable, enable, email
    change, delete, and the first PUT /users/me of a sign-in made outside the API. The drift
    tool's calls are an operator's, not this role's."""
    cognito_emulation.apply()
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    pool = cognito.create_user_pool(PoolName="iam", UsernameAttributes=["email"])["UserPool"]["Id"]
    cognito.create_group(UserPoolId=pool, GroupName=ADMIN_GROUP)
    verified = [{"Name": "email", "Value": "console@example.com"}, {"Name": "email_verified", "Value": "true"}]
    console = cognito.admin_create_user(
        UserPoolId=pool, Username="console@example.com", UserAttributes=verified, MessageAction="SUPPRESS"
    )
    console_sub = next(a["Value"] for a in console["User"]["Attributes"] if a["Name"] == "sub")
    seen: set[str] = set()
    cognito.meta.events.register("before-call.cognito-identity-provider", lambda model, **_: seen.add(model.name))
    service = UserService(
        DynamoUserRepository(TABLE, client=ddb),
        CursorCodec(b"k" * 32),
        CognitoIdentityProvider(pool, cognito),
        sleep=lambda seconds: None,  # the calls matter here, not the wait before a role change reaches Cognito
    )
    service.put_profile(console_sub, UserChanges(name="Console"))
    boss = service.create_user(NewUser(name="Boss", email="boss@example.com", role=ADMIN))
    ada = service.create_user(NewUser(name="Ada", email="ada@example.com"))
    service.update_user(ada.user_id, UserChanges(role=ADMIN), actor=boss.user_id)
    service.update_user(ada.user_id, UserChanges(role=MEMBER, enabled=False), actor=boss.user_id)
    service.update_user(ada.user_id, UserChanges(enabled=True), actor=boss.user_id)
    service.update_user(ada.user_id, UserChanges(email="ada@lovelace.example"), actor=boss.user_id)
    service.delete_user(ada.user_id, actor=boss.user_id)
    return seen


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_policy_grants_exactly_the_cognito_actions_the_routes_make(identity_calls: set[str], name: str) -> None:
    (statement,) = [s for s in policy_document(load_stage(name))["Statement"] if s["Sid"] == "OwnUserPool"]
    assert set(statement["Action"]) == {f"cognito-idp:{operation}" for operation in identity_calls}
    assert set(statement["Action"]) == set(IDENTITY_ACTIONS)
    # The static file names the account's pools; the packaged stacks name the stage's own pool.
    assert statement["Resource"] == ACCOUNT_POOLS_ARN
    pool = {"Fn::GetAtt": ["UserPool", "Arn"]}
    (packaged,) = [s for s in policy_document(load_stage(name), pool)["Statement"] if s["Sid"] == "OwnUserPool"]
    assert packaged["Resource"] == pool


# --- The change consumer ----------------------------------------------------------------------

# The IAM action that authorises each call the consumer makes.
_CONSUMER_ACTIONS = {
    ("dynamodb", "GetItem"): "dynamodb:GetItem",
    ("dynamodb", "PutItem"): "dynamodb:PutItem",
    ("events", "PutEvents"): "events:PutEvents",
    ("s3", "DeleteObject"): "s3:DeleteObject",
}


@pytest.fixture
def consumer_calls(ddb: Any) -> set[tuple[str, str]]:
    """(IAM action, resource name) of every call the consumer makes on moto: an event published
    and audited, the same record again, and a trace expiring (its avatar deleted)."""
    calls: set[tuple[str, str]] = set()

    def recorder(service: str) -> Callable[..., None]:
        def record_call(model: Any, params: dict[str, Any], **_: Any) -> None:
            # A KeyError here: the consumer makes a new call; give it an IAM action above and in the policy.
            action = _CONSUMER_ACTIONS[(service, model.name)]
            resource = params.get("TableName") or params.get("Bucket") or params["Entries"][0]["EventBusName"]
            calls.add((action, resource))

        return record_call

    ddb.create_table(**create_audit_table_kwargs(AUDIT))
    events = boto3.client("events", region_name="us-east-1")
    events.create_event_bus(Name="bus-it")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=AVATAR_BUCKET)
    for client, service in ((ddb, "dynamodb"), (events, "events"), (s3, "s3")):
        client.meta.events.register(
            f"before-parameter-build.{client.meta.service_model.service_name}", recorder(service)
        )
    consumer = ChangeConsumer(
        DynamoAuditLog(AUDIT, ddb), EventBusPublisher("bus-it", events), AvatarStore(AVATAR_BUCKET, s3), stream_change
    )
    created = record("INSERT", new=user())
    assert consumer.handle([created, created, record("REMOVE", old=trace(), ttl=True)]) == {"batchItemFailures": []}
    return calls


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_consumer_policy_grants_exactly_its_calls_and_what_its_mapping_needs(
    consumer_calls: set[tuple[str, str]], name: str
) -> None:
    stage = load_stage(name)
    committed = json.loads(open(policy_path(name, CONSUMER_FUNCTION)).read())
    assert committed == consumer_policy_document(stage)
    by_action = {
        action: statement["Resource"] for statement in committed["Statement"] for action in statement["Action"]
    }
    made = {action for action, _ in consumer_calls}
    assert {resource for _, resource in consumer_calls} == {AUDIT, "bus-it", AVATAR_BUCKET}
    assert made == {"dynamodb:GetItem", "dynamodb:PutItem", "events:PutEvents", "s3:DeleteObject"}
    # Besides its own calls: what Lambda's event source mapping does with its role, and its logs.
    mapping = set(STREAM_ACTIONS) | set(DEAD_LETTER_ACTIONS)
    assert set(by_action) - made == mapping | {"logs:CreateLogStream", "logs:PutLogEvents"}
    # Each on this stage's own resource only, never the users table itself.
    assert (
        by_action["dynamodb:PutItem"]
        == by_action["dynamodb:GetItem"]
        == f"arn:aws:dynamodb:*:*:table/{stage.audit_table_name}"
    )
    assert by_action["events:PutEvents"] == f"arn:aws:events:*:*:event-bus/{stage.event_bus_name}"
    assert by_action["s3:DeleteObject"] == f"arn:aws:s3:::{stage.avatar_bucket_name(POLICY_ACCOUNT)}/{KEY_PREFIX}*"
    for action in STREAM_ACTIONS:
        assert by_action[action] == f"arn:aws:dynamodb:*:*:table/{stage.table_name}/stream/*"
    assert by_action["sqs:SendMessage"] == f"arn:aws:sqs:*:*:{stage.dead_letter_queue_name}"
    assert not any(statement["Resource"] == "*" for statement in committed["Statement"])
