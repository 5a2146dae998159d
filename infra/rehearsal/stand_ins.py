"""CloudFormation resource types that moto's CloudFormation does not create, created the way
CloudFormation's own providers do: by calling the service's API (here the emulator's, which moto
implements) with the template's properties. The types moto has but whose properties it partly
ignores get the rest applied the same way (COMPLETIONS).

Each stand-in does what the templates of this project ask of its type, not every property the type
has: a property it does not know fails the stack instead of being dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.core.common_models import CloudFormationModel

# Set by the emulator when it starts; the stand-ins call the emulator's own APIs.
ENDPOINT = [""]
# The emulator serves one request at a time; a stand-in's requests come while CloudFormation's holds
# that turn, so they carry this header to be let through.
PROVIDER_HEADER = "X-Rehearsal-Provider"
PROVIDER_HEADER_ENVIRON = "HTTP_X_REHEARSAL_PROVIDER"


def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    made = boto3.client(
        service,
        endpoint_url=ENDPOINT[0],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )

    def mark(request: Any, **_: Any) -> None:
        request.headers[PROVIDER_HEADER] = "1"

    made.meta.events.register("before-sign.*.*", mark)
    return made


class UnknownProperty(Exception):
    pass


def _only(props: dict[str, Any], known: set[str], resource_type: str) -> None:
    unknown = set(props) - known
    if unknown:
        raise UnknownProperty(f"{resource_type}: the rehearsal's stand-in does not apply {sorted(unknown)}")


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase properties as the camelCase some APIs (API Gateway, CodeDeploy) take."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _without_no_value(value: Any) -> Any:
    """`AWS::NoValue` removes the property or list item that holds it; moto's resolver leaves a None there."""
    if isinstance(value, dict):
        return {key: _without_no_value(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_no_value(item) for item in value if item is not None]
    return value


def _tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}


class StandIn(CloudFormationModel):  # type: ignore[misc]
    """A resource made through the emulator's API: its physical id (what `Ref` gives) and attributes."""

    TYPE = ""
    ATTRIBUTES: tuple[str, ...] = ()
    KNOWN: frozenset[str] = frozenset()

    def __init__(self, physical_id: str, attributes: dict[str, Any], props: dict[str, Any], name: str) -> None:
        self.physical_id = physical_id
        self.attributes = attributes
        self.props = props
        self.name = name

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.attributes:
            raise UnknownProperty(f"{self.TYPE}: the rehearsal's stand-in has no attribute {attribute_name}")
        return self.attributes[attribute_name]

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> StandIn:
        props = _without_no_value(cloudformation_json.get("Properties", {}))
        _only(props, set(cls.KNOWN), cls.TYPE)
        physical_id, attributes = cls.create(props, resource_name)
        return cls(physical_id, attributes, props, resource_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[override]
        cls,
        original_resource: StandIn,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> StandIn:
        props = _without_no_value(cloudformation_json.get("Properties", {}))
        if props == original_resource.props:
            return original_resource
        _only(props, set(cls.KNOWN), cls.TYPE)
        return cls.update(original_resource, props)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        raise NotImplementedError  # deleted through `delete` on the instance

    def delete(self, account_id: str, region_name: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.remove()
        except ClientError as failure:
            # Already gone with its parent (a function's versions and aliases, an application's
            # groups): CloudFormation deletes dependents first, moto's stack deletion in any order.
            code = failure.response.get("Error", {}).get("Code", "")
            if not any(word in code for word in ("NotFound", "DoesNotExist", "NoSuch")):
                raise

    # What each type does.
    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    @classmethod
    def update(cls, original: StandIn, props: dict[str, Any]) -> StandIn:
        """Replacement, CloudFormation's answer to most changes: create the new one, delete the old one."""
        replacement = cls.create_from_cloudformation_json(original.name, {"Properties": props}, "", "")
        original.remove()
        return replacement

    def remove(self) -> None:
        raise NotImplementedError


class UserPool(StandIn):
    TYPE = "AWS::Cognito::UserPool"
    ATTRIBUTES = ("Arn", "ProviderName", "ProviderURL", "UserPoolId")
    KNOWN = frozenset(
        {
            "UserPoolName",
            "UsernameAttributes",
            "UsernameConfiguration",
            "AutoVerifiedAttributes",
            "Schema",
            "Policies",
            "AdminCreateUserConfig",
            "AccountRecoverySetting",
            "MfaConfiguration",
            "EnabledMfas",
            "DeletionProtection",
            "UserPoolTags",
            "EmailConfiguration",
            "VerificationMessageTemplate",
            "UserAttributeUpdateSettings",
        }
    )

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        idp = client("cognito-idp")
        params = {k: v for k, v in props.items() if k not in ("UserPoolName", "MfaConfiguration", "EnabledMfas")}
        pool = idp.create_user_pool(PoolName=props.get("UserPoolName", name), **params)["UserPool"]
        cls._mfa(pool["Id"], props)
        provider = f"cognito-idp.us-east-1.amazonaws.com/{pool['Id']}"
        return pool["Id"], {
            "Arn": pool["Arn"],
            "ProviderName": provider,
            "ProviderURL": f"https://{provider}",
            "UserPoolId": pool["Id"],
        }

    @staticmethod
    def _mfa(pool_id: str, props: dict[str, Any]) -> None:
        # CloudFormation's MfaConfiguration and EnabledMfas are the API's SetUserPoolMfaConfig.
        if props.get("MfaConfiguration", "OFF") != "OFF":
            client("cognito-idp").set_user_pool_mfa_config(
                UserPoolId=pool_id,
                MfaConfiguration=props["MfaConfiguration"],
                SoftwareTokenMfaConfiguration={"Enabled": "SOFTWARE_TOKEN_MFA" in props.get("EnabledMfas", [])},
            )

    @classmethod
    def update(cls, original: StandIn, props: dict[str, Any]) -> StandIn:
        # In place: UpdateUserPool with every setting (it resets the ones left out).
        keep = (
            "UsernameAttributes",
            "UsernameConfiguration",
            "Schema",
            "UserPoolName",
            "MfaConfiguration",
            "EnabledMfas",
        )
        params = {k: v for k, v in props.items() if k not in keep}
        client("cognito-idp").update_user_pool(UserPoolId=original.physical_id, **params)
        cls._mfa(original.physical_id, props)
        return cls(original.physical_id, original.attributes, props, original.name)

    def remove(self) -> None:
        client("cognito-idp").delete_user_pool(UserPoolId=self.physical_id)


class UserPoolClient(StandIn):
    TYPE = "AWS::Cognito::UserPoolClient"
    ATTRIBUTES = ("ClientId", "Name")
    KNOWN = frozenset(
        {
            "ClientName",
            "UserPoolId",
            "GenerateSecret",
            "ExplicitAuthFlows",
            "ReadAttributes",
            "WriteAttributes",
            "PreventUserExistenceErrors",
            "EnableTokenRevocation",
            "AccessTokenValidity",
            "IdTokenValidity",
            "RefreshTokenValidity",
            "TokenValidityUnits",
        }
    )

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        made = client("cognito-idp").create_user_pool_client(**{"ClientName": name, **props})["UserPoolClient"]
        return made["ClientId"], {"ClientId": made["ClientId"], "Name": made["ClientName"]}

    def remove(self) -> None:
        client("cognito-idp").delete_user_pool_client(UserPoolId=self.props["UserPoolId"], ClientId=self.physical_id)


class UserPoolGroup(StandIn):
    TYPE = "AWS::Cognito::UserPoolGroup"
    KNOWN = frozenset({"GroupName", "Description", "UserPoolId", "Precedence", "RoleArn"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        made = client("cognito-idp").create_group(**{"GroupName": name, **props})["Group"]
        return made["GroupName"], {}

    def remove(self) -> None:
        client("cognito-idp").delete_group(UserPoolId=self.props["UserPoolId"], GroupName=self.physical_id)


class Secret(StandIn):
    TYPE = "AWS::SecretsManager::Secret"
    ATTRIBUTES = ("Id",)
    KNOWN = frozenset({"Name", "Description", "GenerateSecretString", "SecretString", "KmsKeyId", "Tags"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        secrets = client("secretsmanager")
        value = props.get("SecretString")
        if "GenerateSecretString" in props:
            options = dict(props["GenerateSecretString"])
            if "SecretStringTemplate" in options or "GenerateStringKey" in options:
                raise UnknownProperty(f"{cls.TYPE}: JSON secret templates are not applied by the stand-in")
            value = secrets.get_random_password(**options)["RandomPassword"]
        params = {k: v for k, v in props.items() if k in ("Description", "KmsKeyId", "Tags")}
        arn = secrets.create_secret(Name=props.get("Name", name), SecretString=value, **params)["ARN"]
        return arn, {"Id": arn}

    def remove(self) -> None:
        client("secretsmanager").delete_secret(SecretId=self.physical_id, ForceDeleteWithoutRecovery=True)


class BucketPolicy(StandIn):
    TYPE = "AWS::S3::BucketPolicy"
    KNOWN = frozenset({"Bucket", "PolicyDocument"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"]))
        return props["Bucket"], {}

    def remove(self) -> None:
        client("s3").delete_bucket_policy(Bucket=self.physical_id)


class QueuePolicy(StandIn):
    """The job queue's policy (infra/cloudformation_jobs.py): the bucket may send it new import files."""

    TYPE = "AWS::SQS::QueuePolicy"
    KNOWN = frozenset({"Queues", "PolicyDocument"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        for url in props["Queues"]:
            client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
        return name, {}

    def remove(self) -> None:
        for url in self.props["Queues"]:
            _unless_gone(lambda url=url: client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""}))


class Alarm(StandIn):
    TYPE = "AWS::CloudWatch::Alarm"
    ATTRIBUTES = ("Arn",)
    KNOWN = frozenset(
        {
            "AlarmName",
            "AlarmDescription",
            "ActionsEnabled",
            "AlarmActions",
            "OKActions",
            "InsufficientDataActions",
            "ComparisonOperator",
            "Threshold",
            "EvaluationPeriods",
            "DatapointsToAlarm",
            "TreatMissingData",
            "Namespace",
            "MetricName",
            "Dimensions",
            "Period",
            "Statistic",
            "ExtendedStatistic",
            "Unit",
            "Metrics",
        }
    )

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        alarm_name = props.get("AlarmName", name)
        params = {k: v for k, v in props.items() if k != "AlarmName"}
        client("cloudwatch").put_metric_alarm(AlarmName=alarm_name, **params)
        return alarm_name, {"Arn": f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm_name}"}

    @classmethod
    def update(cls, original: StandIn, props: dict[str, Any]) -> StandIn:
        if props.get("AlarmName", original.physical_id) != original.physical_id:
            return super().update(original, props)
        params = {k: v for k, v in props.items() if k != "AlarmName"}
        client("cloudwatch").put_metric_alarm(AlarmName=original.physical_id, **params)
        return cls(original.physical_id, original.attributes, props, original.name)

    def remove(self) -> None:
        client("cloudwatch").delete_alarms(AlarmNames=[self.physical_id])


class Subscription(StandIn):
    TYPE = "AWS::SNS::Subscription"
    KNOWN = frozenset({"TopicArn", "Protocol", "Endpoint"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        arn = client("sns").subscribe(**props, ReturnSubscriptionArn=True)["SubscriptionArn"]
        return arn, {}

    def remove(self) -> None:
        client("sns").unsubscribe(SubscriptionArn=self.physical_id)


class ApiGatewayAccount(StandIn):
    TYPE = "AWS::ApiGateway::Account"
    KNOWN = frozenset({"CloudWatchRoleArn"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        client("apigateway").update_account(
            patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": props["CloudWatchRoleArn"]}]
        )
        return name, {}

    @classmethod
    def update(cls, original: StandIn, props: dict[str, Any]) -> StandIn:
        cls.create(props, original.name)
        return cls(original.physical_id, {}, props, original.name)

    def remove(self) -> None:
        """CloudFormation leaves the account's setting as it is when the resource goes."""


# Method settings: CloudFormation's property -> the stage's patch path after /{resource}/{method}/.
_METHOD_SETTINGS = {
    "MetricsEnabled": "metrics/enabled",
    "LoggingLevel": "logging/loglevel",
    "DataTraceEnabled": "logging/dataTrace",
    "ThrottlingBurstLimit": "throttling/burstLimit",
    "ThrottlingRateLimit": "throttling/rateLimit",
    "CachingEnabled": "caching/enabled",
    "CacheTtlInSeconds": "caching/ttlInSeconds",
    "CacheDataEncrypted": "caching/dataEncrypted",
}


def _stage_patches(props: dict[str, Any]) -> list[dict[str, str]]:
    patches = []
    for setting in props.get("MethodSettings", []):
        prefix = f"{setting['ResourcePath']}/{setting['HttpMethod']}"
        for key, path in _METHOD_SETTINGS.items():
            if key in setting:
                value = str(setting[key]).lower() if isinstance(setting[key], bool) else str(setting[key])
                patches.append({"op": "replace", "path": f"{prefix}/{path}", "value": value})
        unknown = set(setting) - set(_METHOD_SETTINGS) - {"ResourcePath", "HttpMethod"}
        if unknown:
            raise UnknownProperty(f"AWS::ApiGateway::Stage: method settings {sorted(unknown)} are not applied")
    if "AccessLogSetting" in props:
        log = props["AccessLogSetting"]
        patches += [
            {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": log["DestinationArn"]},
            {"op": "replace", "path": "/accessLogSettings/format", "value": log["Format"]},
        ]
    return patches


class Stage(StandIn):
    TYPE = "AWS::ApiGateway::Stage"
    KNOWN = frozenset(
        {
            "RestApiId",
            "StageName",
            "DeploymentId",
            "Description",
            "CacheClusterEnabled",
            "CacheClusterSize",
            "TracingEnabled",
            "Variables",
            "Tags",
            "MethodSettings",
            "AccessLogSetting",
        }
    )

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        apigateway = client("apigateway")
        params: dict[str, Any] = {
            "restApiId": props["RestApiId"],
            "stageName": props["StageName"],
            "deploymentId": props["DeploymentId"],
            "cacheClusterEnabled": bool(props.get("CacheClusterEnabled", False)),
            "tracingEnabled": bool(props.get("TracingEnabled", False)),
            "tags": _tag_dict(props.get("Tags")),
        }
        for key, api_key in (("CacheClusterSize", "cacheClusterSize"), ("Description", "description")):
            if key in props:
                params[api_key] = props[key]
        if "Variables" in props:
            params["variables"] = props["Variables"]
        apigateway.create_stage(**params)
        patches = _stage_patches(props)
        if patches:
            apigateway.update_stage(restApiId=props["RestApiId"], stageName=props["StageName"], patchOperations=patches)
        return props["StageName"], {}

    @classmethod
    def update(cls, original: StandIn, props: dict[str, Any]) -> StandIn:
        patches = [{"op": "replace", "path": "/deploymentId", "value": props["DeploymentId"]}, *_stage_patches(props)]
        client("apigateway").update_stage(
            restApiId=props["RestApiId"], stageName=props["StageName"], patchOperations=patches
        )
        return cls(original.physical_id, {}, props, original.name)

    def remove(self) -> None:
        client("apigateway").delete_stage(restApiId=self.props["RestApiId"], stageName=self.physical_id)


class EventBus(StandIn):
    """moto's own AWS::Events::EventBus gives `Ref` the object, not its name."""

    TYPE = "AWS::Events::EventBus"
    ATTRIBUTES = ("Arn", "Name")
    KNOWN = frozenset({"Name", "Description", "Tags"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        bus = props.get("Name", name)
        arn = client("events").create_event_bus(**{"Name": bus, **{k: v for k, v in props.items() if k != "Name"}})
        return bus, {"Arn": arn["EventBusArn"], "Name": bus}

    def remove(self) -> None:
        client("events").delete_event_bus(Name=self.physical_id)


class Deployment(StandIn):
    """moto's own AWS::ApiGateway::Deployment gives `Ref` the object, not its id."""

    TYPE = "AWS::ApiGateway::Deployment"
    KNOWN = frozenset({"RestApiId", "Description", "StageName"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        params = {"restApiId": props["RestApiId"], "description": props.get("Description", "")}
        if "StageName" in props:
            params["stageName"] = props["StageName"]
        return client("apigateway").create_deployment(**params)["id"], {}

    def remove(self) -> None:
        client("apigateway").delete_deployment(restApiId=self.props["RestApiId"], deploymentId=self.physical_id)


class ApiKey(StandIn):
    TYPE = "AWS::ApiGateway::ApiKey"
    ATTRIBUTES = ("APIKeyId",)
    KNOWN = frozenset({"Name", "Description", "Enabled", "Value", "Tags"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"name": props.get("Name", name), "enabled": bool(props.get("Enabled", False))}
        for key in ("Description", "Value"):
            if key in props:
                params[key.lower()] = props[key]
        made = client("apigateway").create_api_key(**params, tags=_tag_dict(props.get("Tags")))
        return made["id"], {"APIKeyId": made["id"]}

    def remove(self) -> None:
        client("apigateway").delete_api_key(apiKey=self.physical_id)


class UsagePlan(StandIn):
    TYPE = "AWS::ApiGateway::UsagePlan"
    ATTRIBUTES = ("Id",)
    KNOWN = frozenset({"UsagePlanName", "Description", "Throttle", "Quota", "ApiStages", "Tags"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"name": props.get("UsagePlanName", name), "tags": _tag_dict(props.get("Tags"))}
        for key in ("Description", "Throttle", "Quota", "ApiStages"):
            if key in props:
                params[key[:1].lower() + key[1:]] = _camel(props[key])
        made = client("apigateway").create_usage_plan(**params)
        return made["id"], {"Id": made["id"]}

    def remove(self) -> None:
        client("apigateway").delete_usage_plan(usagePlanId=self.physical_id)


class UsagePlanKey(StandIn):
    TYPE = "AWS::ApiGateway::UsagePlanKey"
    KNOWN = frozenset({"KeyId", "KeyType", "UsagePlanId"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        client("apigateway").create_usage_plan_key(
            usagePlanId=props["UsagePlanId"], keyId=props["KeyId"], keyType=props["KeyType"]
        )
        return props["KeyId"], {}

    def remove(self) -> None:
        client("apigateway").delete_usage_plan_key(usagePlanId=self.props["UsagePlanId"], keyId=self.physical_id)


class Alias(StandIn):
    """The alias. Its CodeDeployLambdaAliasUpdate update policy (the pre-traffic hook, the canary and the
    rollback alarms) is CodeDeploy's to run: here an update moves the alias at once, as AllAtOnce
    with no hook would, and says so in its description."""

    TYPE = "AWS::Lambda::Alias"
    ATTRIBUTES = ("AliasArn",)
    KNOWN = frozenset({"Name", "FunctionName", "FunctionVersion", "Description", "ProvisionedConcurrencyConfig"})
    MOVED_WITHOUT_CODEDEPLOY = "moved by the rehearsal's emulator; CodeDeploy did not run"

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        awslambda = client("lambda")
        made = awslambda.create_alias(
            FunctionName=props["FunctionName"],
            Name=props["Name"],
            FunctionVersion=props["FunctionVersion"],
            Description=props.get("Description", ""),
        )
        cls._provisioned(props)
        return made["AliasArn"], {"AliasArn": made["AliasArn"]}

    @staticmethod
    def _provisioned(props: dict[str, Any]) -> None:
        config = props.get("ProvisionedConcurrencyConfig")
        if config:
            client("lambda").put_provisioned_concurrency_config(
                FunctionName=props["FunctionName"],
                Qualifier=props["Name"],
                ProvisionedConcurrentExecutions=int(config["ProvisionedConcurrentExecutions"]),
            )

    @classmethod
    def update(cls, original: StandIn, props: dict[str, Any]) -> StandIn:
        client("lambda").update_alias(
            FunctionName=props["FunctionName"],
            Name=props["Name"],
            FunctionVersion=props["FunctionVersion"],
            Description=cls.MOVED_WITHOUT_CODEDEPLOY,
        )
        cls._provisioned(props)
        return cls(original.physical_id, original.attributes, props, original.name)

    def remove(self) -> None:
        _unless_gone(
            lambda: client("lambda").delete_alias(FunctionName=self.props["FunctionName"], Name=self.props["Name"])
        )


def _unless_gone(remove: Callable[[], Any]) -> None:
    """A removal of something of a resource (a Lambda function's alias or version, a queue's policy)
    which the stack may have deleted already (it deletes in its own order, which varies from run
    to run): nothing left to remove then. moto's answer may not even parse, so its text is what
    tells."""
    try:
        remove()
    except Exception as gone:
        text = str(gone).lower()
        if "not found" not in text and "does not exist" not in text:
            raise


class Version(StandIn):
    """moto's own AWS::Lambda::Version has no attributes (`Fn::GetAtt [..., Version]`, which SAM's alias uses)."""

    TYPE = "AWS::Lambda::Version"
    ATTRIBUTES = ("Version", "FunctionArn")
    KNOWN = frozenset({"FunctionName", "Description", "CodeSha256"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        made = client("lambda").publish_version(**props)
        return made["FunctionArn"], {"Version": made["Version"], "FunctionArn": made["FunctionArn"]}

    def remove(self) -> None:
        function, _, version = self.physical_id.rpartition(":")
        _unless_gone(lambda: client("lambda").delete_function(FunctionName=function, Qualifier=version))


class CodeDeployApplication(StandIn):
    TYPE = "AWS::CodeDeploy::Application"
    KNOWN = frozenset({"ApplicationName", "ComputePlatform"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        application = props.get("ApplicationName", name)
        client("codedeploy").create_application(
            applicationName=application, computePlatform=props.get("ComputePlatform", "Server")
        )
        return application, {}

    def remove(self) -> None:
        client("codedeploy").delete_application(applicationName=self.physical_id)


class CodeDeployDeploymentGroup(StandIn):
    TYPE = "AWS::CodeDeploy::DeploymentGroup"
    KNOWN = frozenset(
        {
            "ApplicationName",
            "DeploymentGroupName",
            "DeploymentConfigName",
            "ServiceRoleArn",
            "AlarmConfiguration",
            "AutoRollbackConfiguration",
            "DeploymentStyle",
        }
    )

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        group = props.get("DeploymentGroupName", name)
        params = _camel({k: v for k, v in props.items() if k != "DeploymentGroupName"})
        client("codedeploy").create_deployment_group(deploymentGroupName=group, **params)
        return group, {}

    def remove(self) -> None:
        client("codedeploy").delete_deployment_group(
            applicationName=self.props["ApplicationName"], deploymentGroupName=self.physical_id
        )


class WebAcl(StandIn):
    TYPE = "AWS::WAFv2::WebACL"
    ATTRIBUTES = ("Arn", "Id", "LabelNamespace")
    KNOWN = frozenset(
        {"Name", "Scope", "DefaultAction", "Description", "Rules", "VisibilityConfig", "CustomResponseBodies", "Tags"}
    )

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        acl_name = props.get("Name", name)
        made = client("wafv2").create_web_acl(**{"Name": acl_name, **{k: v for k, v in props.items() if k != "Name"}})
        summary = made["Summary"]
        attributes = {
            "Arn": summary["ARN"],
            "Id": summary["Id"],
            "LabelNamespace": f"awswaf:123456789012:webacl:{acl_name}:",
        }
        return f"{acl_name}|{summary['Id']}|{props['Scope']}", attributes

    def remove(self) -> None:
        waf = client("wafv2")
        name, acl_id, scope = self.physical_id.split("|")
        token = waf.get_web_acl(Name=name, Scope=scope, Id=acl_id)["LockToken"]
        waf.delete_web_acl(Name=name, Scope=scope, Id=acl_id, LockToken=token)


class WebAclAssociation(StandIn):
    TYPE = "AWS::WAFv2::WebACLAssociation"
    KNOWN = frozenset({"ResourceArn", "WebACLArn"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        client("wafv2").associate_web_acl(WebACLArn=props["WebACLArn"], ResourceArn=props["ResourceArn"])
        return f"{props['WebACLArn']}|{props['ResourceArn']}", {}

    def remove(self) -> None:
        client("wafv2").disassociate_web_acl(ResourceArn=self.props["ResourceArn"])


class WafLogging(StandIn):
    TYPE = "AWS::WAFv2::LoggingConfiguration"
    KNOWN = frozenset({"ResourceArn", "LogDestinationConfigs", "RedactedFields", "LoggingFilter"})

    @classmethod
    def create(cls, props: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
        client("wafv2").put_logging_configuration(LoggingConfiguration=props)
        return props["ResourceArn"], {}

    def remove(self) -> None:
        client("wafv2").delete_logging_configuration(ResourceArn=self.physical_id)


STAND_INS: dict[str, type[StandIn]] = {
    cls.TYPE: cls
    for cls in (
        UserPool,
        UserPoolClient,
        UserPoolGroup,
        Secret,
        BucketPolicy,
        QueuePolicy,
        Alarm,
        Subscription,
        ApiGatewayAccount,
        Stage,
        Deployment,
        EventBus,
        ApiKey,
        UsagePlan,
        UsagePlanKey,
        Alias,
        Version,
        CodeDeployApplication,
        CodeDeployDeploymentGroup,
        WebAcl,
        WebAclAssociation,
        WafLogging,
    )
}


# --- properties moto's own CloudFormation models ignore -------------------------------------------


def _table(resource: Any, props: dict[str, Any]) -> None:
    dynamodb = client("dynamodb")
    if "TimeToLiveSpecification" in props:
        dynamodb.update_time_to_live(TableName=resource.name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
    if "PointInTimeRecoverySpecification" in props:
        dynamodb.update_continuous_backups(
            TableName=resource.name, PointInTimeRecoverySpecification=props["PointInTimeRecoverySpecification"]
        )


def _bucket(resource: Any, props: dict[str, Any]) -> None:
    s3 = client("s3")
    bucket = resource.name
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=props["OwnershipControls"])
    if "CorsConfiguration" in props:
        names = {"Id": "ID", "MaxAge": "MaxAgeSeconds", "ExposedHeaders": "ExposeHeaders"}
        rules = [{names.get(k, k): v for k, v in rule.items()} for rule in props["CorsConfiguration"]["CorsRules"]]
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    if "LifecycleConfiguration" in props:
        rules = []
        for rule in props["LifecycleConfiguration"]["Rules"]:
            converted = {("ID" if k == "Id" else k): v for k, v in rule.items()}
            converted.setdefault("Filter", {"Prefix": converted.pop("Prefix", "")})
            if "ExpirationInDays" in converted:
                converted["Expiration"] = {"Days": converted.pop("ExpirationInDays")}
            rules.append(converted)
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    if "NotificationConfiguration" in props:
        # The bulk jobs' notification of new import files to their queue (infra/cloudformation_jobs.py).
        queues = []
        for queue in props["NotificationConfiguration"].get("QueueConfigurations", []):
            rules = [{"Name": r["Name"], "Value": r["Value"]} for r in queue["Filter"]["S3Key"]["Rules"]]
            queues.append(
                {"QueueArn": queue["Queue"], "Events": [queue["Event"]], "Filter": {"Key": {"FilterRules": rules}}}
            )
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queues}
        )


def _rest_api(resource: Any, props: dict[str, Any]) -> None:
    if "Body" in props:
        client("apigateway").put_rest_api(
            restApiId=resource.id, mode="overwrite", body=json.dumps(props["Body"]).encode()
        )


COMPLETIONS: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::S3::Bucket": _bucket,
    "AWS::ApiGateway::RestApi": _rest_api,
}
