"""Properties of the CloudFormation that `make package` emits (Chalice's template merged with ours).

These read the real `chalice package --merge-template` output for each stage; `make lint-infra`
runs cfn-lint and checkov on the same files.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.table_schema import (
    ATTRIBUTE_DEFINITIONS,
    AUDIT_KEY_SCHEMA,
    BY_CREATED_INDEX,
    FINAL_STEP,
    GLOBAL_SECONDARY_INDEXES,
    KEY_SCHEMA,
    LEGACY_LISTING_INDEX,
    SEARCH_INDEXES,
    time_to_live_kwargs,
)
from infra.cloudformation import base_template, merge_template
from infra.invitation import invitation
from infra.packaging import PACKAGING_POOL_ARN, package_cloudformation
from infra.policies import POLICY_ACCOUNT, avatar_objects_arn, consumer_policy_document, policy_document
from infra.stages import DEPLOYED_STAGES, load_limits, load_stage
from ops.release_version import PATTERN as RELEASE_VERSION_PATTERN
from tests.support.cache_headers import public_max_age

Template = dict[str, Any]


@pytest.fixture(scope="module")
def templates(sam_files: dict[str, Path]) -> dict[str, Template]:
    return {name: json.loads(sam.read_text()) for name, sam in sam_files.items()}


@pytest.fixture(scope="module")
def prod(templates: dict[str, Template]) -> Template:
    return templates["prod"]


def resources_of(template: Template, kind: str) -> dict[str, Template]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def props(template: Template, name: str) -> Template:
    return dict(template["Resources"][name]["Properties"])


def method_settings(template: Template) -> dict[tuple[str, str], Template]:
    return {(s["ResourcePath"], s["HttpMethod"]): s for s in props(template, "RestAPI")["MethodSettings"]}


def swagger(template: Template) -> Template:
    return dict(props(template, "RestAPI")["DefinitionBody"])


def proxy_methods(template: Template) -> list[tuple[str, str, Template]]:
    return [
        (path, method, spec)
        for path, methods in swagger(template)["paths"].items()
        for method, spec in methods.items()
        if spec["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    ]


def test_the_package_holds_the_template_and_a_small_zip(tmp_path: Path) -> None:
    sam = package_cloudformation(load_stage("dev"), tmp_path / "dev")
    zip_size = (tmp_path / "dev" / "deployment.zip").stat().st_size
    assert sam.name == "sam.json"
    assert 0 < zip_size < 1_000_000


# --- Lambda ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_function_settings(templates: dict[str, Template], name: str) -> None:
    function = props(templates[name], "APIHandler")
    assert function["Timeout"] < 29  # API Gateway's integration limit
    assert function["MemorySize"] == 512
    assert function["Tracing"] == "Active"
    assert function["FunctionName"] == f"users-api-{name}"
    assert function["AutoPublishAlias"] == "live"
    assert function["Tags"]["environment"] == name
    env = function["Environment"]["Variables"]
    assert env["STAGE"] == name
    assert env["TABLE_NAME"] == f"users-api-{name}"
    assert env["USER_POOL_ID"] == {"Ref": "UserPool"}
    assert env["USER_POOL_CLIENT_ID"] == {"Ref": "UserPoolClient"}
    assert env["CURSOR_SECRET_ARN"] == {"Ref": "CursorSecret"}
    assert env["AVATAR_BUCKET"] == {"Ref": "AvatarBucket"}
    assert "CURSOR_SECRET" not in env
    assert env["CORS_ALLOW_ORIGIN"].startswith("https://")


def test_function_log_group_has_the_functions_name_and_a_retention(templates: dict[str, Template]) -> None:
    for name, template in templates.items():
        group = props(template, "ApiHandlerLogGroup")
        assert group["LogGroupName"] == f"/aws/lambda/users-api-{name}"
        assert group["RetentionInDays"] == {"dev": 14, "staging": 30, "prod": 90}[name]
        assert template["Resources"]["APIHandler"]["DependsOn"] == ["ApiHandlerLogGroup"]


def test_provisioned_concurrency_is_off_by_default_and_on_the_alias_when_set(prod: Template) -> None:
    assert prod["Parameters"]["ProvisionedConcurrency"]["Default"] == 0
    config = props(prod, "APIHandler")["ProvisionedConcurrencyConfig"]
    condition, when_on, when_off = config["Fn::If"]
    assert condition == "HasProvisionedConcurrency"
    assert when_on == {"ProvisionedConcurrentExecutions": {"Ref": "ProvisionedConcurrency"}}
    assert when_off == {"Ref": "AWS::NoValue"}


def test_api_gateway_invokes_the_alias(prod: Template) -> None:
    routes = proxy_methods(prod)
    assert len(routes) == 22  # 16 user routes (issue 21 added four) and 6 of bulk jobs
    for _, _, spec in routes:
        uri = spec["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        assert uri[1] == {"Alias": {"Ref": "APIHandler.Alias"}}
        assert "${Alias}" in uri[0]
    assert props(prod, "APIHandlerInvokePermission")["FunctionName"] == {"Ref": "APIHandler.Alias"}


def test_role_policy_is_the_stage_policy_file_naming_this_stacks_pool(templates: dict[str, Template]) -> None:
    pool = {"Fn::GetAtt": ["UserPool", "Arn"]}
    for name, template in templates.items():
        (policy,) = props(template, "ApiHandlerRole")["Policies"]
        *statements, mail = policy["PolicyDocument"]["Statement"]
        expected = policy_document(replace(load_stage(name), ses_identity_arn=""), pool)
        assert {**policy["PolicyDocument"], "Statement": statements} == expected
        (cognito,) = [s for s in statements if s["Sid"] == "OwnUserPool"]
        assert cognito["Resource"] == pool  # not every pool of the account, as the static file must
        # Sending the email-change code: only with the SES identity the stack is given, and only it.
        condition, granted, otherwise = mail["Fn::If"]
        assert (condition, otherwise) == ("SendsMailWithSes", {"Ref": "AWS::NoValue"})
        assert granted == {
            "Sid": "SendEmailChangeCodes",
            "Effect": "Allow",
            "Action": ["ses:SendEmail"],
            "Resource": {"Ref": "SesIdentityArn"},
        }
        variables = props(template, "APIHandler")["Environment"]["Variables"]
        assert variables["MAIL_FROM"] == {"Fn::If": ["HasEmailFrom", {"Ref": "EmailFrom"}, ""]}


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_pool_sends_with_cognitos_own_email_unless_an_ses_identity_is_given(
    templates: dict[str, Template], name: str
) -> None:
    """Cognito allows a custom invitation email only with SES (EmailSendingAccount DEVELOPER): by
    default the pool uses Cognito's own email without a custom message, so it deploys anywhere;
    the SesIdentityArn parameter (default: the stage's setting) switches to SES and our invitation."""
    template = templates[name]
    pool = props(template, "UserPool")
    config = pool["AdminCreateUserConfig"]
    assert config["AllowAdminCreateUserOnly"] is True
    assert config["InviteMessageTemplate"] == {
        "Fn::If": ["SendsMailWithSes", invitation(load_limits()), {"Ref": "AWS::NoValue"}]
    }
    assert pool["EmailConfiguration"] == {
        "Fn::If": [
            "SendsMailWithSes",
            {
                "EmailSendingAccount": "DEVELOPER",
                "SourceArn": {"Ref": "SesIdentityArn"},
                "From": {"Fn::If": ["HasEmailFrom", {"Ref": "EmailFrom"}, {"Ref": "AWS::NoValue"}]},
            },
            {"EmailSendingAccount": "COGNITO_DEFAULT"},
        ]
    }
    assert template["Parameters"]["SesIdentityArn"]["Default"] == load_stage(name).ses_identity_arn == ""
    assert template["Conditions"]["SendsMailWithSes"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SesIdentityArn"}, ""]}]}
    pattern = re.compile(template["Parameters"]["SesIdentityArn"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("arn:aws:ses:eu-west-1:123456789012:identity/example.com")
    assert not pattern.fullmatch("no-reply@example.com")


def test_the_invitation_says_the_validity_the_pool_gives() -> None:
    """One source: the text says how long the temporary password lasts from the pool's own number."""
    limits = load_limits()
    message = invitation(limits)["EmailMessage"]
    days = limits["password_policy"]["TemporaryPasswordValidityDays"]
    assert f"expires in {days} days." in message
    assert not re.search(r"\d+ days?", limits["invitation"]["email_message"])  # no number of its own
    # Cognito refuses an invitation template without both placeholders.
    assert "{username}" in message and "{####}" in message
    assert invitation({**limits, "password_policy": {"TemporaryPasswordValidityDays": 1}})["EmailMessage"].endswith(
        "expires in 1 day."
    )


def test_the_chalice_deploy_base_stack_takes_the_same_email_settings() -> None:
    base = base_template(load_stage("dev"))
    assert set(base["Parameters"]) == {"SesIdentityArn", "EmailFrom"}
    assert set(base["Conditions"]) == {"SendsMailWithSes", "HasEmailFrom"}
    assert base["Resources"]["UserPool"]["Properties"]["EmailConfiguration"]["Fn::If"][0] == "SendsMailWithSes"


# --- Data and identity ----------------------------------------------------------------------


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_table(templates: dict[str, Template], name: str) -> None:
    table = templates[name]["Resources"]["UsersTable"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    p = table["Properties"]
    assert p["TableName"] == f"users-api-{name}"
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert (p["KeySchema"], p["AttributeDefinitions"], p["GlobalSecondaryIndexes"]) == (
        KEY_SCHEMA,
        ATTRIBUTE_DEFINITIONS,
        GLOBAL_SECONDARY_INDEXES,
    )
    assert p["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert p["TimeToLiveSpecification"] == time_to_live_kwargs("t")["TimeToLiveSpecification"]
    assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert p["SSESpecification"] == {"SSEEnabled": True}
    assert p["DeletionProtectionEnabled"] is True
    assert {"Key": "environment", "Value": name} in p["Tags"]


def test_user_pool_client_and_group(prod: Template) -> None:
    pool = prod["Resources"]["UserPool"]
    assert pool["DeletionPolicy"] == "Retain"
    p = pool["Properties"]
    assert p["UserPoolName"] == "users-api-prod"
    assert p["UsernameAttributes"] == ["email"]
    assert p["AutoVerifiedAttributes"] == ["email"]
    assert p["Policies"]["PasswordPolicy"] | {"TemporaryPasswordValidityDays": 0} == {
        "MinimumLength": 12,
        "RequireUppercase": True,
        "RequireLowercase": True,
        "RequireNumbers": True,
        "RequireSymbols": True,
        "TemporaryPasswordValidityDays": 0,
    }
    assert p["DeletionProtection"] == "ACTIVE"
    client = props(prod, "UserPoolClient")
    assert client["GenerateSecret"] is False
    assert sorted(client["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]
    assert client["ReadAttributes"] == ["email", "email_verified"]
    assert props(prod, "AdminsGroup")["GroupName"] == "admins"


def test_authorizer_trusts_the_pool_of_this_stack(prod: Template) -> None:
    authorizer = swagger(prod)["securityDefinitions"]["CognitoUserPool"]["x-amazon-apigateway-authorizer"]
    assert authorizer["providerARNs"] == [{"Fn::GetAtt": ["UserPool", "Arn"]}]
    assert "userpool/unset" not in json.dumps(prod)
    assert PACKAGING_POOL_ARN not in json.dumps(prod)


def test_cursor_secret_is_generated_never_written(prod: Template) -> None:
    # Kept with the stack's data: a deleted secret's name stays taken while its deletion is pending.
    resource = prod["Resources"]["CursorSecret"]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    secret = props(prod, "CursorSecret")
    assert secret["Name"] == "users-api/prod/cursor-secret"
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretString" not in secret
    assert not re.search(r"CURSOR_SECRET\"\s*:", json.dumps(prod))


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_avatar_bucket_is_private_encrypted_unversioned_and_open_to_the_stage_origin_only(
    templates: dict[str, Template], name: str
) -> None:
    stage = load_stage(name)
    bucket = templates[name]["Resources"]["AvatarBucket"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    p = bucket["Properties"]
    # The name the role policy grants, with the policy variable replaced by this account.
    assert p["BucketName"] == {"Fn::Sub": f"users-api-{name}-avatars-${{AWS::AccountId}}"}
    assert avatar_objects_arn(stage).replace(POLICY_ACCOUNT, "${AWS::AccountId}") == (
        f"arn:aws:s3:::{p['BucketName']['Fn::Sub']}/avatars/*"
    )
    assert p["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert p["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (encryption,) = p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    # Unversioned: a deleted avatar must not live on as a noncurrent version.
    assert "VersioningConfiguration" not in p
    (cors,) = p["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedOrigins"] == [stage.cors_origin] and stage.cors_origin.startswith("https://")
    assert sorted(cors["AllowedMethods"]) == ["GET", "POST"]
    # The bulk jobs' rules, for their prefixes, are tested in tests/infra/test_bulk_jobs_infra.py.
    (rule,) = [r for r in p["LifecycleConfiguration"]["Rules"] if "Prefix" not in r]
    assert rule["Status"] == "Enabled"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert {"Key": "environment", "Value": name} in p["Tags"]


def test_avatar_bucket_refuses_anything_but_tls_1_2_or_later(prod: Template) -> None:
    policy = props(prod, "AvatarBucketPolicy")
    assert policy["Bucket"] == {"Ref": "AvatarBucket"}
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {"TlsOnly", "Tls12OrLater"}
    for statement in statements.values():
        assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "s3:*")
        assert statement["Resource"] == [
            {"Fn::GetAtt": ["AvatarBucket", "Arn"]},
            {"Fn::Sub": "${AvatarBucket.Arn}/*"},
        ]
    assert statements["TlsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statements["Tls12OrLater"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
    assert not any(s["Effect"] == "Allow" for s in statements.values())


def test_the_chalice_deploy_base_template_has_the_avatar_bucket_too(prod: Template) -> None:
    base = base_template(load_stage("prod"))
    assert base["Resources"]["AvatarBucket"] == prod["Resources"]["AvatarBucket"]
    assert base["Resources"]["AvatarBucketPolicy"] == prod["Resources"]["AvatarBucketPolicy"]
    assert base["Outputs"]["AvatarBucketName"]["Value"] == {"Ref": "AvatarBucket"}
    assert "AVATAR_BUCKET" in base["Outputs"]["AvatarBucketName"]["Description"]


# --- API stage --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_stage_throttling_metrics_and_tracing(templates: dict[str, Template], name: str) -> None:
    api = props(templates[name], "RestAPI")
    assert api["TracingEnabled"] is True
    assert api["EndpointConfiguration"] == "REGIONAL"
    assert api["Name"] == f"users-api-{name}"
    for setting in api["MethodSettings"]:
        assert (setting["ThrottlingBurstLimit"], setting["ThrottlingRateLimit"]) == (100, 50)
        assert setting["MetricsEnabled"] is True
        assert setting["DataTraceEnabled"] is False  # would log bodies


def test_access_logs_are_json_with_the_guides_fields_kept_30_days(prod: Template) -> None:
    setting = props(prod, "RestAPI")["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(setting["Format"])
    assert set(fields) == {
        "requestId",
        "ip",
        "caller",
        "user",
        "requestTime",
        "httpMethod",
        "resourcePath",
        "status",
        "protocol",
        "responseLength",
    }
    assert all(value.startswith("$context.") for value in fields.values())
    assert props(prod, "ApiAccessLogGroup")["RetentionInDays"] == 30
    execution = props(prod, "ApiExecutionLogGroup")
    assert execution["LogGroupName"] == {"Fn::Sub": "API-Gateway-Execution-Logs_${RestAPI}/api"}
    assert execution["RetentionInDays"] == 30
    assert props(prod, "ApiGatewayAccount")["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}


def test_cache_is_on_only_for_responses_that_are_the_same_for_every_caller(prod: Template) -> None:
    api = props(prod, "RestAPI")
    assert api["CacheClusterEnabled"] is True
    assert api["CacheClusterSize"] == "0.5"
    settings = method_settings(prod)
    assert settings[("/*", "*")]["CachingEnabled"] is False
    cached = {key: s for key, s in settings.items() if s["CachingEnabled"]}
    assert set(cached) == {("/~1hello", "GET"), ("/~1openapi.json", "GET")}
    assert all(s["CacheDataEncrypted"] for s in cached.values())
    # The gateway keeps a response exactly as long as the app tells browsers to.
    assert cached[("/~1hello", "GET")]["CacheTtlInSeconds"] == public_max_age("/hello")
    assert cached[("/~1openapi.json", "GET")]["CacheTtlInSeconds"] == public_max_age("/openapi.json")


def test_dev_runs_without_a_cache(templates: dict[str, Template]) -> None:
    api = props(templates["dev"], "RestAPI")
    assert api["CacheClusterEnabled"] is False
    assert not any(s["CachingEnabled"] for s in api["MethodSettings"])


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_gateway_responses_are_json_with_the_stage_origin(templates: dict[str, Template], name: str) -> None:
    # In the body, so that a body update (a route change) cannot drop them.
    responses = swagger(templates[name])["x-amazon-apigateway-gateway-responses"]
    assert "GatewayResponses" not in props(templates[name], "RestAPI")
    origin = load_stage(name).cors_origin
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "UNAUTHORIZED", "THROTTLED", "MISSING_AUTHENTICATION_TOKEN"} <= set(responses)
    for response in responses.values():
        headers = response["responseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{origin}'"
        assert headers["gatewayresponse.header.X-Content-Type-Options"] == "'nosniff'"
        assert headers["gatewayresponse.header.Cache-Control"] == "'no-store'"
        json.loads(response["responseTemplates"]["application/json"].replace("$context.error.messageString", '""'))
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"  # unknown routes, as locally
    assert responses["UNAUTHORIZED"]["statusCode"] == "401"
    assert responses["THROTTLED"]["statusCode"] == "429"


# --- API keys -------------------------------------------------------------------------------


def test_prod_users_routes_need_an_api_key_of_a_usage_plan(prod: Template) -> None:
    for path, _, spec in proxy_methods(prod):
        needs_key = {"api_key": []} in spec.get("security", [])
        assert needs_key == path.startswith("/users"), path
    plan = props(prod, "ApiUsagePlan")
    assert plan["Throttle"] == {"BurstLimit": 100, "RateLimit": 50}
    assert plan["Quota"] == {"Limit": 10000, "Period": "DAY"}
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}]
    key = props(prod, "ApiUsagePlanKey")
    assert (key["KeyId"], key["UsagePlanId"]) == ({"Ref": "ApiKey"}, {"Ref": "ApiUsagePlan"})
    assert props(prod, "ApiKey")["Enabled"] is True


@pytest.mark.parametrize("name", ["dev", "staging"])
def test_other_stages_need_no_api_key(templates: dict[str, Template], name: str) -> None:
    assert not resources_of(templates[name], "AWS::ApiGateway::UsagePlan")
    assert all(
        "security" not in s or {"api_key": []} not in s["security"] for _, _, s in proxy_methods(templates[name])
    )


# --- WAF ------------------------------------------------------------------------------------


def test_prod_stage_has_the_web_acl(prod: Template) -> None:
    association = props(prod, "WebAclAssociation")
    assert association["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert association["ResourceArn"]["Fn::Sub"].endswith("/restapis/${RestAPI}/stages/${RestAPI.Stage}")
    acl = props(prod, "WebAcl")
    assert acl["Scope"] == "REGIONAL"
    rules = {rule["Name"]: rule for rule in acl["Rules"] if "Name" in rule}
    rate = rules["RateLimitPerIp"]
    assert rate["Statement"]["RateBasedStatement"] == {
        "Limit": 2000,
        "EvaluationWindowSec": 300,
        "AggregateKeyType": "IP",
    }
    assert rate["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    size = rules["BodySizeLimit"]["Statement"]["SizeConstraintStatement"]
    assert size["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    assert (size["ComparisonOperator"], size["Size"]) == ("GT", 8192)
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in rules.values() if "OverrideAction" in r}
    assert managed == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesSQLiRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
    }
    (geo,) = [rule for rule in acl["Rules"] if "Fn::If" in rule]
    assert geo["Fn::If"][0] == "HasGeoBlock"
    assert prod["Parameters"]["GeoBlockCountries"]["Default"] == ""
    assert props(prod, "WafLogging")["RedactedFields"] == [
        {"SingleHeader": {"Name": "authorization"}},
        {"SingleHeader": {"Name": "x-api-key"}},
    ]


def test_dev_has_no_web_acl(templates: dict[str, Template]) -> None:
    assert not resources_of(templates["dev"], "AWS::WAFv2::WebACL")
    assert resources_of(templates["staging"], "AWS::WAFv2::WebACLAssociation")


# --- Monitoring and outputs -------------------------------------------------------------------


def test_alarm_set(prod: Template) -> None:
    alarms = resources_of(prod, "AWS::CloudWatch::Alarm")

    def metric(name: str) -> tuple[str | None, str | None]:
        p = alarms[name]["Properties"]
        return p.get("Namespace"), p.get("MetricName")

    assert metric("LambdaErrorsAlarm") == ("AWS/Lambda", "Errors")
    assert metric("LambdaThrottlesAlarm") == ("AWS/Lambda", "Throttles")
    assert metric("Api5xxRateAlarm") == ("AWS/ApiGateway", "5XXError")
    assert metric("ApiLatencyP99Alarm") == ("AWS/ApiGateway", "Latency")
    errors = alarms["LambdaErrorsAlarm"]["Properties"]
    assert (errors["Threshold"], errors["Period"], errors["EvaluationPeriods"], errors["Statistic"]) == (
        10,
        300,
        1,
        "Sum",
    )
    assert alarms["ApiLatencyP99Alarm"]["Properties"]["ExtendedStatistic"] == "p99"
    assert alarms["Api5xxRateAlarm"]["Properties"]["Statistic"] == "Average"
    dynamo = alarms["DynamoDbThrottlesAlarm"]["Properties"]["Metrics"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in dynamo if "MetricStat" in m} == {"ThrottledRequests"}
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    for name in ("Api5xxRateAlarm", "ApiLatencyP99Alarm"):
        dimensions = {d["Name"]: d["Value"] for d in alarms[name]["Properties"]["Dimensions"]}
        assert dimensions == {"ApiName": "users-api-prod", "Stage": "api"}
    assert prod["Resources"]["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_outputs(templates: dict[str, Template], name: str) -> None:
    outputs = templates[name]["Outputs"]
    assert {"ApiEndpoint", "UsersTableName", "FunctionArn", "UserPoolId", "UserPoolClientId"} <= set(outputs)
    assert outputs["AvatarBucketName"]["Value"] == {"Ref": "AvatarBucket"}
    assert outputs["ApiEndpoint"]["Value"]["Fn::Sub"].endswith("/api/")
    assert ("ApiKeyId" in outputs) == (name == "prod")


def test_no_cors_wildcard_anywhere(templates: dict[str, Template]) -> None:
    for template in templates.values():
        text = json.dumps(template)
        assert 'Access-Control-Allow-Origin": "\'*\'"' not in text
        assert "'*'" not in text


# --- Change events ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_consumer_reads_the_users_stream_with_partial_batch_responses_retries_and_a_dead_letter_queue(
    templates: dict[str, Template], name: str
) -> None:
    template = templates[name]
    consumer = template["Resources"]["UserChanges"]
    props = consumer["Properties"]
    assert props["FunctionName"] == f"users-api-{name}-changes"
    assert props["Handler"] == "app.user_changes"
    (event,) = props["Events"].values()
    assert event["Type"] == "DynamoDB"
    source = event["Properties"]
    assert source["Stream"] == {"Fn::GetAtt": ["UsersTable", "StreamArn"]}
    assert source["StartingPosition"] == "TRIM_HORIZON"
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["MaximumRetryAttempts"] == 5 and source["BisectBatchOnFunctionError"] is True
    assert source["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["ChangeDeadLetterQueue", "Arn"]}}
    }
    patterns = [json.loads(f["Pattern"]) for f in source["FilterCriteria"]["Filters"]]
    assert patterns == load_limits()["change_events"]["filters"]
    variables = props["Environment"]["Variables"]
    assert variables["REPORT_BATCH_ITEM_FAILURES"] == "true"
    assert variables["EVENT_BUS_NAME"] == {"Ref": "ChangeEventBus"}
    assert variables["AUDIT_TABLE_NAME"] == {"Ref": "AuditTable"}
    assert variables["USER_POOL_ARN"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    role = template["Resources"]["UserChangesRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert role == consumer_policy_document(load_stage(name))
    assert consumer["DependsOn"] == ["UserChangesLogGroup"]
    assert (
        template["Resources"]["UserChangesLogGroup"]["Properties"]["LogGroupName"]
        == f"/aws/lambda/users-api-{name}-changes"
    )


def test_audit_table_bus_dead_letter_queue_and_their_alarms(prod: Template) -> None:
    resources = prod["Resources"]
    audit = resources["AuditTable"]
    assert audit["DeletionPolicy"] == "Retain"
    props = audit["Properties"]
    assert props["TableName"] == "users-api-prod-audit"
    assert props["KeySchema"] == AUDIT_KEY_SCHEMA
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert resources["ChangeEventBus"]["Properties"]["Name"] == "users-api-prod-changes"
    queue = resources["ChangeDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and queue["QueueName"] == "users-api-prod-changes-dlq"
    alarms = resources_of(prod, "AWS::CloudWatch::Alarm")
    errors = alarms["ChangeConsumerErrorsAlarm"]["Properties"]
    assert (errors["MetricName"], errors["Threshold"]) == ("Errors", 0)
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "UserChanges"}}]
    age = alarms["ChangeConsumerIteratorAgeAlarm"]["Properties"]
    assert (age["MetricName"], age["Statistic"], age["Threshold"]) == ("IteratorAge", "Maximum", 300000)
    dead = alarms["ChangeDeadLettersAlarm"]["Properties"]
    assert (dead["Namespace"], dead["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    # The history route reads the audit table: the API function is told its name by reference.
    assert resources["APIHandler"]["Properties"]["Environment"]["Variables"]["AUDIT_TABLE_NAME"] == {
        "Ref": "AuditTable"
    }


def test_the_chalice_deploy_base_template_has_the_change_storage_and_the_stream_arn() -> None:
    base = base_template(load_stage("dev"))
    assert {"AuditTable", "ChangeEventBus", "ChangeDeadLetterQueue"} <= set(base["Resources"])
    assert base["Outputs"]["UsersTableStreamArn"]["Value"] == {"Fn::GetAtt": ["UsersTable", "StreamArn"]}
    assert "USERS_STREAM_ARN" in base["Outputs"]["UsersTableStreamArn"]["Description"]


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_stack_records_the_release_it_runs(templates: dict[str, Template], name: str) -> None:
    """The deploy compares versions before it deploys (ops/release_version.py): the stack keeps the
    one it runs in its ReleaseVersion output, and the API function's environment makes each release a
    new version, so even a release of the same code goes through the hook."""
    template = templates[name]
    parameter = template["Parameters"]["ReleaseVersion"]
    assert parameter["AllowedPattern"] == RELEASE_VERSION_PATTERN
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])
    assert template["Outputs"]["ReleaseVersion"]["Value"] == {"Ref": "ReleaseVersion"}
    variables = props(template, "APIHandler")["Environment"]["Variables"]
    assert variables["RELEASE_VERSION"] == {"Ref": "ReleaseVersion"}


# --- Upgrading the users table's indexes ----------------------------------------------------


def _indexes(template: Template) -> dict[str, Any]:
    table = template["Resources"]["UsersTable"]["Properties"]
    return {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}


def test_each_upgrade_step_adds_one_index_as_cloudformation_requires() -> None:
    """CloudFormation refuses a stack update that creates or deletes more than one GSI of a table:
    the intermediate templates go from the previous release's table to this one's one index at a
    time, and each declares exactly the key attributes its indexes use (DynamoDB refuses others).
    The previous release's index stays (its version still serves while this one rolls out)."""
    stage = load_stage("prod")
    steps = [base_template(stage, step) for step in range(FINAL_STEP + 1)]
    assert set(_indexes(steps[0])) == {LEGACY_LISTING_INDEX}
    assert steps[0]["Resources"]["UsersTable"]["Properties"]["AttributeDefinitions"] == [
        {"AttributeName": "userId", "AttributeType": "S"},
        {"AttributeName": "listingId", "AttributeType": "S"},
    ]
    assert steps[-1] == base_template(stage)
    assert list(_indexes(steps[-1]).values()) == GLOBAL_SECONDARY_INDEXES
    assert set(_indexes(steps[-1])) == {LEGACY_LISTING_INDEX, *SEARCH_INDEXES}
    for before, after in itertools.pairwise(steps):
        old, new = _indexes(before), _indexes(after)
        assert len(set(old) ^ set(new)) == 1, (set(old), set(new))
        assert all(old[name] == new[name] for name in set(old) & set(new))  # none changed in place
        table = after["Resources"]["UsersTable"]["Properties"]
        used = {"userId"} | {key["AttributeName"] for index in new.values() for key in index["KeySchema"]}
        assert {a["AttributeName"] for a in table["AttributeDefinitions"]} == used


def test_the_packaged_template_of_a_step_holds_that_steps_indexes() -> None:
    template = merge_template(load_stage("prod"), 1)
    assert set(_indexes(template)) == {LEGACY_LISTING_INDEX, BY_CREATED_INDEX}
