"""`make release-tf`: the CodeDeploy deployment it asks for, with fake clients."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.release_tf import SLACK_S, TIMED_OUT, ReleaseError, appspec, overall_timeout_s, release, shifting_s

SPEC = {
    "function_name": "users-api-prod",
    "alias": "live",
    "target_version": "8",
    "hook": "CodeDeployHook_users-api-prod",
    "hook_timeout": "300",
    "application": "users-api-prod",
    "deployment_group": "live",
    "deployment_config": "CodeDeployDefault.LambdaCanary10Percent5Minutes",
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
        self.stopped: list[dict[str, Any]] = []

    def stop_deployment(self, **kwargs: Any) -> dict[str, str]:
        self.stopped.append(kwargs)
        return {"status": "Pending"}

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


class Clock:
    """Time that passes only when the release sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_deployment_that_never_finishes_is_stopped_with_rollback_at_the_overall_timeout() -> None:
    clock, said = Clock(), list[str]()
    codedeploy = FakeCodeDeploy(["InProgress"] * 10_000)
    status = release(SPEC, FakeLambda("7"), codedeploy, said.append, sleep=clock.sleep, clock=clock)
    assert status == TIMED_OUT
    assert codedeploy.stopped == [{"deploymentId": "d-TEST12345", "autoRollbackEnabled": True}]
    assert clock.now == overall_timeout_s(SPEC) == 300 + 5 * 60 + SLACK_S
    assert "still InProgress after 1200 s: stopped" in said[-1] and "back to version 7" in said[-1]


def test_a_given_timeout_replaces_the_computed_one() -> None:
    clock = Clock()
    codedeploy = FakeCodeDeploy(["InProgress"] * 100)
    assert release(SPEC, FakeLambda("7"), codedeploy, print, clock.sleep, 60, clock) == TIMED_OUT
    assert clock.now == 60


@pytest.mark.parametrize(
    ("config", "seconds"),
    [
        ("CodeDeployDefault.LambdaAllAtOnce", 0),
        ("CodeDeployDefault.LambdaCanary10Percent5Minutes", 300),
        ("CodeDeployDefault.LambdaCanary10Percent30Minutes", 1800),
        ("CodeDeployDefault.LambdaLinear10PercentEvery1Minute", 600),
        ("CodeDeployDefault.LambdaLinear10PercentEvery10Minutes", 6000),
    ],
)
def test_the_shift_lasts_what_the_configuration_says(config: str, seconds: int) -> None:
    assert shifting_s(config) == seconds


def test_an_unknown_configuration_asks_for_a_timeout() -> None:
    with pytest.raises(ReleaseError, match="TIMEOUT="):
        shifting_s("MyOwnConfig")
