"""The merge template for `chalice package --merge-template`: everything a production stage
needs that Chalice does not generate, and the changes Chalice's own resources need.

Chalice emits the function (`APIHandler`), its role, the REST API (`RestAPI`, a SAM API with a
swagger body) and the invoke permission; this template deep-merges into those by logical id
and adds the rest. Numbers come from infra/limits.json, which the Terraform files read too.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from chalicelib.adapters.table_schema import (
    AUDIT_ATTRIBUTE_DEFINITIONS,
    AUDIT_KEY_SCHEMA,
    FINAL_STEP,
    KEY_SCHEMA,
    STREAM_VIEW_TYPE,
    TTL_ATTRIBUTE,
    attribute_definitions,
    global_secondary_indexes,
)
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.traffic_hook import API_STAGE_ENV, TARGET_ENV
from infra.gateway_responses import EXTENSION as GATEWAY_RESPONSES
from infra.gateway_responses import gateway_responses
from infra.invitation import invitation
from infra.policies import MAIL_ACTIONS, changes_hook_policy_document, hook_policy_document, policy_document
from infra.release import PATTERN as RELEASE_VERSION_PATTERN
from infra.stages import Stage, aws_properties, load_limits

Json = dict[str, Any]

ALIAS = "live"
HOOK = "PreTrafficHook"  # Chalice's logical id for app.py's pre_traffic_hook
CHANGES_HOOK = "ChangesPreTrafficHook"  # ... for app.py's changes_pre_traffic_hook
CONSUMER = "UserChanges"  # Chalice's logical id for app.py's user_changes (@app.on_dynamodb_record)
CONSUMER_EVENT = f"{CONSUMER}DynamodbEventSource"  # its SAM event, which Chalice names so
ROLLBACK_ALARMS = ("RollbackLambdaErrorsAlarm", "RollbackApi5xxRateAlarm")
# The consumer's own: a crash of its live alias, or a batch given up on (a new dead letter).
CONSUMER_ROLLBACK_ALARMS = ("RollbackChangeConsumerErrorsAlarm", "RollbackChangeDeadLettersAlarm")
NO_VALUE = {"Ref": "AWS::NoValue"}
LAMBDA_PROXY_URI = (
    "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Alias}/invocations"
)
# SAM resolves `Ref: <function>.Alias` to the alias it publishes (but not `${<function>.Alias}` in a Sub string).
ALIAS_REF = {"Ref": "APIHandler.Alias"}


def _sub(text: str) -> Json:
    return {"Fn::Sub": text}


def _ref(name: str) -> Json:
    return {"Ref": name}


def _get_att(name: str, attribute: str) -> Json:
    return {"Fn::GetAtt": [name, attribute]}


def _tag_list(stage: Stage) -> list[Json]:
    return [{"Key": key, "Value": value} for key, value in sorted(stage.tags.items())]


def _log_group(name: str | Json, days: int, stage: Stage) -> Json:
    return {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {"LogGroupName": name, "RetentionInDays": days, "Tags": _tag_list(stage)},
    }


def proxied_routes(stage: Stage) -> list[tuple[str, str]]:
    """(path, method) of every route the function serves; CORS preflights are API Gateway mocks.
    The app is imported with the stage's settings in a process of its own (infra/packaging.py)."""
    from infra.packaging import app_routes

    return app_routes(stage)


SES_IDENTITY_ARN_PATTERN = r"^$|^arn:aws[a-z-]*:ses:[a-z0-9-]+:[0-9]{12}:identity/\S+$"


def _email_parameters(stage: Stage) -> Json:
    """How the pool sends mail: Cognito's own email by default, which deploys anywhere; an SES
    identity for the custom invitation (Cognito allows a custom email message only with SES)."""
    return {
        "SesIdentityArn": {
            "Type": "String",
            "Default": stage.ses_identity_arn,
            "AllowedPattern": SES_IDENTITY_ARN_PATTERN,
            "Description": "A verified SES identity the pool sends its mail (the invitation) with; empty: Cognito's "
            "own email (at most 50 messages a day per account, Cognito's own invitation text).",
        },
        "EmailFrom": {
            "Type": "String",
            "Default": stage.email_from,
            "Description": "With SesIdentityArn: the From of the pool's mail, e.g. 'Users API <no-reply@example.com>'; "
            "empty: the identity's address.",
        },
    }


def _email_conditions() -> Json:
    return {
        "SendsMailWithSes": {"Fn::Not": [{"Fn::Equals": [_ref("SesIdentityArn"), ""]}]},
        "HasEmailFrom": {
            "Fn::And": [{"Condition": "SendsMailWithSes"}, {"Fn::Not": [{"Fn::Equals": [_ref("EmailFrom"), ""]}]}]
        },
    }


def _parameters(stage: Stage) -> Json:
    parameters: Json = {
        "ReleaseVersion": {
            "Type": "String",
            "Default": "0.0.0",
            "AllowedPattern": RELEASE_VERSION_PATTERN,
            "Description": "The release deployed (its git tag, e.g. v1.4.0): recorded in the stack's ReleaseVersion "
            "output, which the deploy compares before it deploys (ops/release_version.py).",
        },
        **_email_parameters(stage),
        "AlarmEmail": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": r"^$|^[^@\s]+@[^@\s]+$",
            "Description": "Optional address subscribed to the alarm topic (it must confirm the subscription).",
        },
        "ProvisionedConcurrency": {
            "Type": "Number",
            "Default": stage.provisioned_concurrency,
            "MinValue": 0,
            "Description": "Provisioned concurrency on the `live` alias; 0 turns it off (it is billed per hour).",
        },
    }
    if stage.waf:
        parameters["GeoBlockCountries"] = {
            "Type": "CommaDelimitedList",
            "Default": "",
            "Description": "ISO 3166 country codes the web ACL blocks; empty leaves the geo rule out.",
        }
    return parameters


def _api_policy(stage: Stage) -> Json:
    """The API function's policy, naming this stack's pool, and sending with the SES identity the
    stack is given (the code of a user's email change), only when it is given one."""
    document = policy_document(replace(stage, ses_identity_arn=""), _get_att("UserPool", "Arn"))
    mail = {
        "Sid": "SendEmailChangeCodes",
        "Effect": "Allow",
        "Action": list(MAIL_ACTIONS),
        "Resource": _ref("SesIdentityArn"),
    }
    document["Statement"].append({"Fn::If": ["SendsMailWithSes", mail, NO_VALUE]})
    return document


def _conditions(stage: Stage) -> Json:
    conditions: Json = {
        **_email_conditions(),
        "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [_ref("AlarmEmail"), ""]}]},
        "HasProvisionedConcurrency": {"Fn::Not": [{"Fn::Equals": [_ref("ProvisionedConcurrency"), "0"]}]},
    }
    if stage.waf:
        conditions["HasGeoBlock"] = {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", _ref("GeoBlockCountries")]}, ""]}]}
    return conditions


# Stateful resources are kept when the stack is deleted or a change would replace them.
RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


def _table(
    stage: Stage, name: str, key_schema: list[Json], attribute_definitions: list[Json], **properties: Any
) -> Json:
    """A table as every table of the API is kept: on demand, items expired by TTL, point-in-time
    recovery, encrypted, protected from deletion and retained."""
    return {
        "Type": "AWS::DynamoDB::Table",
        **RETAIN,
        "Properties": {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": key_schema,
            "AttributeDefinitions": attribute_definitions,
            **properties,
            "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "DeletionProtectionEnabled": True,
            "Tags": _tag_list(stage),
        },
    }


def _data(stage: Stage, limits: Json, index_step: int = FINAL_STEP) -> Json:
    """Stateful resources: kept when the stack is deleted or a change would replace them.
    `index_step`: the users table's indexes at that step of an upgrade (table_schema.UPGRADE_STEPS:
    CloudFormation adds or removes one index per stack update)."""
    return {
        "UsersTable": _table(
            stage,
            stage.table_name,
            KEY_SCHEMA,
            attribute_definitions(index_step),
            GlobalSecondaryIndexes=global_secondary_indexes(index_step),
            StreamSpecification={"StreamViewType": STREAM_VIEW_TYPE},
        ),
        "UserPool": {
            "Type": "AWS::Cognito::UserPool",
            **RETAIN,
            "Properties": {
                "UserPoolName": stage.user_pool_name,
                "UsernameAttributes": ["email"],
                "UsernameConfiguration": {"CaseSensitive": False},
                "AutoVerifiedAttributes": ["email"],
                "Schema": [{"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True}],
                "Policies": {"PasswordPolicy": limits["password_policy"]},
                # Users are created by admins (POST /users makes the sign-in and its record); the
                # invitation carries a temporary password, changed at the first sign-in. Its text is
                # ours only with SES: Cognito refuses a custom email message on its own email.
                "AdminCreateUserConfig": {
                    "AllowAdminCreateUserOnly": True,
                    "InviteMessageTemplate": {"Fn::If": ["SendsMailWithSes", invitation(limits), NO_VALUE]},
                },
                "EmailConfiguration": {
                    "Fn::If": [
                        "SendsMailWithSes",
                        {
                            "EmailSendingAccount": "DEVELOPER",
                            "SourceArn": _ref("SesIdentityArn"),
                            "From": {"Fn::If": ["HasEmailFrom", _ref("EmailFrom"), NO_VALUE]},
                        },
                        {"EmailSendingAccount": "COGNITO_DEFAULT"},
                    ]
                },
                "UserAttributeUpdateSettings": aws_properties(limits["user_attribute_update_settings"]),
                "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]},
                "MfaConfiguration": "OPTIONAL",
                "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
                "DeletionProtection": "ACTIVE",
                "UserPoolTags": stage.tags,
            },
        },
        "UserPoolClient": {
            "Type": "AWS::Cognito::UserPoolClient",
            "Properties": {
                "ClientName": stage.api_name,
                "UserPoolId": _ref("UserPool"),
                "GenerateSecret": False,
                **aws_properties(limits["user_pool_client"]),
                "PreventUserExistenceErrors": "ENABLED",
                "EnableTokenRevocation": True,
                "AccessTokenValidity": 60,
                "IdTokenValidity": 60,
                "RefreshTokenValidity": 30,
                "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"},
            },
        },
        "AdminsGroup": {
            "Type": "AWS::Cognito::UserPoolGroup",
            "Properties": {
                "GroupName": ADMIN_GROUP,
                "Description": "May manage every user",
                "UserPoolId": _ref("UserPool"),
            },
        },
        # The key that signs list cursors: generated by Secrets Manager, never in the template.
        # Retained: deleting it only schedules its deletion, and its name stays taken for up to
        # 30 days, so a new stack of the same stage could not create it.
        "CursorSecret": {
            "Type": "AWS::SecretsManager::Secret",
            **RETAIN,
            "Properties": {
                "Name": stage.cursor_secret_name,
                "Description": "HMAC key that makes list cursors tamper-evident",
                "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True},
                "Tags": _tag_list(stage),
            },
        },
    }


def _change_storage(stage: Stage, limits: Json) -> Json:
    """Where change events go: the audit table (retained, like the users table), the stage's bus and
    the consumer's dead-letter queue."""
    return {
        # Entries expire RETENTION_DAYS after their change (chalicelib/domain/history.py).
        "AuditTable": _table(stage, stage.audit_table_name, AUDIT_KEY_SCHEMA, AUDIT_ATTRIBUTE_DEFINITIONS),
        "ChangeEventBus": {
            "Type": "AWS::Events::EventBus",
            "Properties": {"Name": stage.event_bus_name, "Tags": _tag_list(stage)},
        },
        "ChangeDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": stage.dead_letter_queue_name,
                "MessageRetentionPeriod": limits["change_events"]["dead_letter_retention_seconds"],
                "SqsManagedSseEnabled": True,
                "Tags": _tag_list(stage),
            },
        },
    }


def _jobs() -> Any:
    """The bulk jobs' resources (infra/cloudformation_jobs.py), imported when used: it imports this module."""
    from infra import cloudformation_jobs

    return cloudformation_jobs


def _avatar_storage(stage: Stage, limits: Json) -> Json:
    """The avatar bucket: private, encrypted, TLS only, reachable from the stage's origin.

    SSE-S3, not KMS: browsers upload and download through presigned URLs, and a KMS key would add
    a KMS request (and kms:* rights for the role) to each of them for no gain in who can read.
    Unversioned: deleting a user must really delete the avatar, and a versioned bucket would keep
    it as a noncurrent version; an upload replaces the one key a user has.
    """
    bucket = limits["avatar_bucket"]
    objects = _sub("${AvatarBucket.Arn}/*")
    # The bulk jobs' files live here too, under imports/ and exports/ (infra/cloudformation_jobs.py).
    notification, job_file_rules = _jobs().bucket_changes(limits)
    return {
        "AvatarBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            # S3 checks that it may notify the queue when the notification is set.
            "DependsOn": [_jobs().QUEUE_POLICY],
            "Properties": {
                "BucketName": _sub(stage.avatar_bucket_name("${AWS::AccountId}")),
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
                "CorsConfiguration": {
                    "CorsRules": [
                        {
                            "AllowedOrigins": [stage.cors_origin],
                            "AllowedMethods": bucket["cors_methods"],
                            "ExposedHeaders": ["ETag"],
                            "MaxAge": bucket["cors_max_age_seconds"],
                        }
                    ]
                },
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "AbortIncompleteMultipartUploads",
                            "Status": "Enabled",
                            "AbortIncompleteMultipartUpload": {
                                "DaysAfterInitiation": bucket["abort_incomplete_multipart_days"]
                            },
                        },
                        *job_file_rules,
                    ]
                },
                "NotificationConfiguration": notification,
                "Tags": _tag_list(stage),
            },
        },
        "AvatarBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": _ref("AvatarBucket"),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "TlsOnly",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [_get_att("AvatarBucket", "Arn"), objects],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                        {
                            "Sid": "Tls12OrLater",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [_get_att("AvatarBucket", "Arn"), objects],
                            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
                        },
                    ],
                },
            },
        },
    }


def _function(stage: Stage) -> Json:
    """Changes to Chalice's function: fixed name (the role's log permission names it), the
    deployment's own pool and secret, and a `live` alias that API Gateway invokes."""
    return {
        # Chalice names this group's function `${ApiHandler}` after renaming the function to
        # APIHandler, so its template does not deploy (aws/chalice#2079): name it here, and create
        # it before the function so no log line lands in a group without retention.
        "ApiHandlerLogGroup": {"Properties": {"LogGroupName": f"/aws/lambda/{stage.function_name}"}},
        "APIHandler": {
            "DependsOn": ["ApiHandlerLogGroup"],
            "Properties": {
                "FunctionName": stage.function_name,
                "AutoPublishAlias": ALIAS,
                # Each new version gets traffic through CodeDeploy: the hook first, then the
                # stage's shifting (a 10 % canary in prod), undone if a rollback alarm fires.
                "DeploymentPreference": {
                    "Type": stage.traffic_shifting,
                    "Alarms": [_ref(name) for name in ROLLBACK_ALARMS],
                    "Hooks": {"PreTraffic": _ref(HOOK)},
                },
                "ProvisionedConcurrencyConfig": {
                    "Fn::If": [
                        "HasProvisionedConcurrency",
                        {"ProvisionedConcurrentExecutions": _ref("ProvisionedConcurrency")},
                        NO_VALUE,
                    ]
                },
                "Environment": {
                    "Variables": {
                        "USER_POOL_ID": _ref("UserPool"),
                        "USER_POOL_CLIENT_ID": _ref("UserPoolClient"),
                        "USER_POOL_ARN": _get_att("UserPool", "Arn"),
                        "CURSOR_SECRET_ARN": _ref("CursorSecret"),
                        "AVATAR_BUCKET": _ref("AvatarBucket"),
                        # The same name as config.json's; the reference orders the table first.
                        "AUDIT_TABLE_NAME": _ref("AuditTable"),
                        "JOBS_QUEUE_URL": _ref(_jobs().QUEUE),
                        # Which release this version is (its logs and `aws lambda get-function-configuration`
                        # say it); and a new release is always a new version, released through the hook.
                        "RELEASE_VERSION": _ref("ReleaseVersion"),
                        # The sender of the code confirming a user's new email (SES): none, no such mail.
                        "MAIL_FROM": {"Fn::If": ["HasEmailFrom", _ref("EmailFrom"), ""]},
                    }
                },
            },
        },
        # The role's Cognito grant names this stack's pool (the static policy file cannot).
        "ApiHandlerRole": {
            "Properties": {
                "Policies": [
                    {
                        "PolicyName": "ApiHandlerRolePolicy",
                        "PolicyDocument": _api_policy(stage),
                    }
                ]
            }
        },
        "APIHandlerInvokePermission": {
            "Properties": {
                "FunctionName": ALIAS_REF,
                # Only our stage may invoke it (Chalice allows every stage of the API: `${RestAPI}/*`).
                "SourceArn": _sub(
                    f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{RestAPI}}/{stage.api_stage}/*"
                ),
            }
        },
    }


def _hook(stage: Stage, logical_id: str, function_name: str, target: str, policy: Json) -> Json:
    """Changes to a hook function Chalice packages (app.py, @app.lambda_function): the name CodeDeploy's
    role may invoke, the version to test (`target`, the logical id whose `.Version` SAM publishes in
    this update), and its role policy."""
    return {
        # Chalice names the group after the function by reference; a literal name lets the function
        # depend on it, so no log line lands in a group without retention.
        f"{logical_id}LogGroup": {"Properties": {"LogGroupName": f"/aws/lambda/{function_name}"}},
        logical_id: {
            "DependsOn": [f"{logical_id}LogGroup"],
            "Properties": {
                "FunctionName": function_name,
                "Environment": {
                    "Variables": {
                        # SAM resolves this to the version it publishes in this update.
                        TARGET_ENV: _ref(f"{target}.Version"),
                        API_STAGE_ENV: stage.api_stage,
                        # app.py declares the routes when the hook imports it; the pool must be real.
                        "USER_POOL_ARN": _get_att("UserPool", "Arn"),
                    }
                },
            },
        },
        f"{logical_id}Role": {
            "Properties": {"Policies": [{"PolicyName": f"{logical_id}RolePolicy", "PolicyDocument": policy}]}
        },
    }


def _deployment_group(function: str) -> Json:
    """The deployment group SAM generates for `function`'s DeploymentPreference."""
    return _sub(
        "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:"
        f"${{ServerlessDeploymentApplication}}/${{{function}DeploymentGroup}}"
    )


def _pre_traffic_hooks(stage: Stage) -> Json:
    """The API function's hook (API Gateway probes) and the consumer's (a synthetic stream batch),
    each reporting only to its own function's deployment group."""
    return {
        **_hook(
            stage,
            HOOK,
            stage.hook_function_name,
            "APIHandler",
            hook_policy_document(stage, _deployment_group("APIHandler")),
        ),
        **_hook(
            stage,
            CHANGES_HOOK,
            stage.changes_hook_function_name,
            CONSUMER,
            changes_hook_policy_document(stage, _deployment_group(CONSUMER)),
        ),
    }


def _consumer(stage: Stage, limits: Json) -> Json:
    """Changes to the consumer Chalice packages (app.py, @app.on_dynamodb_record): its name, what it
    writes to, and the mapping settings the decorator has no arguments for: partial batch
    responses, bounded retries with bisection, the dead-letter queue and the record filter."""
    changes = limits["change_events"]
    return {
        f"{CONSUMER}LogGroup": {"Properties": {"LogGroupName": f"/aws/lambda/{stage.consumer_function_name}"}},
        CONSUMER: {
            "DependsOn": [f"{CONSUMER}LogGroup"],
            "Properties": {
                "FunctionName": stage.consumer_function_name,
                # As the API function: each update publishes a version, and the mapping reads the
                # stream with the `live` alias, which CodeDeploy moves after the consumer's own
                # hook, by the stage's shifting, undone if one of the consumer's alarms fires.
                "AutoPublishAlias": ALIAS,
                "DeploymentPreference": {
                    "Type": stage.traffic_shifting,
                    "Alarms": [_ref(name) for name in CONSUMER_ROLLBACK_ALARMS],
                    "Hooks": {"PreTraffic": _ref(CHANGES_HOOK)},
                },
                "Environment": {
                    "Variables": {
                        # app.py declares the routes when the consumer imports it; the pool must be real.
                        "USER_POOL_ARN": _get_att("UserPool", "Arn"),
                        "AVATAR_BUCKET": _ref("AvatarBucket"),
                        "AUDIT_TABLE_NAME": _ref("AuditTable"),
                        "EVENT_BUS_NAME": _ref("ChangeEventBus"),
                        "REPORT_BATCH_ITEM_FAILURES": "true",
                    }
                },
                "Events": {
                    CONSUMER_EVENT: {
                        "Properties": {
                            "Stream": _get_att("UsersTable", "StreamArn"),
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                            "MaximumRetryAttempts": changes["maximum_retry_attempts"],
                            "BisectBatchOnFunctionError": True,
                            "MaximumRecordAgeInSeconds": changes["maximum_record_age_seconds"],
                            "DestinationConfig": {
                                "OnFailure": {"Destination": _get_att("ChangeDeadLetterQueue", "Arn")}
                            },
                            "FilterCriteria": {
                                "Filters": [
                                    {"Pattern": json.dumps(pattern, separators=(",", ":"))}
                                    for pattern in changes["filters"]
                                ]
                            },
                        }
                    }
                },
            },
        },
    }


def _method_path(path: str) -> str:
    # Stage method settings escape "/" in the resource path as "~1".
    return "/" + path.replace("/", "~1")


def _method_settings(stage: Stage, limits: Json) -> list[Json]:
    # A method-level entry replaces the stage-wide one for that method, so each restates it all.
    common = {
        "MetricsEnabled": True,
        "LoggingLevel": "ERROR",
        # Data traces would log request and response bodies: user data.
        "DataTraceEnabled": False,
        "ThrottlingBurstLimit": limits["stage_throttle"]["burst_limit"],
        "ThrottlingRateLimit": limits["stage_throttle"]["rate_limit"],
    }
    settings: list[Json] = [{"ResourcePath": "/*", "HttpMethod": "*", "CachingEnabled": False, **common}]
    if stage.api_cache:
        settings += [
            {
                "ResourcePath": _method_path(route["path"]),
                "HttpMethod": route["method"],
                "CachingEnabled": True,
                "CacheTtlInSeconds": route["ttl_seconds"],
                "CacheDataEncrypted": True,
                **common,
            }
            for route in limits["cache"]["routes"]
        ]
    return settings


def _api(stage: Stage, limits: Json) -> Json:
    integration = {"x-amazon-apigateway-integration": {"uri": {"Fn::Sub": [LAMBDA_PROXY_URI, {"Alias": ALIAS_REF}]}}}
    paths: Json = {}
    for path, method in proxied_routes(stage):
        paths.setdefault(path, {})[method] = integration
    properties: Json = {
        "Name": stage.api_name,
        # Without it the SAM transform gives the deployment `StageName: Stage`, a second live stage
        # beside ours with no WAF, throttling, cache or access logs (aws/chalice#1655). Any value
        # removes it; 2.0 is what Chalice's swagger body is, so the body is left as it is.
        "OpenApiVersion": "2.0",
        "TracingEnabled": True,
        "MethodSettings": _method_settings(stage, limits),
        "AccessLogSetting": {
            "DestinationArn": _get_att("ApiAccessLogGroup", "Arn"),
            "Format": json.dumps(limits["access_log_format"], separators=(",", ":")),
        },
        "CacheClusterEnabled": stage.api_cache,
        "Tags": stage.tags,
        "DefinitionBody": {
            GATEWAY_RESPONSES: gateway_responses(stage, limits),
            "paths": paths,
            "securityDefinitions": {
                "CognitoUserPool": {"x-amazon-apigateway-authorizer": {"providerARNs": [_get_att("UserPool", "Arn")]}}
            },
        },
    }
    if stage.api_cache:
        properties["CacheClusterSize"] = limits["cache"]["cluster_size_gb"]
    return {
        # Access logging needs API Gateway's account-wide CloudWatch role (one per account and region).
        "RestAPI": {"DependsOn": ["ApiGatewayAccount"], "Properties": properties},
        "ApiAccessLogGroup": _log_group(f"/aws/apigateway/{stage.api_name}", stage.api_log_retention_days, stage),
        # Execution (error) logs: API Gateway would create this group itself, without retention.
        "ApiExecutionLogGroup": _log_group(
            _sub(f"API-Gateway-Execution-Logs_${{RestAPI}}/{stage.api_stage}"), stage.api_log_retention_days, stage
        ),
        "ApiGatewayCloudWatchRole": {
            "Type": "AWS::IAM::Role",
            # Other APIs in the account may log through this role after this stack is gone.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "apigateway.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "ManagedPolicyArns": [
                    _sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
                ],
                "Tags": _tag_list(stage),
            },
        },
        "ApiGatewayAccount": {
            "Type": "AWS::ApiGateway::Account",
            "Properties": {"CloudWatchRoleArn": _get_att("ApiGatewayCloudWatchRole", "Arn")},
        },
    }


def _usage_plan(stage: Stage, limits: Json) -> Json:
    plan = limits["usage_plan"]
    return {
        "ApiUsagePlan": {
            "Type": "AWS::ApiGateway::UsagePlan",
            "Properties": {
                "UsagePlanName": stage.api_name,
                "Description": "Clients of the users API: throttled and with a daily quota",
                "Throttle": {"BurstLimit": plan["burst_limit"], "RateLimit": plan["rate_limit"]},
                "Quota": {"Limit": plan["quota_limit"], "Period": plan["quota_period"]},
                "ApiStages": [{"ApiId": _ref("RestAPI"), "Stage": _ref("RestAPI.Stage")}],
                "Tags": _tag_list(stage),
            },
        },
        "ApiKey": {
            "Type": "AWS::ApiGateway::ApiKey",
            "Properties": {
                "Description": f"Client key for {stage.api_name} (rotate: see docs/DEPLOY.md)",
                "Enabled": True,
                "Tags": _tag_list(stage),
            },
        },
        "ApiUsagePlanKey": {
            "Type": "AWS::ApiGateway::UsagePlanKey",
            "Properties": {"KeyId": _ref("ApiKey"), "KeyType": "API_KEY", "UsagePlanId": _ref("ApiUsagePlan")},
        },
    }


def _visibility(metric: str) -> Json:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": metric}


def _block(status: int, body_key: str) -> Json:
    return {"Block": {"CustomResponse": {"ResponseCode": status, "CustomResponseBodyKey": body_key}}}


def _waf(stage: Stage, limits: Json) -> Json:
    waf = limits["waf"]
    rules: list[Json] = [
        {
            "Name": "RateLimitPerIp",
            "Priority": 0,
            "Statement": {
                "RateBasedStatement": {
                    "Limit": waf["rate_limit_per_ip"],
                    "EvaluationWindowSec": waf["rate_window_seconds"],
                    "AggregateKeyType": "IP",
                }
            },
            "Action": _block(429, "too-many-requests"),
            "VisibilityConfig": _visibility("RateLimitPerIp"),
        },
        {
            # WAF inspects only the first part of a body; MATCH makes a longer body match
            # (and be blocked) instead of passing the rules below uninspected.
            "Name": "BodySizeLimit",
            "Priority": 1,
            "Statement": {
                "SizeConstraintStatement": {
                    "FieldToMatch": {"Body": {"OversizeHandling": "MATCH"}},
                    "ComparisonOperator": "GT",
                    "Size": waf["max_body_bytes"],
                    "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
                }
            },
            "Action": _block(413, "too-large"),
            "VisibilityConfig": _visibility("BodySizeLimit"),
        },
        {
            "Fn::If": [
                "HasGeoBlock",
                {
                    "Name": "GeoBlock",
                    "Priority": 2,
                    "Statement": {"GeoMatchStatement": {"CountryCodes": _ref("GeoBlockCountries")}},
                    "Action": {"Block": {}},
                    "VisibilityConfig": _visibility("GeoBlock"),
                },
                NO_VALUE,
            ]
        },
    ]
    rules += [
        {
            "Name": group,
            "Priority": 10 + index,
            "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}},
            "OverrideAction": {"None": {}},
            "VisibilityConfig": _visibility(group),
        }
        for index, group in enumerate(waf["managed_rule_groups"])
    ]
    waf_log_group = f"aws-waf-logs-{stage.api_name}"  # WAF requires this prefix
    return {
        "WebAcl": {
            "Type": "AWS::WAFv2::WebACL",
            "Properties": {
                "Name": stage.api_name,
                "Scope": "REGIONAL",
                "DefaultAction": {"Allow": {}},
                "CustomResponseBodies": {
                    "too-many-requests": {
                        "ContentType": "APPLICATION_JSON",
                        "Content": '{"error":"Too many requests"}',
                    },
                    "too-large": {"ContentType": "APPLICATION_JSON", "Content": '{"error":"Request body too large"}'},
                },
                "Rules": rules,
                "VisibilityConfig": _visibility(stage.api_name),
                "Tags": _tag_list(stage),
            },
        },
        "WebAclAssociation": {
            "Type": "AWS::WAFv2::WebACLAssociation",
            "Properties": {
                "ResourceArn": _sub(
                    "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestAPI}/stages/${RestAPI.Stage}"
                ),
                "WebACLArn": _get_att("WebAcl", "Arn"),
            },
        },
        "WafLogGroup": _log_group(waf_log_group, stage.api_log_retention_days, stage),
        "WafLogging": {
            "Type": "AWS::WAFv2::LoggingConfiguration",
            "Properties": {
                "ResourceArn": _get_att("WebAcl", "Arn"),
                # WAF wants the log group ARN without the ":*" that GetAtt returns.
                "LogDestinationConfigs": [
                    _sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${WafLogGroup}")
                ],
                "RedactedFields": [
                    {"SingleHeader": {"Name": "authorization"}},
                    {"SingleHeader": {"Name": "x-api-key"}},
                ],
            },
        },
    }


def _alarm(description: str, spec: Json, metric: Json) -> Json:
    periods = spec["evaluation_periods"]
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": spec["threshold"],
            "EvaluationPeriods": periods,
            "DatapointsToAlarm": periods,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [_ref("AlarmTopic")],
            "OKActions": [_ref("AlarmTopic")],
            **metric,
        },
    }


def metric_alarms(limits: Json, dimensions: Json) -> Json:
    """Every single-metric alarm (limits.json metric_alarms, which Terraform's monitoring.tf builds
    from too), by logical id; `dimensions`: each set of dimensions an alarm may watch, by name."""
    sections = {
        "alarms": limits["alarms"],
        "rollback_alarms": limits["rollback_alarms"],
        "change_events": limits["change_events"]["alarms"],
        "bulk_jobs": limits["bulk_jobs"]["alarms"],
    }
    resources: Json = {}
    for alarm in limits["metric_alarms"].values():
        section, key = alarm["limits"]
        spec = sections[section][key]
        statistic = alarm["statistic"]
        resources[alarm["logical_id"]] = _alarm(
            alarm["description"],
            spec,
            {
                "Namespace": alarm["namespace"],
                "MetricName": alarm["metric"],
                "Dimensions": dimensions[alarm["dimensions"]],
                "Period": spec["period_seconds"],
                ("ExtendedStatistic" if statistic.startswith("p") else "Statistic"): statistic,
            },
        )
    return resources


def _monitoring(stage: Stage, limits: Json) -> Json:
    alarms = limits["alarms"]
    function = [{"Name": "FunctionName", "Value": _ref("APIHandler")}]
    consumer = [{"Name": "FunctionName", "Value": _ref(CONSUMER)}]
    dimensions = {
        "function": function,
        # The live alias's own metric, not the whole function's.
        "function_live": [*function, {"Name": "Resource", "Value": _sub(f"${{APIHandler}}:{ALIAS}")}],
        "api": [{"Name": "ApiName", "Value": stage.api_name}, {"Name": "Stage", "Value": stage.api_stage}],
        "consumer": consumer,
        "consumer_live": [*consumer, {"Name": "Resource", "Value": _sub(f"${{{CONSUMER}}}:{ALIAS}")}],
        "dead_letters": [{"Name": "QueueName", "Value": _get_att("ChangeDeadLetterQueue", "QueueName")}],
        "job_worker": [{"Name": "FunctionName", "Value": _ref(_jobs().WORKER)}],
        "job_dead_letters": [{"Name": "QueueName", "Value": _get_att(_jobs().DEAD_LETTERS, "QueueName")}],
    }
    resources = metric_alarms(limits, dimensions)
    assert set(ROLLBACK_ALARMS) | set(CONSUMER_ROLLBACK_ALARMS) <= set(resources)
    dynamo = alarms["dynamodb_throttled_requests"]
    dynamo_metrics: list[Json] = [
        {
            "Id": f"m{index}",
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/DynamoDB",
                    "MetricName": "ThrottledRequests",
                    "Dimensions": [
                        {"Name": "TableName", "Value": _ref("UsersTable")},
                        {"Name": "Operation", "Value": operation},
                    ],
                },
                "Period": dynamo["period_seconds"],
                "Stat": "Sum",
            },
        }
        for index, operation in enumerate(dynamo["operations"])
    ]
    dynamo_metrics.append(
        {
            "Id": "throttled",
            "Label": "Throttled requests, all operations",
            "Expression": "SUM(METRICS())",
            "ReturnData": True,
        }
    )
    return {
        "AlarmTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": f"{stage.api_name}-alarms", "Tags": _tag_list(stage)},
        },
        "AlarmEmailSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasAlarmEmail",
            "Properties": {"TopicArn": _ref("AlarmTopic"), "Protocol": "email", "Endpoint": _ref("AlarmEmail")},
        },
        **resources,
        "DynamoDbThrottlesAlarm": _alarm(
            "DynamoDB throttled requests on the users table", dynamo, {"Metrics": dynamo_metrics}
        ),
    }


def _outputs(stage: Stage) -> Json:
    outputs: Json = {
        "ApiEndpoint": {
            "Description": "Base URL of the API stage",
            "Value": _sub(f"https://${{RestAPI}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{stage.api_stage}/"),
        },
        "UsersTableName": {"Value": _ref("UsersTable")},
        "FunctionArn": {"Value": _get_att("APIHandler", "Arn")},
        "UserPoolId": {"Value": _ref("UserPool")},
        "UserPoolClientId": {"Value": _ref("UserPoolClient")},
        "CursorSecretArn": {"Value": _ref("CursorSecret")},
        "AvatarBucketName": {"Value": _ref("AvatarBucket")},
        "AlarmTopicArn": {"Value": _ref("AlarmTopic")},
        "AuditTableName": {"Value": _ref("AuditTable")},
        "EventBusName": {"Value": _ref("ChangeEventBus")},
        "ChangeDeadLetterQueueUrl": {"Value": _ref("ChangeDeadLetterQueue")},
        **_jobs().outputs(),
        "ReleaseVersion": {
            "Description": "The release the stack runs; a deploy of an older one is refused (ops/release_version.py)",
            "Value": _ref("ReleaseVersion"),
        },
    }
    if stage.require_api_key:
        outputs["ApiKeyId"] = {
            "Description": "aws apigateway get-api-key --include-value --api-key <id>",
            "Value": _ref("ApiKey"),
        }
    return outputs


def merge_template(stage: Stage, index_step: int = FINAL_STEP) -> Json:
    limits = load_limits()
    resources: Json = {
        **_data(stage, limits, index_step),
        **_change_storage(stage, limits),
        **_avatar_storage(stage, limits),
        **_jobs().job_storage(stage, limits, _table, _tag_list(stage)),
        **_function(stage),
        **_pre_traffic_hooks(stage),
        **_consumer(stage, limits),
        **_jobs().worker(stage),
        **_api(stage, limits),
        **_monitoring(stage, limits),
    }
    if stage.require_api_key:
        resources.update(_usage_plan(stage, limits))
    if stage.waf:
        resources.update(_waf(stage, limits))
    return {
        "Parameters": _parameters(stage),
        "Conditions": _conditions(stage),
        "Resources": resources,
        "Outputs": _outputs(stage),
    }


def base_template(stage: Stage, index_step: int = FINAL_STEP) -> Json:
    """A stand-alone stack for the `chalice deploy` path, which creates only the functions, roles,
    API and the consumer's event source mapping: the table, pool, secret, avatar bucket, audit table,
    bus, dead-letter queue and the function's log group (with its retention)."""
    limits = load_limits()
    resources = {
        **_data(stage, limits, index_step),
        **_change_storage(stage, limits),
        **_avatar_storage(stage, limits),
        **_jobs().job_storage(stage, limits, _table, _tag_list(stage)),
        "FunctionLogGroup": _log_group(f"/aws/lambda/{stage.function_name}", stage.lambda_log_retention_days, stage),
    }
    outputs = {
        name: {"Value": value, "Description": f"Set {env} in .chalice/config.json, stage {stage.name}"}
        for name, env, value in (
            ("UserPoolId", "USER_POOL_ID", _ref("UserPool")),
            ("UserPoolClientId", "USER_POOL_CLIENT_ID", _ref("UserPoolClient")),
            ("UserPoolArn", "USER_POOL_ARN", _get_att("UserPool", "Arn")),
            ("CursorSecretArn", "CURSOR_SECRET_ARN", _ref("CursorSecret")),
            ("AvatarBucketName", "AVATAR_BUCKET", _ref("AvatarBucket")),
            ("UsersTableStreamArn", "USERS_STREAM_ARN", _get_att("UsersTable", "StreamArn")),
            ("JobQueueUrl", "JOBS_QUEUE_URL", _ref(_jobs().QUEUE)),
        )
    }
    outputs["UsersTableName"] = {"Value": _ref("UsersTable")}
    outputs["ChangeDeadLetterQueueUrl"] = {"Value": _ref("ChangeDeadLetterQueue")}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"users-api {stage.name}: data, identity, secret, avatar bucket and change storage for "
        "`chalice deploy`",
        "Parameters": _email_parameters(stage),
        "Conditions": _email_conditions(),
        "Resources": resources,
        "Outputs": outputs,
    }
