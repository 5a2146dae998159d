"""The AWS CLI, for the deploy workflow's scripts: GitHub's runners have it, and nothing else of AWS's
(infra/smoke.py and infra/release_version.py use the standard library only, so the deploy job
installs nothing). Its endpoint and credentials come from its usual environment (AWS_REGION,
AWS_ENDPOINT_URL, the OIDC role's session)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

# Runs `aws <arguments>` and returns its stdout; AwsCliError when it fails.
Aws = Callable[[list[str]], str]


class AwsCliError(Exception):
    """The CLI failed: its last line on stderr (the service's error, or why it could not ask)."""

    def __init__(self, arguments: list[str], stderr: str):
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        self.message = lines[-1] if lines else "no message"
        super().__init__(f"aws {' '.join(arguments[:2])}: {self.message}")


def run_aws(arguments: list[str]) -> str:
    executable = shutil.which("aws")
    if executable is None:
        raise AwsCliError(arguments, "the AWS CLI (aws) is not installed")
    result = subprocess.run([executable, *arguments], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AwsCliError(arguments, result.stderr)
    return result.stdout


def stack_outputs(stack: str, aws: Aws = run_aws, region: str | None = None) -> dict[str, str] | None:
    """The stack's outputs by key; None when the stack does not exist (any other failure raises)."""
    arguments = ["cloudformation", "describe-stacks", "--stack-name", stack, "--output", "json"]
    if region:
        arguments += ["--region", region]
    try:
        answer: Any = json.loads(aws(arguments))
    except AwsCliError as exc:
        if "does not exist" in exc.message:
            return None
        raise
    (found,) = answer["Stacks"]
    return {str(output["OutputKey"]): str(output["OutputValue"]) for output in found.get("Outputs", [])}
