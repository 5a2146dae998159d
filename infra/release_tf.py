"""`make release-tf STAGE=...`: after `terraform apply`, move the `live` alias of each function of a
Terraform stage (the API function, then the stream consumer) to the version the apply published,
through CodeDeploy: the function's pre-traffic hook, then the stage's traffic shifting, rolled back
by CodeDeploy if one of the function's rollback alarms fires (infra/terraform/deploy.tf).

Each release ends within an overall timeout: the hook function's own timeout, plus the time the
deployment configuration shifts traffic for, plus SLACK_S for CodeDeploy's own steps. A deployment
still running then is stopped with rollback, and the command fails saying so.

The CloudFormation package needs none of this: the stack update itself starts the deployments.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DONE = {"Succeeded", "Failed", "Stopped"}
TIMED_OUT = "TimedOut"
POLL_S = 15
# CodeDeploy's steps around the hook and the shift: creating the deployment, invoking the hook,
# moving the alias, watching the alarms after the last shift.
SLACK_S = 600
_PREFIX = "CodeDeployDefault.Lambda"


class ReleaseError(Exception):
    """The release could not be attempted (no applied stage, an unknown configuration): one line."""


def shifting_s(deployment_config: str) -> int:
    """How long CodeDeploy shifts traffic under one of its predefined Lambda configurations."""
    name = deployment_config.removeprefix(_PREFIX)
    if name == "AllAtOnce":
        return 0
    canary = re.fullmatch(r"Canary(\d+)Percent(\d+)Minutes?", name)
    if canary:
        return int(canary.group(2)) * 60
    linear = re.fullmatch(r"Linear(\d+)PercentEvery(\d+)Minutes?", name)
    if linear:
        return math.ceil(100 / int(linear.group(1))) * int(linear.group(2)) * 60
    raise ReleaseError(f"unknown deployment configuration {deployment_config!r}: give the overall timeout (TIMEOUT=s)")


def overall_timeout_s(release: Mapping[str, str]) -> int:
    return int(release["hook_timeout"]) + shifting_s(release["deployment_config"]) + SLACK_S


def appspec(release: Mapping[str, str], current: str) -> str:
    """CodeDeploy's AppSpec for a Lambda alias: from `current` to the release's target version."""
    function = release["function_name"]
    return json.dumps(
        {
            "version": 0.0,
            "Resources": [
                {
                    function: {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Name": function,
                            "Alias": release["alias"],
                            "CurrentVersion": current,
                            "TargetVersion": release["target_version"],
                        },
                    }
                }
            ],
            "Hooks": [{"BeforeAllowTraffic": release["hook"]}],
        }
    )


def release(
    spec: Mapping[str, str],
    lambda_client: Any,
    codedeploy_client: Any,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Deploy and wait; the deployment's final status ("Succeeded" when there was nothing to move,
    TIMED_OUT when it was still running after `timeout_s` and was stopped)."""
    function, alias = spec["function_name"], spec["alias"]
    current = lambda_client.get_alias(FunctionName=function, Name=alias)["FunctionVersion"]
    if current == spec["target_version"]:
        say(f"{function}:{alias} is already version {current}; nothing to release")
        return "Succeeded"
    limit = overall_timeout_s(spec) if timeout_s is None else timeout_s
    deadline = clock() + limit
    deployment = codedeploy_client.create_deployment(
        applicationName=spec["application"],
        deploymentGroupName=spec["deployment_group"],
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(spec, current)}},
        description=f"{alias}: version {current} -> {spec['target_version']}",
    )["deploymentId"]
    say(f"{deployment}: {function}:{alias} version {current} -> {spec['target_version']} (at most {limit:.0f} s)")
    while True:
        info = codedeploy_client.get_deployment(deploymentId=deployment)["deploymentInfo"]
        status = str(info["status"])
        if status in DONE:
            if status != "Succeeded":
                say(f"{deployment}: {status}: {info.get('errorInformation', {}).get('message', '')}")
            else:
                say(f"{deployment}: Succeeded")
            return status
        if clock() >= deadline:
            codedeploy_client.stop_deployment(deploymentId=deployment, autoRollbackEnabled=True)
            say(
                f"{deployment}: still {status} after {limit:.0f} s: stopped, and CodeDeploy rolls "
                f"{function}:{alias} back to version {current}"
            )
            return TIMED_OUT
        sleep(min(POLL_S, max(0.0, deadline - clock())))


def terraform_releases(folder: Path) -> list[dict[str, str]]:
    terraform = shutil.which("terraform")
    if terraform is None:
        raise ReleaseError("terraform is not installed; it reads the applied stage's Releases output")
    result = subprocess.run(
        [terraform, "output", "-json", "Releases"], cwd=folder, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise ReleaseError(f"no Releases output in {folder} (run `terraform apply` there first): {reason}")
    return [{key: str(value) for key, value in entry.items()} for entry in json.loads(result.stdout)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.release_tf", description=__doc__)
    parser.add_argument("folder", type=Path, help="the applied Terraform folder (out/<stage>/terraform)")
    parser.add_argument("--timeout", type=float, help="seconds each release may take (default: computed, see above)")
    args = parser.parse_args(argv)
    import boto3

    try:
        releases = terraform_releases(args.folder)
        limits = [overall_timeout_s(spec) if args.timeout is None else args.timeout for spec in releases]
    except ReleaseError as exc:
        print(f"make release-tf: {exc}", file=sys.stderr)
        return 1
    functions, codedeploy = boto3.client("lambda"), boto3.client("codedeploy")
    # Each function is released on its own: a failed consumer release leaves the API's standing.
    statuses = [
        release(spec, functions, codedeploy, timeout_s=limit) for spec, limit in zip(releases, limits, strict=True)
    ]
    return 0 if all(status == "Succeeded" for status in statuses) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
