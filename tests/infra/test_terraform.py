"""Properties of the Terraform package: Chalice's chalice.tf.json plus infra/terraform/*.tf.

The .tf files are parsed with python-hcl2 (`make lint-infra` also runs `terraform validate` on
every stage's package where terraform is installed). python-hcl2 renders an expression as the
string "${...}"; references into limits.json (local.limits...) are resolved against the packaged
limits.json, so a number asserted here is the number Terraform reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hcl2
import pytest

from app import app
from chalicelib.adapters.table_schema import (
    ATTRIBUTE_DEFINITIONS,
    AUDIT_KEY_SCHEMA,
    GLOBAL_SECONDARY_INDEXES,
    KEY_SCHEMA,
    time_to_live_kwargs,
)
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.traffic_hook import PROBES, TIMEOUT_SHARE, worst_case_s
from infra.invitation import invitation
from infra.packaging import package_terraform
from infra.policies import (
    CHANGES_DEPLOYMENT_GROUP,
    DEPLOYMENT_GROUP,
    changes_hook_policy_document,
    consumer_policy_document,
    hook_policy_document,
    policy_document,
)
from infra.stages import PROJECT_DIR, load_stage
from tests.support.cache_headers import public_max_age

Block = dict[str, Any]
T = TypeVar("T")

OUR_FILES = {
    "variables.tf",
    "locals.tf",
    "chalice_override.tf",
    "lambda.tf",
    "data.tf",
    "api.tf",
    "waf.tf",
    "monitoring.tf",
    "outputs.tf",
    "events.tf",
    "s3.tf",
    "deploy.tf",
    "jobs.tf",
}
_LOCAL_REFERENCE = re.compile(r"^\$\{local\.([A-Za-z0-9_.]+)\}$")
ALIAS_INVOKE_ARN = "${aws_lambda_alias.live.invoke_arn}"
# Resource types that take no tags (or, for Chalice's function, keep Chalice's own).
UNTAGGED = {
    "aws_api_gateway_account",
    "aws_api_gateway_deployment",
    "aws_api_gateway_method_settings",
    "aws_api_gateway_usage_plan_key",
    "aws_cognito_user_group",
    "aws_cognito_user_pool_client",
    "aws_iam_role_policy_attachment",
    "aws_lambda_alias",
    "aws_lambda_function",
    "aws_lambda_permission",
    "aws_lambda_provisioned_concurrency_config",
    "aws_s3_bucket_cors_configuration",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_notification",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_secretsmanager_secret_version",
    "aws_sns_topic_subscription",
    "aws_sqs_queue_policy",
    "aws_wafv2_web_acl_association",
    "aws_wafv2_web_acl_logging_configuration",
}


@dataclass(frozen=True)
class Package:
    folder: Path
    files: dict[str, Block]  # .tf file name -> python-hcl2 document
    chalice: Block  # chalice.tf.json
    limits: Block
    tfvars: Block

    def resources(self, *, overrides: bool = False) -> dict[tuple[str, str], Block]:
        """(type, name) -> body, from our own files or from the override file only."""
        found: dict[tuple[str, str], Block] = {}
        for file, document in self.files.items():
            if file.endswith("_override.tf") != overrides:
                continue
            for entry in document.get("resource", []):
                for kind, named in entry.items():
                    for name, body in named.items():
                        assert (kind, name) not in found, f"{kind}.{name} defined twice"
                        found[kind, name] = body
        return found

    def resource(self, kind: str, name: str) -> Block:
        return self.resources()[kind, name]

    def override(self, kind: str, name: str) -> Block:
        return self.resources(overrides=True)[kind, name]

    def of_type(self, kind: str) -> dict[str, Block]:
        return {name: body for (k, name), body in self.resources().items() if k == kind}

    def locals(self) -> Block:
        return {
            name: value
            for document in self.files.values()
            for block in document.get("locals", [])
            for name, value in block.items()
        }

    def value(self, expression: Any) -> Any:
        """A `${local.a.b}` reference resolved through the locals and limits.json; anything else as is."""
        match = _LOCAL_REFERENCE.match(expression) if isinstance(expression, str) else None
        if match is None:
            return expression
        name, *path = match.group(1).split(".")
        current = self.limits if name == "limits" else self.value(self.locals()[name])
        for key in path:
            current = current[key]
        return current

    def metric_alarms(self) -> dict[str, Block]:
        """What `aws_cloudwatch_metric_alarm.metric` makes, by for_each key: each alarm of limits.json
        metric_alarms with its numbers and the dimensions monitoring.tf gives it."""
        sections = {
            "alarms": self.limits["alarms"],
            "rollback_alarms": self.limits["rollback_alarms"],
            "change_events": self.limits["change_events"]["alarms"],
            "bulk_jobs": self.limits["bulk_jobs"]["alarms"],
        }
        dimensions = self.locals()["alarm_dimensions"]
        return {
            key: {
                **alarm,
                **sections[alarm["limits"][0]][alarm["limits"][1]],
                "dimensions": {name: value.strip('"') for name, value in dimensions[alarm["dimensions"]].items()},
            }
            for key, alarm in self.limits["metric_alarms"].items()
        }

    def swagger(self) -> Block:
        return dict(json.loads(self.chalice["locals"]["chalice_api_swagger"]))


def _parse(path: Path) -> Block:
    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
    with path.open() as handle:
        return dict(hcl2.load(handle, serialization_options=options))


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    out = tmp_path_factory.mktemp("terraform") / "prod"
    package_terraform(load_stage("prod"), out)
    return Package(
        folder=out,
        files={path.name: _parse(path) for path in sorted(out.glob("*.tf"))},
        chalice=json.loads((out / "chalice.tf.json").read_text()),
        limits=json.loads((out / "limits.json").read_text()),
        tfvars=json.loads((out / "stage.auto.tfvars.json").read_text()),
    )


def single(items: list[T]) -> T:
    assert len(items) == 1, items
    return items[0]


def test_the_package_holds_chalices_output_and_every_file_of_ours(package: Package) -> None:
    assert set(package.files) == OUR_FILES
    assert {path.name for path in (PROJECT_DIR / "infra" / "terraform").glob("*.tf")} == OUR_FILES
    assert (package.folder / "deployment.zip").stat().st_size > 0
    assert package.limits == json.loads((PROJECT_DIR / "infra" / "limits.json").read_text())
    assert single(package.files["locals.tf"]["locals"])["limits"] == '${jsondecode(file("${path.module}/limits.json"))}'


def test_every_tfvars_key_is_a_declared_variable(package: Package) -> None:
    variables = {name: body for block in package.files["variables.tf"]["variable"] for name, body in block.items()}
    assert set(package.tfvars) <= set(variables)
    assert set(variables) - set(package.tfvars) == {"alarm_email", "geo_block_countries"}
    assert variables["alarm_email"]["default"] == ""
    assert variables["geo_block_countries"]["default"] == []
    assert variables["geo_block_countries"]["type"] == "${list(string)}"
    assert variables["lambda_environment"]["type"] == "${map(string)}"
    assert variables["require_api_key"]["type"] == "bool"
    assert package.tfvars["function_name"] == "users-api-prod"
    assert package.tfvars["lambda_environment"]["TABLE_NAME"] == package.tfvars["table_name"] == "users-api-prod"


def test_stage_throttles_every_method_and_caches_none_by_default(package: Package) -> None:
    everything = package.resource("aws_api_gateway_method_settings", "all")
    assert everything["method_path"] == "*/*"
    settings = single(everything["settings"])
    assert package.value(settings["throttling_burst_limit"]) == package.limits["stage_throttle"]["burst_limit"] == 100
    assert package.value(settings["throttling_rate_limit"]) == package.limits["stage_throttle"]["rate_limit"] == 50
    assert settings["caching_enabled"] is False
    assert settings["metrics_enabled"] is True
    assert settings["logging_level"] == "ERROR"
    assert settings["data_trace_enabled"] is False  # bodies are user data


def test_only_public_routes_are_cached_for_as_long_as_the_app_says(package: Package) -> None:
    assert set(package.of_type("aws_api_gateway_method_settings")) == {"all", "cached"}
    cached = package.resource("aws_api_gateway_method_settings", "cached")
    assert cached["for_each"] == "${local.cached_routes}"
    assert cached["method_path"] == "${each.key}"
    settings = single(cached["settings"])
    assert settings["caching_enabled"] == "${var.api_cache}"
    assert settings["cache_ttl_in_seconds"] == "${each.value.ttl_seconds}"
    assert settings["cache_data_encrypted"] is True
    assert package.value(settings["throttling_burst_limit"]) == 100
    assert package.value(settings["throttling_rate_limit"]) == 50
    # local.cached_routes keys each route as "<path without the leading slash>/<METHOD>".
    assert 'trimprefix(route.path, "/")}/${route.method}' in package.locals()["cached_routes"]
    routes = package.limits["cache"]["routes"]
    ttls = {f"{route['path'].lstrip('/')}/{route['method']}": route["ttl_seconds"] for route in routes}
    assert ttls == {"hello/GET": 60, "openapi.json/GET": 300}
    assert not any(route["path"].startswith("/users") for route in routes)
    assert ttls["hello/GET"] == public_max_age("/hello")
    assert ttls["openapi.json/GET"] == public_max_age("/openapi.json")
    paths = package.swagger()["paths"]
    assert all("get" in paths[route["path"]] for route in routes)


def test_stage_traces_logs_and_sizes_its_cache_from_limits(package: Package) -> None:
    stage = package.resource("aws_api_gateway_stage", "api")
    assert stage["stage_name"] == "${var.api_stage}"
    assert stage["deployment_id"] == "${aws_api_gateway_deployment.rest_api.id}"
    assert stage["xray_tracing_enabled"] is True
    assert stage["cache_cluster_enabled"] == "${var.api_cache}"
    assert stage["cache_cluster_size"] == "${var.api_cache ? local.limits.cache.cluster_size_gb : null}"
    assert package.tfvars["api_cache"] is True
    logs = single(stage["access_log_settings"])
    assert logs["destination_arn"] == "${aws_cloudwatch_log_group.api_access.arn}"
    assert logs["format"] == "${jsonencode(local.limits.access_log_format)}"
    assert "$context.requestId" in package.limits["access_log_format"].values()
    group = package.resource("aws_cloudwatch_log_group", "api_access")
    assert group["name"] == "/aws/apigateway/${var.api_name}"
    assert group["retention_in_days"] == "${var.api_log_retention_days}"
    assert package.tfvars["api_log_retention_days"] == 30
    execution = package.resource("aws_cloudwatch_log_group", "api_execution")
    assert execution["name"] == "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.rest_api.id}/${var.api_stage}"
    assert execution["retention_in_days"] == "${var.api_log_retention_days}"
    for settings in package.of_type("aws_api_gateway_method_settings").values():
        assert settings["depends_on"] == ["${aws_cloudwatch_log_group.api_execution}"]
    account = package.resource("aws_api_gateway_account", "this")
    assert account["cloudwatch_role_arn"] == "${aws_iam_role.api_gateway_cloudwatch.arn}"
    attachment = package.resource("aws_iam_role_policy_attachment", "api_gateway_cloudwatch")
    assert attachment["policy_arn"].endswith(":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")


def test_table_matches_the_schema_the_code_uses_and_is_protected(package: Package) -> None:
    table = package.resource("aws_dynamodb_table", "users")
    assert table["name"] == "${var.table_name}"
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert [{"AttributeName": table["hash_key"], "KeyType": "HASH"}] == KEY_SCHEMA
    attributes = [{"AttributeName": a["name"], "AttributeType": a["type"]} for a in table["attribute"]]
    assert attributes == ATTRIBUTE_DEFINITIONS
    indexes = [
        {
            "IndexName": index["name"],
            "KeySchema": [
                {"AttributeName": index["hash_key"], "KeyType": "HASH"},
                *([{"AttributeName": index["range_key"], "KeyType": "RANGE"}] if "range_key" in index else []),
            ],
            "Projection": {"ProjectionType": index["projection_type"]},
        }
        for index in table["global_secondary_index"]
    ]
    assert indexes == GLOBAL_SECONDARY_INDEXES
    assert table["stream_enabled"] is True
    assert table["stream_view_type"] == "NEW_AND_OLD_IMAGES"
    ttl = time_to_live_kwargs("t")["TimeToLiveSpecification"]
    assert single(table["ttl"]) == {"attribute_name": ttl["AttributeName"], "enabled": ttl["Enabled"]}
    assert single(table["point_in_time_recovery"])["enabled"] is True
    assert single(table["server_side_encryption"])["enabled"] is True
    assert table["deletion_protection_enabled"] is True
    assert single(table["lifecycle"])["prevent_destroy"] is True


def test_user_pool_is_admin_created_with_a_strong_password_policy(package: Package) -> None:
    pool = package.resource("aws_cognito_user_pool", "users")  # the name the swagger's authorizer references
    assert pool["name"] == "${var.user_pool_name}"
    assert {key: package.value(value) for key, value in single(pool["password_policy"]).items()} == {
        "minimum_length": 12,
        "require_uppercase": True,
        "require_lowercase": True,
        "require_numbers": True,
        "require_symbols": True,
        "temporary_password_validity_days": 3,
    }
    assert pool["username_attributes"] == ["email"]
    assert pool["auto_verified_attributes"] == ["email"]
    assert pool["deletion_protection"] == "ACTIVE"
    admin_create = single(pool["admin_create_user_config"])
    assert admin_create["allow_admin_create_user_only"] is True
    recovery = single(single(pool["account_recovery_setting"])["recovery_mechanism"])
    assert recovery == {"name": "verified_email", "priority": 1}
    assert pool["mfa_configuration"] == "OPTIONAL"
    assert single(pool["software_token_mfa_configuration"])["enabled"] is True
    assert single(pool["lifecycle"])["prevent_destroy"] is True


def test_the_pool_sends_with_cognitos_own_email_unless_an_ses_identity_is_given(package: Package) -> None:
    """Cognito allows a custom invitation email only with SES (EmailSendingAccount DEVELOPER): by
    default the pool uses Cognito's email and its own invitation text, so it deploys anywhere."""
    pool = package.resource("aws_cognito_user_pool", "users")
    email = single(pool["email_configuration"])
    assert email["email_sending_account"] == '${var.ses_identity_arn == "" ? "COGNITO_DEFAULT" : "DEVELOPER"}'
    assert email["source_arn"] == '${var.ses_identity_arn == "" ? null : var.ses_identity_arn}'
    assert (
        email["from_email_address"] == '${var.ses_identity_arn == "" || var.email_from == "" ? null : var.email_from}'
    )
    template = single(single(pool["admin_create_user_config"])["dynamic"])["invite_message_template"]
    assert template["for_each"] == '${var.ses_identity_arn == "" ? [] : [1]}'
    assert single(template["content"]) == {
        "email_subject": "${var.invitation_email_subject}",
        "email_message": "${var.invitation_email_message}",
    }
    # The stage's settings, and the invitation rendered once (infra/invitation.py) for both formats.
    assert (package.tfvars["ses_identity_arn"], package.tfvars["email_from"]) == ("", "")
    assert package.tfvars["invitation_email_subject"] == invitation(package.limits)["EmailSubject"]
    assert package.tfvars["invitation_email_message"] == invitation(package.limits)["EmailMessage"]
    assert "expires in 3 days" in package.tfvars["invitation_email_message"]


def test_pool_client_and_admin_group(package: Package) -> None:
    client = package.resource("aws_cognito_user_pool_client", "api")
    assert client["generate_secret"] is False
    assert package.value(client["explicit_auth_flows"]) == ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert client["prevent_user_existence_errors"] == "ENABLED"
    assert client["enable_token_revocation"] is True
    assert package.value(client["read_attributes"]) == ["email", "email_verified"]
    units = single(client["token_validity_units"])
    assert (client["id_token_validity"], units["id_token"]) == (60, "minutes")
    assert (client["refresh_token_validity"], units["refresh_token"]) == (30, "days")
    assert package.resource("aws_cognito_user_group", "admins")["name"] == ADMIN_GROUP


def test_cursor_secret_is_named_for_the_role_policy_and_generated(package: Package) -> None:
    secret = package.resource("aws_secretsmanager_secret", "cursor")
    assert secret["name"] == "${var.cursor_secret_name}"
    assert package.tfvars["cursor_secret_name"] == "users-api/prod/cursor-secret"
    policy = (PROJECT_DIR / ".chalice" / "policy-prod.json").read_text()
    assert "secret:users-api/prod/cursor-secret-??????" in policy
    assert single(secret["lifecycle"])["prevent_destroy"] is True  # its name would be blocked for 30 days
    # Generated during the apply and written write-only: the key is in no plan and no state.
    (generated,) = [block["aws_secretsmanager_random_password"] for block in package.files["data.tf"]["ephemeral"]]
    assert generated["cursor"] == {"password_length": 64, "exclude_punctuation": True}
    version = package.resource("aws_secretsmanager_secret_version", "cursor")
    assert version["secret_string_wo"] == "${ephemeral.aws_secretsmanager_random_password.cursor.random_password}"
    assert "secret_string" not in version
    assert version["secret_string_wo_version"] == 1


def test_avatar_bucket_is_named_for_the_role_policy_and_kept(package: Package) -> None:
    bucket = package.resource("aws_s3_bucket", "avatars")
    assert bucket["bucket"] == "${var.avatar_bucket_prefix}${data.aws_caller_identity.current.account_id}"
    assert package.tfvars["avatar_bucket_prefix"] == "users-api-prod-avatars-"
    assert single(bucket["lifecycle"])["prevent_destroy"] is True
    # The role policy names the same bucket with an IAM policy variable, escaped so Terraform keeps it literal.
    policy = package.chalice["resource"]["aws_iam_role_policy"]["api_handler_role"]["policy"]
    assert "arn:aws:s3:::users-api-prod-avatars-$${aws:PrincipalAccount}/avatars/*" in policy
    assert json.loads(policy.replace("$${", "${")) == policy_document(
        load_stage("prod"), "${aws_cognito_user_pool.users.arn}"
    )


def test_avatar_bucket_blocks_public_access_and_is_encrypted(package: Package) -> None:
    block = package.resource("aws_s3_bucket_public_access_block", "avatars")
    assert block == {
        "bucket": "${aws_s3_bucket.avatars.id}",
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    }
    ownership = package.resource("aws_s3_bucket_ownership_controls", "avatars")
    assert single(ownership["rule"])["object_ownership"] == "BucketOwnerEnforced"
    encryption = package.resource("aws_s3_bucket_server_side_encryption_configuration", "avatars")
    default = single(single(encryption["rule"])["apply_server_side_encryption_by_default"])
    assert default == {"sse_algorithm": "AES256"}
    # Unversioned: a deleted avatar must not live on as a noncurrent version.
    assert not package.of_type("aws_s3_bucket_versioning")


def test_avatar_bucket_cors_lifecycle_and_tls_policy(package: Package) -> None:
    cors = single(package.resource("aws_s3_bucket_cors_configuration", "avatars")["cors_rule"])
    assert cors["allowed_origins"] == ["${var.cors_allow_origin}"]
    assert package.tfvars["cors_allow_origin"] == "https://app.example.com"
    assert sorted(package.value(cors["allowed_methods"])) == ["GET", "POST"]
    rules = package.resource("aws_s3_bucket_lifecycle_configuration", "avatars")["rule"]
    # The bulk jobs' rules, for their prefixes, are tested in tests/infra/test_bulk_jobs_infra.py.
    rule = single([r for r in rules if r["id"] == "AbortIncompleteMultipartUploads"])
    assert rule["status"] == "Enabled"
    days = single(rule["abort_incomplete_multipart_upload"])["days_after_initiation"]
    assert package.value(days) == 1
    policy = package.resource("aws_s3_bucket_policy", "avatars")["policy"]
    assert policy.count('Effect = "Deny"') == 2 and '"Allow' not in policy
    assert '{Bool = {"aws:SecureTransport" = "false"}}' in policy
    assert '{NumericLessThan = {"s3:TlsVersion" = "1.2"}}' in policy


def test_lambda_alias_log_group_and_provisioned_concurrency(package: Package) -> None:
    alias = package.resource("aws_lambda_alias", "live")
    assert alias["function_version"] == "${aws_lambda_function.api_handler.version}"
    assert alias["name"] == "live"
    group = package.resource("aws_cloudwatch_log_group", "api_handler")
    assert group["name"] == "/aws/lambda/${var.function_name}"
    assert group["retention_in_days"] == "${var.lambda_log_retention_days}"
    assert package.tfvars["lambda_log_retention_days"] == 90
    concurrency = package.resource("aws_lambda_provisioned_concurrency_config", "live")
    assert concurrency["count"] == "${var.provisioned_concurrency > 0 ? 1 : 0}"
    assert concurrency["qualifier"] == "${aws_lambda_alias.live.name}"


def test_override_file_rewires_chalices_resources(package: Package) -> None:
    function = package.override("aws_lambda_function", "api_handler")
    assert function["publish"] is True
    variables = single(function["environment"])["variables"]
    assert variables.startswith("${merge(var.lambda_environment, {")
    for name, reference in {
        "USER_POOL_ID": "aws_cognito_user_pool.users.id",
        "USER_POOL_CLIENT_ID": "aws_cognito_user_pool_client.api.id",
        "USER_POOL_ARN": "aws_cognito_user_pool.users.arn",
        "CURSOR_SECRET_ARN": "aws_secretsmanager_secret.cursor.arn",
        "AVATAR_BUCKET": "aws_s3_bucket.avatars.bucket",
    }.items():
        assert f"{name} = {reference}" in variables
    assert package.override("aws_api_gateway_rest_api", "rest_api")["name"] == "${var.api_name}"
    deployment = package.override("aws_api_gateway_deployment", "rest_api")
    assert deployment["stage_name"] is None
    assert deployment["stage_description"] is None
    assert deployment["triggers"]["redeployment"] == "${md5(local.chalice_api_swagger)}"
    assert single(deployment["lifecycle"])["create_before_destroy"] is True
    output = single(package.files["chalice_override.tf"]["output"])
    assert output["EndpointURL"]["value"] == "${aws_api_gateway_stage.api.invoke_url}"
    settings = single(package.files["chalice_override.tf"]["terraform"])
    assert settings["required_version"] == ">= 1.11.0, < 2.0.0"
    assert single(settings["required_providers"])["aws"]["version"] == ">= 5.100.0, < 6.0.0"
    # Chalice's own block: what the override does not replace must not hold Terraform back.
    assert package.chalice["terraform"]["required_version"] == ">= 0.12.26, < 1.4.0"  # replaced by the override
    assert set(package.chalice["terraform"]["required_providers"]) == {"aws"}  # its unused null provider dropped
    assert "null_data_source" not in package.chalice["data"]
    # Each overridden block exists in Chalice's output, or Terraform rejects the override.
    for kind, name in package.resources(overrides=True):
        assert name in package.chalice["resource"][kind]


def test_api_gateway_invokes_the_live_alias(package: Package) -> None:
    permission = package.override("aws_lambda_permission", "rest_api_invoke")
    assert permission["function_name"] == "${aws_lambda_function.api_handler.function_name}"
    assert permission["qualifier"] == "${aws_lambda_alias.live.name}"
    # Only the API's own stage may invoke it, as in the CloudFormation (`${RestAPI}/<stage>/*`):
    # the stage's execution ARN is the API's with `/<stage>` appended.
    assert permission["source_arn"] == "${aws_api_gateway_stage.api.execution_arn}/*"
    assert package.chalice["resource"]["aws_lambda_permission"]["rest_api_invoke"]["source_arn"].endswith("/*")
    swagger = package.swagger()
    uris = [
        spec["x-amazon-apigateway-integration"]["uri"]
        for methods in swagger["paths"].values()
        for spec in methods.values()
        if spec["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    ]
    routes = sum(len(methods) for methods in app.routes.values())
    assert len(uris) == routes == 22  # 16 user routes and 6 of bulk jobs
    assert set(uris) == {ALIAS_INVOKE_ARN}
    assert "aws_lambda_function.api_handler.invoke_arn" not in json.dumps(package.chalice)
    authorizer = swagger["securityDefinitions"]["CognitoUserPool"]["x-amazon-apigateway-authorizer"]
    assert authorizer["providerARNs"] == ["${aws_cognito_user_pool.users.arn}"]


def test_usage_plan_exists_exactly_when_the_stage_requires_api_keys(package: Package) -> None:
    assert package.tfvars["require_api_key"] is True
    assert package.tfvars["lambda_environment"]["REQUIRE_API_KEY"] == "true"
    for kind, name in [
        ("aws_api_gateway_usage_plan", "api"),
        ("aws_api_gateway_api_key", "client"),
        ("aws_api_gateway_usage_plan_key", "client"),
    ]:
        assert package.resource(kind, name)["count"] == "${var.require_api_key ? 1 : 0}"
    plan = package.resource("aws_api_gateway_usage_plan", "api")
    quota = single(plan["quota_settings"])
    assert (package.value(quota["limit"]), package.value(quota["period"])) == (10000, "DAY")
    throttle = single(plan["throttle_settings"])
    assert (package.value(throttle["burst_limit"]), package.value(throttle["rate_limit"])) == (100, 50)
    stage = single(plan["api_stages"])
    assert stage == {
        "api_id": "${aws_api_gateway_rest_api.rest_api.id}",
        "stage": "${aws_api_gateway_stage.api.stage_name}",
    }
    key = package.resource("aws_api_gateway_usage_plan_key", "client")
    assert key["usage_plan_id"] == "${aws_api_gateway_usage_plan.api[0].id}"
    assert key["key_id"] == "${aws_api_gateway_api_key.client[0].id}"


def test_gateway_responses_are_in_the_api_body_with_the_stage_origin(package: Package) -> None:
    """Not separate resources: a route change replaces the body, which drops gateway responses it lacks."""
    assert not package.of_type("aws_api_gateway_gateway_response")
    responses = package.swagger()["x-amazon-apigateway-gateway-responses"]
    limits = package.limits["gateway_responses"]
    assert set(responses) == set(limits)
    for kind, response in responses.items():
        headers = response["responseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == "'https://app.example.com'"
        assert headers["gatewayresponse.header.Vary"] == "'Origin'"
        assert headers["gatewayresponse.header.X-Content-Type-Options"] == "'nosniff'"
        assert headers["gatewayresponse.header.Cache-Control"] == "'no-store'"
        assert response["responseTemplates"] == {"application/json": limits[kind]["body"]}
        assert response.get("statusCode") == limits[kind].get("status")
        json.loads(limits[kind]["body"].replace("$context.error.messageString", '""'))
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"  # unknown routes, as locally
    assert responses["UNAUTHORIZED"]["responseParameters"]["gatewayresponse.header.WWW-Authenticate"] == "'Bearer'"


def test_web_acl_is_attached_to_the_stage_when_the_stage_wants_one(package: Package) -> None:
    assert package.tfvars["waf"] is True
    for kind, name in [
        ("aws_wafv2_web_acl", "api"),
        ("aws_wafv2_web_acl_association", "api"),
        ("aws_cloudwatch_log_group", "waf"),
        ("aws_wafv2_web_acl_logging_configuration", "api"),
    ]:
        assert package.resource(kind, name)["count"] == "${var.waf ? 1 : 0}"
    association = package.resource("aws_wafv2_web_acl_association", "api")
    assert association["resource_arn"] == "${aws_api_gateway_stage.api.arn}"
    assert association["web_acl_arn"] == "${aws_wafv2_web_acl.api[0].arn}"
    logging = package.resource("aws_wafv2_web_acl_logging_configuration", "api")
    redacted = [single(field["single_header"])["name"] for field in logging["redacted_fields"]]
    assert "authorization" in redacted
    assert package.resource("aws_cloudwatch_log_group", "waf")["name"] == "aws-waf-logs-${var.api_name}"


def test_web_acl_rules(package: Package) -> None:
    acl = package.resource("aws_wafv2_web_acl", "api")
    assert acl["scope"] == "REGIONAL"
    assert single(acl["default_action"]) == {"allow": [{}]}
    rules = {rule["name"]: rule for rule in acl["rule"]}
    assert set(rules) == {"RateLimitPerIp", "BodySizeLimit"}
    rate = single(single(rules["RateLimitPerIp"]["statement"])["rate_based_statement"])
    assert package.value(rate["limit"]) == package.limits["waf"]["rate_limit_per_ip"] == 2000
    assert package.value(rate["evaluation_window_sec"]) == package.limits["waf"]["rate_window_seconds"]
    assert rate["aggregate_key_type"] == "IP"
    block = single(single(single(rules["RateLimitPerIp"]["action"])["block"])["custom_response"])
    assert block["response_code"] == 429
    size = single(single(rules["BodySizeLimit"]["statement"])["size_constraint_statement"])
    assert size["comparison_operator"] == "GT"
    assert package.value(size["size"]) == package.limits["waf"]["max_body_bytes"]
    assert package.limits["waf"]["max_body_bytes"] == int(package.tfvars["lambda_environment"]["MAX_BODY_BYTES"])
    assert single(single(size["field_to_match"])["body"])["oversize_handling"] == "MATCH"
    block = single(single(single(rules["BodySizeLimit"]["action"])["block"])["custom_response"])
    assert block["response_code"] == 413
    bodies = {body["key"] for body in acl["custom_response_body"]}
    assert bodies == {"too-many-requests", "too-large"}

    # Dynamic blocks: the geo rule only with countries to block, then one rule per managed group.
    (geo_kind, geo), (managed_kind, managed) = (single(list(block.items())) for block in acl["dynamic"])
    assert geo_kind == managed_kind == "rule"
    assert geo["for_each"] == "${length(var.geo_block_countries) > 0 ? [var.geo_block_countries] : []}"
    assert single(single(geo["content"])["statement"])["geo_match_statement"] == [{"country_codes": "${rule.value}"}]
    assert managed["for_each"] == "${local.limits.waf.managed_rule_groups}"
    content = single(managed["content"])
    statement = single(single(content["statement"])["managed_rule_group_statement"])
    assert statement == {"name": "${rule.value}", "vendor_name": "AWS"}
    assert single(content["override_action"]) == {"none": [{}]}
    assert package.limits["waf"]["managed_rule_groups"] == [
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesSQLiRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
    ]


# Every alarm's address before the single-metric alarms became one for_each resource: an applied
# stack has its alarms there, and `moved` blocks must take each to its new address.
ADDRESSES_BEFORE = (
    "lambda_errors",
    "lambda_throttles",
    "api_5xx_rate",
    "api_latency_p99",
    "rollback_lambda_errors",
    "rollback_api_5xx_rate",
    "change_consumer_errors",
    "change_consumer_iterator_age",
    "change_dead_letters",
    "rollback_change_consumer_errors",
    "rollback_change_dead_letters",
    "job_worker_errors",
    "job_dead_letters",
)


def test_fourteen_alarms_notify_the_topic(package: Package) -> None:
    assert set(package.of_type("aws_cloudwatch_metric_alarm")) == {"metric", "dynamodb_throttles"}
    metric = package.resource("aws_cloudwatch_metric_alarm", "metric")
    assert metric["for_each"] == "${local.metric_alarms}"
    alarms = package.metric_alarms()
    assert len(alarms) + 1 == 14
    assert package.locals()["alarm_actions"] == ["${aws_sns_topic.alarms.arn}"]
    for alarm in (metric, package.resource("aws_cloudwatch_metric_alarm", "dynamodb_throttles")):
        assert alarm["alarm_actions"] == alarm["ok_actions"] == "${local.alarm_actions}"
        assert alarm["treat_missing_data"] == "notBreaching"
        assert alarm["comparison_operator"] == "GreaterThanThreshold"
    # One way for all thirteen: every attribute from the alarm's entry.
    assert metric["alarm_name"] == "${var.api_name}-${each.value.name}"
    assert metric["alarm_description"] == "${each.value.description}"
    assert metric["dimensions"] == "${local.alarm_dimensions[each.value.dimensions]}"
    assert (metric["threshold"], metric["period"]) == ("${each.value.threshold}", "${each.value.period_seconds}")
    assert metric["evaluation_periods"] == metric["datapoints_to_alarm"] == "${each.value.evaluation_periods}"
    metrics = {name: (alarm["namespace"], alarm["metric"]) for name, alarm in alarms.items()}
    assert metrics == {
        "lambda_errors": ("AWS/Lambda", "Errors"),
        "lambda_throttles": ("AWS/Lambda", "Throttles"),
        "api_5xx_rate": ("AWS/ApiGateway", "5XXError"),
        "api_latency_p99": ("AWS/ApiGateway", "Latency"),
        "rollback_lambda_errors": ("AWS/Lambda", "Errors"),  # CodeDeploy's, see the release tests
        "rollback_api_5xx_rate": ("AWS/ApiGateway", "5XXError"),
        "change_consumer_errors": ("AWS/Lambda", "Errors"),  # see the change event tests
        "change_consumer_iterator_age": ("AWS/Lambda", "IteratorAge"),
        "change_dead_letters": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        "rollback_change_consumer_errors": ("AWS/Lambda", "Errors"),  # the consumer's releases
        "rollback_change_dead_letters": ("AWS/SQS", "NumberOfMessagesSent"),
        "job_worker_errors": ("AWS/Lambda", "Errors"),  # see tests/infra/test_bulk_jobs_infra.py
        "job_dead_letters": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    }
    assert alarms["lambda_errors"]["threshold"] == package.limits["alarms"]["lambda_errors"]["threshold"] == 10
    assert alarms["lambda_throttles"]["threshold"] == 0
    rate = alarms["api_5xx_rate"]
    assert rate["statistic"] == "Average" and rate["threshold"] == 0.05
    assert rate["dimensions"] == {"ApiName": "${var.api_name}", "Stage": "${var.api_stage}"}
    latency = alarms["api_latency_p99"]
    assert latency["statistic"] == "p99"  # a percentile: extended_statistic, and no statistic
    assert metric["extended_statistic"] == '${startswith(each.value.statistic, "p") ? each.value.statistic : null}'
    assert metric["statistic"] == '${startswith(each.value.statistic, "p") ? null : each.value.statistic}'
    assert (latency["threshold"], latency["evaluation_periods"]) == (2000, 3)
    subscription = package.resource("aws_sns_topic_subscription", "alarm_email")
    assert subscription["count"] == '${var.alarm_email != "" ? 1 : 0}'
    assert subscription["endpoint"] == "${var.alarm_email}"


def test_every_alarm_address_before_moves_to_its_alarm_so_an_applied_stack_keeps_it(package: Package) -> None:
    moved = [block for document in package.files.values() for block in document.get("moved", [])]
    pairs = {block["from"]: block["to"] for block in moved}
    assert len(pairs) == len(moved)  # one block per address
    assert pairs == {
        f"${{aws_cloudwatch_metric_alarm.{name}}}": f'${{aws_cloudwatch_metric_alarm.metric["{name}"]}}'
        for name in ADDRESSES_BEFORE
    }
    assert set(package.metric_alarms()) == set(ADDRESSES_BEFORE)
    # The names in AWS stay as they were, so the moved alarms are updated in place, not replaced.
    assert {key: alarm["name"] for key, alarm in package.metric_alarms().items()} == {
        name: name.replace("_", "-") for name in ADDRESSES_BEFORE
    }


def test_both_templates_build_the_same_single_metric_alarms(package: Package) -> None:
    from infra.cloudformation import merge_template

    cloudformation = merge_template(load_stage("prod"))["Resources"]
    for key, alarm in package.metric_alarms().items():
        properties = cloudformation[alarm["logical_id"]]["Properties"]
        assert properties["AlarmDescription"] == alarm["description"], key
        assert (properties["Namespace"], properties["MetricName"]) == (alarm["namespace"], alarm["metric"]), key
        statistic = properties.get("Statistic") or properties["ExtendedStatistic"]
        assert statistic == alarm["statistic"], key
        assert (properties["Threshold"], properties["Period"]) == (alarm["threshold"], alarm["period_seconds"]), key
        assert properties["EvaluationPeriods"] == properties["DatapointsToAlarm"] == alarm["evaluation_periods"]
        assert [d["Name"] for d in properties["Dimensions"]] == list(alarm["dimensions"]), key


def test_dynamodb_alarm_sums_every_listed_operation(package: Package) -> None:
    alarm = package.resource("aws_cloudwatch_metric_alarm", "dynamodb_throttles")
    per_operation = single(alarm["dynamic"])["metric_query"]
    assert package.value(per_operation["for_each"]) == [
        "DeleteItem",
        "GetItem",
        "PutItem",
        "Query",
        "TransactWriteItems",
        "UpdateItem",
    ]
    assert per_operation["for_each"] == "${local.alarms.dynamodb_throttled_requests.operations}"
    assert package.locals()["alarms"] == "${local.limits.alarms}"
    content = single(per_operation["content"])
    metric = single(content["metric"])
    assert metric["metric_name"] == "ThrottledRequests"
    assert metric["dimensions"] == {
        "TableName": "${aws_dynamodb_table.users.name}",
        "Operation": "${metric_query.value}",
    }
    assert content["return_data"] is False
    total = single(alarm["metric_query"])
    assert total["expression"] == "SUM(METRICS())"
    assert total["return_data"] is True


def test_outputs(package: Package) -> None:
    outputs = {name: body["value"] for block in package.files["outputs.tf"]["output"] for name, body in block.items()}
    assert outputs == {
        "ApiEndpoint": "${aws_api_gateway_stage.api.invoke_url}/",  # as CloudFormation's: "${API}users"
        "UsersTableName": "${aws_dynamodb_table.users.name}",
        "FunctionArn": "${aws_lambda_function.api_handler.arn}",
        "UserPoolId": "${aws_cognito_user_pool.users.id}",
        "UserPoolClientId": "${aws_cognito_user_pool_client.api.id}",
        "CursorSecretArn": "${aws_secretsmanager_secret.cursor.arn}",
        "AvatarBucketName": "${aws_s3_bucket.avatars.bucket}",
        "AlarmTopicArn": "${aws_sns_topic.alarms.arn}",
        "ApiKeyId": "${one(aws_api_gateway_api_key.client[*].id)}",
    }


def test_everything_taggable_carries_the_stage_tags(package: Package) -> None:
    taggable = {key: body for key, body in package.resources().items() if key[0] not in UNTAGGED}
    assert len(taggable) >= 15
    assert {key: body.get("tags") for key, body in taggable.items()} == dict.fromkeys(taggable, "${var.tags}")
    assert package.override("aws_iam_role", "api_handler_role")["tags"] == "${var.tags}"
    assert package.override("aws_api_gateway_rest_api", "rest_api")["tags"] == "${var.tags}"
    assert package.tfvars["tags"] == {"project": "users-api", "environment": "prod"}


# --- Releases through CodeDeploy (deploy.tf, make release-tf) -------------------------------------


def test_apply_publishes_a_version_and_only_codedeploy_moves_the_alias(package: Package) -> None:
    alias = package.resource("aws_lambda_alias", "live")
    assert single(alias["lifecycle"])["ignore_changes"] == ["function_version", "routing_config"]
    group = package.resource("aws_codedeploy_deployment_group", "live")
    assert group["deployment_group_name"] == DEPLOYMENT_GROUP
    assert group["deployment_config_name"] == "CodeDeployDefault.Lambda${var.traffic_shifting}"
    assert package.tfvars["traffic_shifting"] == "Canary10Percent5Minutes"
    assert single(group["deployment_style"]) == {
        "deployment_type": "BLUE_GREEN",
        "deployment_option": "WITH_TRAFFIC_CONTROL",
    }
    rollback = single(group["auto_rollback_configuration"])
    assert rollback["enabled"] is True and "DEPLOYMENT_STOP_ON_ALARM" in rollback["events"]
    alarms = single(group["alarm_configuration"])
    assert alarms["enabled"] is True
    assert alarms["alarms"] == [
        '${aws_cloudwatch_metric_alarm.metric["rollback_lambda_errors"].alarm_name}',
        '${aws_cloudwatch_metric_alarm.metric["rollback_api_5xx_rate"].alarm_name}',
    ]
    assert package.resource("aws_codedeploy_app", "api") == {
        "name": "${var.api_name}",  # the application the hook's policy names
        "compute_platform": "Lambda",
        "tags": "${var.tags}",
    }
    attachment = package.resource("aws_iam_role_policy_attachment", "codedeploy")
    assert attachment["policy_arn"].endswith(":iam::aws:policy/service-role/AWSCodeDeployRoleForLambda")


def test_rollback_alarms_watch_the_live_alias_and_the_5xx_rate(package: Package) -> None:
    errors = package.metric_alarms()["rollback_lambda_errors"]
    assert errors["dimensions"] == {
        "FunctionName": "${aws_lambda_function.api_handler.function_name}",
        "Resource": "${aws_lambda_function.api_handler.function_name}:${aws_lambda_alias.live.name}",
    }
    rate = package.metric_alarms()["rollback_api_5xx_rate"]
    assert rate["dimensions"] == {"ApiName": "${var.api_name}", "Stage": "${var.api_stage}"}
    limits = package.limits["rollback_alarms"]
    for alarm, key in ((errors, "lambda_errors"), (rate, "api_5xx_rate")):
        assert alarm["threshold"] == limits[key]["threshold"]
        assert alarm["period_seconds"] == limits[key]["period_seconds"] == 60
        assert alarm["evaluation_periods"] == limits[key]["evaluation_periods"]


def test_the_hook_is_named_for_codedeploy_tests_the_latest_version_and_has_its_own_policy(package: Package) -> None:
    stage = load_stage("prod")
    hook = package.override("aws_lambda_function", "pre_traffic_hook")
    assert hook["function_name"] == "CodeDeployHook_${var.function_name}"
    assert stage.hook_function_name == f"CodeDeployHook_{package.tfvars['function_name']}"
    variables = single(hook["environment"])["variables"]
    for name, reference in {
        "USER_POOL_ARN": "aws_cognito_user_pool.users.arn",
        "TARGET_VERSION_ARN": "aws_lambda_function.api_handler.qualified_arn",
        "API_STAGE": "var.api_stage",
    }.items():
        assert f"{name} = {reference}" in variables
    chalice_hook = package.chalice["resource"]["aws_lambda_function"]["pre_traffic_hook"]
    assert chalice_hook["handler"] == "app.pre_traffic_hook"
    assert chalice_hook["role"] == "${aws_iam_role.pre_traffic_hook_role.arn}"
    policy = package.chalice["resource"]["aws_iam_role_policy"]["pre_traffic_hook_role"]["policy"]
    assert json.loads(policy) == hook_policy_document(stage)
    group = package.resource("aws_cloudwatch_log_group", "pre_traffic_hook")
    assert group["name"] == "/aws/lambda/CodeDeployHook_${var.function_name}"
    # No API Gateway permission names the hook.
    permissions = package.chalice["resource"]["aws_lambda_permission"]
    assert "pre_traffic_hook" not in json.dumps(permissions)


def test_the_consumer_is_released_like_the_api_function_with_its_own_hook_and_alarms(package: Package) -> None:
    assert package.override("aws_lambda_function", "user_changes")["publish"] is True
    alias = package.resource("aws_lambda_alias", "user_changes_live")
    assert alias["name"] == "live"
    assert alias["function_name"] == "${aws_lambda_function.user_changes.function_name}"
    assert single(alias["lifecycle"])["ignore_changes"] == ["function_version", "routing_config"]
    group = package.resource("aws_codedeploy_deployment_group", "changes_live")
    assert group["deployment_group_name"] == CHANGES_DEPLOYMENT_GROUP
    assert group["app_name"] == "${aws_codedeploy_app.api.name}"
    assert group["deployment_config_name"] == "CodeDeployDefault.Lambda${var.traffic_shifting}"
    assert single(group["alarm_configuration"])["alarms"] == [
        '${aws_cloudwatch_metric_alarm.metric["rollback_change_consumer_errors"].alarm_name}',
        '${aws_cloudwatch_metric_alarm.metric["rollback_change_dead_letters"].alarm_name}',
    ]
    assert "DEPLOYMENT_STOP_ON_ALARM" in single(group["auto_rollback_configuration"])["events"]
    errors = package.metric_alarms()["rollback_change_consumer_errors"]
    assert errors["dimensions"] == {
        "FunctionName": "${aws_lambda_function.user_changes.function_name}",
        "Resource": "${aws_lambda_function.user_changes.function_name}:${aws_lambda_alias.user_changes_live.name}",
    }
    letters = package.metric_alarms()["rollback_change_dead_letters"]
    assert letters["dimensions"] == {"QueueName": "${aws_sqs_queue.change_dead_letters.name}"}
    hook = package.override("aws_lambda_function", "changes_pre_traffic_hook")
    assert hook["function_name"] == "CodeDeployHook_${var.consumer_function_name}"
    variables = single(hook["environment"])["variables"]
    assert "TARGET_VERSION_ARN = aws_lambda_function.user_changes.qualified_arn" in variables
    chalice_hook = package.chalice["resource"]["aws_lambda_function"]["changes_pre_traffic_hook"]
    assert chalice_hook["handler"] == "app.changes_pre_traffic_hook"
    policy = package.chalice["resource"]["aws_iam_role_policy"]["changes_pre_traffic_hook_role"]["policy"]
    assert json.loads(policy) == changes_hook_policy_document(load_stage("prod"))
    log_group = package.resource("aws_cloudwatch_log_group", "changes_pre_traffic_hook")
    assert log_group["name"] == "/aws/lambda/CodeDeployHook_${var.consumer_function_name}"


def test_make_release_tf_releases_both_functions_each_with_its_hook_and_a_timeout(package: Package) -> None:
    releases = single(package.files["deploy.tf"]["output"])["Releases"]["value"]
    assert [(r["function_name"], r["hook"], r["deployment_group"]) for r in releases] == [
        (
            "${aws_lambda_function.api_handler.function_name}",
            "${aws_lambda_function.pre_traffic_hook.function_name}",
            "${aws_codedeploy_deployment_group.live.deployment_group_name}",
        ),
        (
            "${aws_lambda_function.user_changes.function_name}",
            "${aws_lambda_function.changes_pre_traffic_hook.function_name}",
            "${aws_codedeploy_deployment_group.changes_live.deployment_group_name}",
        ),
    ]
    for entry in releases:  # what release_tf.overall_timeout_s reads
        assert {"hook_timeout", "deployment_config", "target_version", "alias", "application"} <= set(entry)


@pytest.mark.parametrize(("hook", "probes"), [("pre_traffic_hook", len(PROBES)), ("changes_pre_traffic_hook", 1)])
def test_each_hooks_worst_case_is_well_under_its_timeout(package: Package, hook: str, probes: int) -> None:
    timeout = package.chalice["resource"]["aws_lambda_function"][hook]["timeout"]
    assert worst_case_s(probes) <= TIMEOUT_SHARE * timeout


def test_the_deploy_docs_say_how_to_destroy_around_prevent_destroy(package: Package) -> None:
    """`terraform destroy` stops on the first prevent_destroy: docs/DEPLOY.md's `state rm` must name
    every such resource, and the logging role, which Terraform (unlike CloudFormation) would delete."""
    docs = (PROJECT_DIR / "docs" / "DEPLOY.md").read_text()
    command = docs[docs.index("terraform state rm") : docs.index("terraform destroy\n```")]
    protected = [
        f"{kind}.{name}"
        for (kind, name), body in package.resources().items()
        if any(block.get("prevent_destroy") for block in body.get("lifecycle", []))
    ]
    assert len(protected) == 6
    kept = [*protected, "aws_iam_role.api_gateway_cloudwatch", "aws_api_gateway_account.this"]
    assert [name for name in kept if name not in command] == []
    assert not single(package.resource("aws_iam_role", "api_gateway_cloudwatch").get("lifecycle", [{}])).get(
        "prevent_destroy"
    )


def test_the_role_policy_names_this_stacks_pool(package: Package) -> None:
    policy = json.loads(package.chalice["resource"]["aws_iam_role_policy"]["api_handler_role"]["policy"])
    (cognito,) = [s for s in policy["Statement"] if s["Sid"] == "OwnUserPool"]
    assert cognito["Resource"] == "${aws_cognito_user_pool.users.arn}"
    assert "userpool/*" not in json.dumps(policy)


# --- Change events (events.tf, the consumer's overrides) -------------------------------------------


def test_the_consumer_reads_the_users_stream_with_partial_batch_responses_retries_and_a_dead_letter_queue(
    package: Package,
) -> None:
    chalice = package.chalice["resource"]
    # The other mapping is the bulk jobs worker's queue (tests/infra/test_bulk_jobs_infra.py).
    assert set(chalice["aws_lambda_event_source_mapping"]) == {
        "user_changes-dynamodb-event-source",
        "bulk_jobs-sqs-event-source",
    }
    name = "user_changes-dynamodb-event-source"
    mapping = chalice["aws_lambda_event_source_mapping"][name]
    # Packaging replaced the stand-in: the users table's own stream, from its oldest record.
    assert mapping["event_source_arn"] == "${aws_dynamodb_table.users.stream_arn}"
    assert mapping["starting_position"] == "TRIM_HORIZON"
    assert mapping["function_name"] == "${aws_lambda_function.user_changes.arn}"
    override = package.override("aws_lambda_event_source_mapping", name)
    # The override reads with the consumer's `live` alias, which only CodeDeploy moves.
    assert override["function_name"] == "${aws_lambda_alias.user_changes_live.arn}"
    limits = package.limits["change_events"]
    assert override["function_response_types"] == ["ReportBatchItemFailures"]
    assert package.value(override["maximum_retry_attempts"]) == limits["maximum_retry_attempts"] == 5
    assert override["bisect_batch_on_function_error"] is True
    assert package.value(override["maximum_record_age_in_seconds"]) == limits["maximum_record_age_seconds"]
    destination = single(single(override["destination_config"])["on_failure"])
    assert destination["destination_arn"] == "${aws_sqs_queue.change_dead_letters.arn}"
    filters = single(single(override["filter_criteria"])["dynamic"])["filter"]
    assert filters["for_each"] == "${local.limits.change_events.filters}"
    assert single(filters["content"])["pattern"] == "${jsonencode(filter.value)}"
    assert "aws_cloudwatch_log_group.user_changes" in override["tags"]


def test_the_consumer_is_named_has_its_own_policy_and_what_it_writes_to(package: Package) -> None:
    function = package.override("aws_lambda_function", "user_changes")
    assert function["function_name"] == "${var.consumer_function_name}"
    assert package.tfvars["consumer_function_name"] == load_stage("prod").consumer_function_name
    variables = single(function["environment"])["variables"]
    for expected in (
        "aws_cognito_user_pool.users.arn",
        "aws_s3_bucket.avatars.bucket",
        "aws_dynamodb_table.audit.name",
        "aws_cloudwatch_event_bus.changes.name",
        'REPORT_BATCH_ITEM_FAILURES = "true"',
    ):
        assert expected in variables
    policies = package.chalice["resource"]["aws_iam_role_policy"]
    assert json.loads(policies["user_changes_role"]["policy"].replace("$${", "${")) == consumer_policy_document(
        load_stage("prod")
    )
    log_group = package.resource("aws_cloudwatch_log_group", "user_changes")
    assert log_group["name"] == "/aws/lambda/${var.consumer_function_name}"


def test_audit_table_bus_and_dead_letter_queue(package: Package) -> None:
    audit = package.resource("aws_dynamodb_table", "audit")
    keys = [
        {"AttributeName": audit["hash_key"], "KeyType": "HASH"},
        {"AttributeName": audit["range_key"], "KeyType": "RANGE"},
    ]
    assert keys == AUDIT_KEY_SCHEMA
    assert single(audit["ttl"]) == {"attribute_name": "expiresAt", "enabled": True}
    assert single(audit["point_in_time_recovery"]) == {"enabled": True}
    assert audit["deletion_protection_enabled"] is True
    assert single(audit["lifecycle"])["prevent_destroy"] is True
    assert audit["name"] == "${var.audit_table_name}"
    assert package.tfvars["audit_table_name"] == "users-api-prod-audit"
    assert package.resource("aws_cloudwatch_event_bus", "changes")["name"] == "${var.event_bus_name}"
    queue = package.resource("aws_sqs_queue", "change_dead_letters")
    assert queue["sqs_managed_sse_enabled"] is True
    assert package.value(queue["message_retention_seconds"]) == 14 * 24 * 3600
    age = package.metric_alarms()["change_consumer_iterator_age"]
    assert age["statistic"] == "Maximum" and age["threshold"] == 300000
    assert age["dimensions"] == {"FunctionName": "${aws_lambda_function.user_changes.function_name}"}
