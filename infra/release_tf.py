"""`make release-tf STAGE=...`: after `terraform apply`, move the live alias of a Terraform stage to
the version the apply published, through CodeDeploy: the pre-traffic hook, then the stage's
traffic shifting, rolled back by CodeDeploy if a rollback alarm fires (infra/terraform/deploy.tf).

The CloudFormation package needs none of this: the stack update itself starts the deployment.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DONE = {"Succeeded", "Failed", "Stopped"}


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
) -> str:
    """Deploy and wait; the deployment's final status ("Succeeded" when there was nothing to move)."""
    current = lambda_client.get_alias(FunctionName=spec["function_name"], Name=spec["alias"])["FunctionVersion"]
    if current == spec["target_version"]:
        say(f"{spec['function_name']}:{spec['alias']} is already version {current}; nothing to release")
        return "Succeeded"
    deployment = codedeploy_client.create_deployment(
        applicationName=spec["application"],
        deploymentGroupName=spec["deployment_group"],
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(spec, current)}},
        description=f"{spec['alias']}: version {current} -> {spec['target_version']}",
    )["deploymentId"]
    say(f"{deployment}: {spec['function_name']}:{spec['alias']} version {current} -> {spec['target_version']}")
    while True:
        info = codedeploy_client.get_deployment(deploymentId=deployment)["deploymentInfo"]
        status = str(info["status"])
        if status in DONE:
            if status != "Succeeded":
                say(f"{deployment}: {status}: {info.get('errorInformation', {}).get('message', '')}")
            else:
                say(f"{deployment}: Succeeded")
            return status
        sleep(15)


def terraform_release_output(folder: Path) -> dict[str, str]:
    terraform = shutil.which("terraform")
    if terraform is None:
        raise SystemExit("terraform is not installed; it reads the applied stage's Release output")
    result = subprocess.run(
        [terraform, "output", "-json", "Release"], cwd=folder, check=True, capture_output=True, text=True
    )
    return {key: str(value) for key, value in json.loads(result.stdout).items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.release_tf", description=__doc__)
    parser.add_argument("folder", type=Path, help="the applied Terraform folder (out/<stage>/terraform)")
    args = parser.parse_args(argv)
    import boto3

    spec = terraform_release_output(args.folder)
    status = release(spec, boto3.client("lambda"), boto3.client("codedeploy"))
    return 0 if status == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
