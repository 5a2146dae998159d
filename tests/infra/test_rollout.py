"""Releases through CodeDeploy (CloudFormation path): each new version of the API function is
checked by the pre-traffic hook, then gets traffic by the stage's configuration (a 10 % canary in
prod), and is rolled back when an alarm on the live alias or the API's 5XX rate fires.

Asserted on the SAM template and on what the SAM transform makes of it (the DeploymentGroup, the
alias's UpdatePolicy), since the CodeDeploy resources exist only after the transform.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from chalicelib.traffic_hook import API_STAGE_ENV, PROBES, TARGET_ENV, TIMEOUT_SHARE, worst_case_s
from infra.cloudformation import CONSUMER_ROLLBACK_ALARMS, ROLLBACK_ALARMS
from infra.policies import changes_hook_policy_document, hook_policy_document
from infra.stages import DEPLOYED_STAGES, PROJECT_DIR, load_limits, load_stage

Template = dict[str, Any]


@pytest.fixture(scope="module")
def templates(sam_files: dict[str, Any]) -> dict[str, Template]:
    return {name: json.loads(sam.read_text()) for name, sam in sam_files.items()}


def resource(template: Template, name: str) -> Template:
    return dict(template["Resources"][name])


def of_type(template: Template, kind: str) -> dict[str, Template]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_prod_shifts_a_canary_and_the_other_stages_all_at_once(templates: dict[str, Template]) -> None:
    kinds = {
        name: resource(t, "APIHandler")["Properties"]["DeploymentPreference"]["Type"] for name, t in templates.items()
    }
    assert kinds == {"dev": "AllAtOnce", "staging": "AllAtOnce", "prod": "Canary10Percent5Minutes"}


# function -> (its hook, its rollback alarms)
RELEASED = {
    "APIHandler": ("PreTrafficHook", ROLLBACK_ALARMS),
    "UserChanges": ("ChangesPreTrafficHook", CONSUMER_ROLLBACK_ALARMS),
}


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
@pytest.mark.parametrize("function", RELEASED)
def test_codedeploy_runs_the_hook_first_and_rolls_back_on_the_alarms(
    expanded: dict[str, Template], name: str, function: str
) -> None:
    template = expanded[name]
    hook, alarms = RELEASED[function]
    assert set(of_type(template, "AWS::CodeDeploy::DeploymentGroup")) == {f"{f}DeploymentGroup" for f in RELEASED}
    p = resource(template, f"{function}DeploymentGroup")["Properties"]
    assert p["AlarmConfiguration"] == {"Enabled": True, "Alarms": [{"Name": {"Ref": a}} for a in alarms]}
    assert p["AutoRollbackConfiguration"]["Enabled"] is True
    assert {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"} <= set(p["AutoRollbackConfiguration"]["Events"])
    assert p["DeploymentConfigName"]["Fn::Sub"][1] == {"ConfigName": load_stage(name).traffic_shifting}
    alias = resource(template, f"{function}Aliaslive")
    update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["BeforeAllowTrafficHook"] == {"Ref": hook}
    assert update["DeploymentGroupName"] == {"Ref": f"{function}DeploymentGroup"}
    # CodeDeploy's managed role (AWSCodeDeployRoleForLambda) may invoke only CodeDeployHook_* functions.
    assert resource(template, hook)["Properties"]["FunctionName"].startswith("CodeDeployHook_")


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_stream_mapping_invokes_the_consumers_live_alias(expanded: dict[str, Template], name: str) -> None:
    """A new consumer version reads no record before its hook passed and CodeDeploy moved the alias."""
    mappings = of_type(expanded[name], "AWS::Lambda::EventSourceMapping").values()
    # The other mapping is the bulk jobs worker's queue (tests/infra/test_bulk_jobs_infra.py).
    (mapping,) = [m for m in mappings if m["Properties"]["FunctionName"] != {"Ref": "BulkJobs"}]
    assert mapping["Properties"]["FunctionName"] == {"Ref": "UserChangesAliaslive"}
    assert resource(expanded[name], "UserChangesAliaslive")["Properties"]["Name"] == "live"


def test_the_consumers_rollback_alarms_are_its_own_crashes_and_new_dead_letters(templates: dict[str, Template]) -> None:
    prod = templates["prod"]
    errors = resource(prod, "RollbackChangeConsumerErrorsAlarm")["Properties"]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert errors["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "UserChanges"}},
        {"Name": "Resource", "Value": {"Fn::Sub": "${UserChanges}:live"}},
    ]
    letters = resource(prod, "RollbackChangeDeadLettersAlarm")["Properties"]
    # Sent in the minute, not visible: letters waiting for `make replay-dlq` must not block the fix.
    assert (letters["Namespace"], letters["MetricName"], letters["Statistic"]) == (
        "AWS/SQS",
        "NumberOfMessagesSent",
        "Sum",
    )
    assert letters["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ChangeDeadLetterQueue", "QueueName"]}}
    ]
    for alarm in (errors, letters):
        assert (alarm["Threshold"], alarm["Period"], alarm["EvaluationPeriods"]) == (0, 60, 1)
        assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
@pytest.mark.parametrize(("hook", "probes"), [("PreTrafficHook", len(PROBES)), ("ChangesPreTrafficHook", 1)])
def test_each_hooks_worst_case_is_well_under_its_timeout(
    templates: dict[str, Template], name: str, hook: str, probes: int
) -> None:
    """A hook cut off before it reports leaves CodeDeploy waiting about an hour: every probe attempt
    at its full timeouts, the pauses, the report's attempts and the start must fit with room."""
    timeout = resource(templates[name], hook)["Properties"]["Timeout"]
    assert worst_case_s(probes) <= TIMEOUT_SHARE * timeout
    assert (worst_case_s(2), worst_case_s(1), timeout) == (223, 141, 300)


def test_rollback_alarms_watch_the_live_alias_and_the_5xx_rate_per_minute(templates: dict[str, Template]) -> None:
    prod = templates["prod"]
    errors = resource(prod, "RollbackLambdaErrorsAlarm")["Properties"]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    # The alias's own metric (Resource = function:alias), not the whole function's.
    assert errors["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "APIHandler"}},
        {"Name": "Resource", "Value": {"Fn::Sub": "${APIHandler}:live"}},
    ]
    rate = resource(prod, "RollbackApi5xxRateAlarm")["Properties"]
    assert (rate["Namespace"], rate["MetricName"], rate["Statistic"]) == ("AWS/ApiGateway", "5XXError", "Average")
    assert {d["Name"]: d["Value"] for d in rate["Dimensions"]} == {"ApiName": "users-api-prod", "Stage": "api"}
    # Tight enough for a 10 % canary: one crash, or a canary failing a fifth of its requests (2 % overall).
    limits = load_limits()["rollback_alarms"]
    assert (errors["Threshold"], errors["Period"], errors["EvaluationPeriods"]) == (0, 60, 1)
    assert (rate["Threshold"], rate["Period"], rate["EvaluationPeriods"], rate["DatapointsToAlarm"]) == (0.02, 60, 2, 2)
    assert limits["api_5xx_rate"]["threshold"] * 10 <= 0.2
    for alarm in (errors, rate):
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"  # no traffic is no reason to roll back
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_hook_tests_the_new_version_and_is_not_reachable_through_the_api(
    templates: dict[str, Template], expanded: dict[str, Template], name: str
) -> None:
    stage = load_stage(name)
    hook = resource(templates[name], "PreTrafficHook")
    assert hook["Properties"]["Handler"] == "app.pre_traffic_hook"
    assert hook["DependsOn"] == ["PreTrafficHookLogGroup"]
    variables = hook["Properties"]["Environment"]["Variables"]
    assert variables[TARGET_ENV] == {"Ref": "APIHandler.Version"}  # the version this update publishes
    assert variables[API_STAGE_ENV] == stage.api_stage
    assert "Events" not in hook["Properties"]
    group = resource(templates[name], "PreTrafficHookLogGroup")["Properties"]
    assert group["LogGroupName"] == f"/aws/lambda/{stage.hook_function_name}"
    # Nothing of API Gateway's may invoke it: its only permission is for the API function's alias.
    template = expanded[name]
    (permission,) = of_type(template, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["FunctionName"] == {"Ref": "APIHandlerAliaslive"}
    (api,) = of_type(template, "AWS::ApiGateway::RestApi").values()
    assert "PreTrafficHook" not in json.dumps(api["Properties"]["Body"])


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_consumers_hook_tests_the_new_consumer_version_and_reports_to_its_own_group(
    templates: dict[str, Template], expanded: dict[str, Template], name: str
) -> None:
    stage = load_stage(name)
    hook = resource(templates[name], "ChangesPreTrafficHook")
    assert hook["Properties"]["Handler"] == "app.changes_pre_traffic_hook"
    assert hook["Properties"]["FunctionName"] == stage.changes_hook_function_name
    assert hook["DependsOn"] == ["ChangesPreTrafficHookLogGroup"]
    assert hook["Properties"]["Environment"]["Variables"][TARGET_ENV] == {"Ref": "UserChanges.Version"}
    assert "Events" not in hook["Properties"]
    group = resource(templates[name], "ChangesPreTrafficHookLogGroup")["Properties"]
    assert group["LogGroupName"] == f"/aws/lambda/{stage.changes_hook_function_name}"
    (policy,) = resource(templates[name], "ChangesPreTrafficHookRole")["Properties"]["Policies"]
    own_group = {
        "Fn::Sub": "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:"
        "${ServerlessDeploymentApplication}/${UserChangesDeploymentGroup}"
    }
    assert policy["PolicyDocument"] == changes_hook_policy_document(stage, own_group)
    assert expanded[name]["Resources"]["UserChangesDeploymentGroup"]["Type"] == "AWS::CodeDeploy::DeploymentGroup"


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_hooks_role_reports_only_to_the_functions_deployment_group(
    templates: dict[str, Template], expanded: dict[str, Template], name: str
) -> None:
    (policy,) = resource(templates[name], "PreTrafficHookRole")["Properties"]["Policies"]
    group = {
        "Fn::Sub": "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:"
        "${ServerlessDeploymentApplication}/${APIHandlerDeploymentGroup}"
    }
    assert policy["PolicyDocument"] == hook_policy_document(load_stage(name), group)
    # Both names are resources the transform creates.
    assert expanded[name]["Resources"]["ServerlessDeploymentApplication"]["Type"] == "AWS::CodeDeploy::Application"
    assert expanded[name]["Resources"]["APIHandlerDeploymentGroup"]["Type"] == "AWS::CodeDeploy::DeploymentGroup"
    # The API function's own role is untouched by any of this.
    assert "codedeploy" not in json.dumps(resource(templates[name], "ApiHandlerRole"))


def test_the_hook_function_imports_the_app_with_its_template_environment(templates: dict[str, Template]) -> None:
    """app.py declares its routes when the hook imports it, so the hook needs a real pool ARN too."""
    variables = resource(templates["prod"], "PreTrafficHook")["Properties"]["Environment"]["Variables"]
    resolved = {
        "USER_POOL_ARN": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Example1",
        TARGET_ENV: "arn:aws:lambda:us-east-1:123456789012:function:users-api-prod:7",
    }
    assert set(resolved) <= set(variables)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(PROJECT_DIR),
        "AWS_LAMBDA_FUNCTION_NAME": "CodeDeployHook_users-api-prod",
        **{key: value for key, value in variables.items() if isinstance(value, str)},
        **resolved,
    }
    code = "import sys, app; assert callable(app.pre_traffic_hook); print('chalicelib.traffic_hook' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"  # loaded on the first invocation only
