"""`make release-tf`: the CodeDeploy deployment it asks for, with fake clients."""

from __future__ import annotations

import json
from typing import Any

from infra.release_tf import appspec, release

SPEC = {
    "function_name": "users-api-prod",
    "alias": "live",
    "target_version": "8",
    "hook": "CodeDeployHook_users-api-prod",
    "application": "users-api-prod",
    "deployment_group": "live",
}


class FakeLambda:
    def __init__(self, version: str) -> None:
        self.version = version

    def get_alias(self, FunctionName: str, Name: str) -> dict[str, str]:
        assert (FunctionName, Name) == ("users-api-prod", "live")
        return {"FunctionVersion": self.version}


class FakeCodeDeploy:
    def __init__(self, statuses: list[str], error: str = "") -> None:
        self.statuses, self.error = statuses, error
        self.created: list[dict[str, Any]] = []

    def create_deployment(self, **kwargs: Any) -> dict[str, str]:
        self.created.append(kwargs)
        return {"deploymentId": "d-TEST12345"}

    def get_deployment(self, deploymentId: str) -> dict[str, Any]:
        return {"deploymentInfo": {"status": self.statuses.pop(0), "errorInformation": {"message": self.error}}}


def test_the_appspec_moves_the_alias_from_the_current_to_the_new_version_after_the_hook() -> None:
    spec = json.loads(appspec(SPEC, "7"))
    assert spec["Resources"] == [
        {
            "users-api-prod": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Name": "users-api-prod", "Alias": "live", "CurrentVersion": "7", "TargetVersion": "8"},
            }
        }
    ]
    assert spec["Hooks"] == [{"BeforeAllowTraffic": "CodeDeployHook_users-api-prod"}]


def test_a_release_waits_for_codedeploy_and_reports_its_outcome() -> None:
    codedeploy, said = FakeCodeDeploy(["Created", "InProgress", "Succeeded"]), list[str]()
    assert release(SPEC, FakeLambda("7"), codedeploy, said.append, sleep=lambda _: None) == "Succeeded"
    (created,) = codedeploy.created
    assert (created["applicationName"], created["deploymentGroupName"]) == ("users-api-prod", "live")
    assert json.loads(created["revision"]["appSpecContent"]["content"]) == json.loads(appspec(SPEC, "7"))
    assert said[-1] == "d-TEST12345: Succeeded"


def test_a_rolled_back_release_says_why() -> None:
    codedeploy, said = FakeCodeDeploy(["InProgress", "Stopped"], "alarm RollbackApi5xxRateAlarm fired"), list[str]()
    assert release(SPEC, FakeLambda("7"), codedeploy, said.append, sleep=lambda _: None) == "Stopped"
    assert "alarm RollbackApi5xxRateAlarm fired" in said[-1]


def test_nothing_is_deployed_when_the_alias_already_serves_the_version() -> None:
    codedeploy, said = FakeCodeDeploy([]), list[str]()
    assert release(SPEC, FakeLambda("8"), codedeploy, said.append) == "Succeeded"
    assert codedeploy.created == []
    assert "nothing to release" in said[0]
