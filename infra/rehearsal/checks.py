"""What each path must have left in the emulator, read through its APIs (boto3, fake credentials)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from chalicelib.adapters.table_schema import (
    AUDIT_KEY_SCHEMA,
    GLOBAL_SECONDARY_INDEXES,
    KEY_SCHEMA,
    STREAM_VIEW_TYPE,
    TTL_ATTRIBUTE,
)

REGION = "us-east-1"


class CheckFailed(AssertionError):
    pass


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


Client = Callable[[str], Any]


def emulator(endpoint: str) -> Client:
    def make(service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return make


def stack(aws: Client, name: str) -> dict[str, Any]:
    found: dict[str, Any] = aws("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return found


def outputs(aws: Client, name: str) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack(aws, name).get("Outputs") or []}


OUTPUT_SHAPES = {
    "ApiEndpoint": r"https://[a-z0-9]+\.execute-api\.us-east-1\.amazonaws\.com/api/",
    "UsersTableName": r"users-api-[a-z]+",
    "FunctionArn": r"arn:aws:lambda:us-east-1:\d{12}:function:users-api-[a-z]+",
    "UserPoolId": r"us-east-1_\w+",
    "UserPoolClientId": r"\w+",
    "UserPoolArn": r"arn:aws:cognito-idp:us-east-1:\d{12}:userpool/us-east-1_\w+",
    "AvatarBucketName": r"users-api-[a-z]+-avatars-\d{12}",
    "CursorSecretArn": r"arn:aws:secretsmanager:us-east-1:\d{12}:secret:users-api/[a-z]+/cursor-secret-\w+",
    "AlarmTopicArn": r"arn:aws:sns:us-east-1:\d{12}:users-api-[a-z]+-alarms",
    "AuditTableName": r"users-api-[a-z]+-audit",
    "EventBusName": r"users-api-[a-z]+-changes",
    "ChangeDeadLetterQueueUrl": r"https://sqs\.us-east-1\.amazonaws\.com/\d{12}/users-api-[a-z]+-changes-dlq",
    "UsersTableStreamArn": r"arn:aws:dynamodb:us-east-1:\d{12}:table/users-api-[a-z]+/stream/.+",
    "ApiKeyId": r"\w+",
}


def output_shapes(found: dict[str, str], names: list[str]) -> None:
    for name in names:
        expect(name in found, f"output {name} is missing (outputs: {sorted(found)})")
        expect(
            re.fullmatch(OUTPUT_SHAPES[name], found[name]) is not None,
            f"output {name} = {found[name]!r} is not shaped like {OUTPUT_SHAPES[name]}",
        )


def users_table(aws: Client, name: str) -> None:
    dynamodb = aws("dynamodb")
    table = dynamodb.describe_table(TableName=name)["Table"]
    expect(table["KeySchema"] == KEY_SCHEMA, f"{name}: key schema {table['KeySchema']}")
    indexes = {i["IndexName"]: i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", [])}
    expected = {i["IndexName"]: i["KeySchema"] for i in GLOBAL_SECONDARY_INDEXES}
    expect(indexes == expected, f"{name}: indexes {indexes}, expected {expected}")
    expect(table.get("StreamSpecification", {}).get("StreamViewType") == STREAM_VIEW_TYPE, f"{name}: stream")
    expect(table.get("DeletionProtectionEnabled") is True, f"{name}: deletion protection off")
    expect(table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST", f"{name}: not on demand")
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    expect(ttl.get("AttributeName") == TTL_ATTRIBUTE and ttl["TimeToLiveStatus"] == "ENABLED", f"{name}: TTL {ttl}")
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    pitr = backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
    expect(pitr == "ENABLED", f"{name}: point-in-time recovery {pitr}")


def audit_table(aws: Client, name: str) -> None:
    dynamodb = aws("dynamodb")
    table = dynamodb.describe_table(TableName=name)["Table"]
    expect(table["KeySchema"] == AUDIT_KEY_SCHEMA, f"{name}: key schema {table['KeySchema']}")
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    expect(ttl["TimeToLiveStatus"] == "ENABLED", f"{name}: TTL {ttl}")


def pool(aws: Client, pool_id: str, client_id: str, name: str) -> None:
    idp = aws("cognito-idp")
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    expect(described["Name"] == name, f"pool name {described['Name']}")
    expect(described.get("UsernameAttributes") == ["email"], "pool: sign-in is not by email")
    expect(described["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12, "pool: passwords shorter than 12")
    expect(described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True, "pool: self sign-up allowed")
    expect(described.get("DeletionProtection") == "ACTIVE", "pool: no deletion protection")
    app = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    expect("ALLOW_USER_PASSWORD_AUTH" in app.get("ExplicitAuthFlows", []), "client: no USER_PASSWORD_AUTH")
    expect("ClientSecret" not in app, "client: has a secret")
    groups = [g["GroupName"] for g in idp.list_groups(UserPoolId=pool_id)["Groups"]]
    expect(groups == ["admins"], f"pool groups {groups}")


def bucket(aws: Client, name: str, origin: str) -> None:
    s3 = aws("s3")
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    expect(all(block.values()) and len(block) == 4, f"{name}: public access block {block}")
    rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    expect(rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", f"{name}: encryption")
    cors = s3.get_bucket_cors(Bucket=name)["CORSRules"]
    expect([r["AllowedOrigins"] for r in cors] == [[origin]], f"{name}: CORS {cors}")
    policy = s3.get_bucket_policy(Bucket=name)["Policy"]
    expect('"aws:SecureTransport"' in policy, f"{name}: no TLS-only policy")
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    expect(any("AbortIncompleteMultipartUpload" in r for r in lifecycle), f"{name}: lifecycle {lifecycle}")
    ownership = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
    expect(ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}], f"{name}: ownership {ownership}")


def secret(aws: Client, arn: str) -> None:
    value = aws("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    expect(len(value) >= 32, "cursor secret shorter than 32 characters")


def exists(call: Callable[[], Any]) -> bool:
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError:
        return False
    return True


def functions_and_alias(aws: Client, api_function: str, consumer: str, stream_arn: str) -> None:
    awslambda = aws("lambda")
    for name in (api_function, consumer):
        expect(exists(partial(awslambda.get_function, FunctionName=name)), f"function {name} is missing")
    alias = awslambda.get_alias(FunctionName=api_function, Name="live")
    expect(alias["FunctionVersion"] not in ("", "$LATEST"), f"alias live points at {alias['FunctionVersion']}")
    # The stream's one mapping invokes the consumer's live alias (CodeDeploy moves it on a release).
    # moto records the version the alias names rather than the alias itself: either is accepted.
    mappings = awslambda.list_event_source_mappings(EventSourceArn=stream_arn)["EventSourceMappings"]
    targets = [m["FunctionArn"] for m in mappings]
    live = awslambda.get_alias(FunctionName=consumer, Name="live")["FunctionVersion"]
    expect(
        len(targets) == 1 and f":function:{consumer}:" in targets[0] and targets[0].rsplit(":", 1)[1] in ("live", live),
        f"the stream's mappings invoke {targets}, not {consumer}'s live alias (version {live})",
    )


def api(aws: Client, rest_api_id: str, api_key: bool) -> None:
    apigateway = aws("apigateway")
    stages = [s["stageName"] for s in apigateway.get_stages(restApiId=rest_api_id)["item"]]
    expect(stages == ["api"], f"API stages {stages}, expected only api")
    paths = {r["path"] for r in apigateway.get_resources(restApiId=rest_api_id, limit=500)["items"]}
    expect({"/hello", "/users", "/users/me", "/users/{userId}"} <= paths, f"API routes {sorted(paths)}")
    plans = apigateway.get_usage_plans()["items"]
    with_stage = [p for p in plans if any(s["apiId"] == rest_api_id for s in p.get("apiStages", []))]
    expect(bool(with_stage) == api_key, f"usage plans of the API: {with_stage}")
    if api_key:
        keys = apigateway.get_usage_plan_keys(usagePlanId=with_stage[0]["id"])["items"]
        expect(len(keys) >= 1, "the usage plan has no key")


def waf(aws: Client, rest_api_id: str) -> None:
    arn = f"arn:aws:apigateway:{REGION}::/restapis/{rest_api_id}/stages/api"
    acl = aws("wafv2").get_web_acl_for_resource(ResourceArn=arn).get("WebACL")
    expect(acl is not None, f"no web ACL on {arn}")


def gone(aws: Client, what: str, call: Callable[[], Any]) -> None:
    expect(not exists(call), f"{what} is still there after the teardown")


def still_there(aws: Client, what: str, call: Callable[[], Any]) -> None:
    expect(exists(call), f"{what} was deleted; the docs say it is kept")
