"""`make lint-infra`: cfn-lint and checkov over packaged stages. Runs in .venv-infra.

For each OUT/<stage>/cloudformation/sam.json: cfn-lint on the SAM template, then on the plain
CloudFormation that the SAM transform expands it to (so the generated stage, alias, deployment
and permission are checked, not only the SAM schema), and checkov on both. For each
OUT/<stage>/terraform: checkov, and when `terraform` is installed, `terraform fmt -check` and
`terraform validate` (providers from TF_PLUGIN_DIR, default /opt/tf-plugins, when that folder
exists; else from the registry). Then the GitHub workflows: checkov, zizmor (offline; its
configuration is infra/zizmor.yml) and actionlint when it is installed. checkov's skips live in
infra/checkov.yaml only. Exit status 1 on any finding.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CHECKOV_CONFIG = HERE / "checkov.yaml"
ZIZMOR_CONFIG = HERE / "zizmor.yml"
WORKFLOWS = HERE.parent / ".github" / "workflows"
REGION = "us-east-1"


def expand_sam(sam_file: Path, target: Path) -> Path:
    """The SAM transform, as CloudFormation would run it (CodeUri as `aws cloudformation package` leaves it)."""
    from samtranslator.translator.transform import transform

    template: dict[str, Any] = json.loads(sam_file.read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://deployment-bucket/deployment.zip"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    expanded = transform(template, {"AWS::Region": REGION}, NoManagedPolicies())
    target.write_text(json.dumps(expanded, indent=1, default=str))
    return target


def run(*command: str) -> bool:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=False).returncode == 0


def checkov(framework: str, *targets: str) -> bool:
    return run(
        str(BIN / "checkov"),
        "--config-file",
        str(CHECKOV_CONFIG),
        "--framework",
        framework,
        "--skip-download",
        *targets,
    )


def terraform(folder: Path, scratch: Path) -> list[str]:
    """fmt -check and validate on a copy (init writes .terraform/ and a lock file into the folder)."""
    binary = shutil.which("terraform")
    if binary is None:
        print(f"terraform is not installed: {folder} was NOT checked with terraform fmt/validate", flush=True)
        return []
    copy = scratch / f"terraform-{folder.parent.name}"
    shutil.copytree(folder, copy)
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    if not Path(env.get("TF_CLI_CONFIG_FILE", "~")).exists():
        env.pop("TF_CLI_CONFIG_FILE", None)  # a missing file only adds a warning to every command
    plugins = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))
    init = ["init", "-backend=false", "-no-color", *([f"-plugin-dir={plugins}"] if plugins.is_dir() else [])]
    failures: list[str] = []
    for command in (["fmt", "-check", "-diff", "-no-color"], init, ["validate", "-no-color"]):
        print("$", "terraform", " ".join(command), f"({folder})", flush=True)
        # init's progress report is noise unless it fails.
        result = subprocess.run([binary, *command], cwd=copy, env=env, check=False, capture_output=command is init)
        if result.returncode != 0:
            if command is init:
                print(result.stdout.decode(), result.stderr.decode(), sep="\n", flush=True)
            failures.append(f"terraform {command[0]} {folder.parent.name}")
            break
    return failures


def lint_workflows() -> list[str]:
    failures: list[str] = []
    if not checkov("github_actions", "-d", str(WORKFLOWS)):
        failures.append("checkov github_actions")
    if not run(str(BIN / "zizmor"), "--offline", "--config", str(ZIZMOR_CONFIG), str(WORKFLOWS)):
        failures.append("zizmor")
    actionlint = BIN / "actionlint"
    if not actionlint.exists():
        # Its PyPI package fetches the binary from GitHub's release downloads when it installs,
        # which some networks (this project's CI sandbox among them) do not reach.
        print("actionlint is not installed: the workflows were NOT checked by actionlint", flush=True)
    elif not run(str(actionlint), "-no-color", *sorted(str(path) for path in WORKFLOWS.glob("*.yml"))):
        failures.append("actionlint")
    return failures


def lint_stage(stage_dir: Path, scratch: Path) -> list[str]:
    failures: list[str] = []
    sam = stage_dir / "cloudformation" / "sam.json"
    expanded = expand_sam(sam, scratch / f"{stage_dir.name}-expanded.json")
    if not run(str(BIN / "cfn-lint"), "--regions", REGION, "--", str(sam), str(expanded)):
        failures.append(f"cfn-lint {stage_dir.name}")
    if not checkov("cloudformation", "-f", str(sam), "-f", str(expanded)):
        failures.append(f"checkov cloudformation {stage_dir.name}")
    if not checkov("terraform", "-d", str(stage_dir / "terraform")):
        failures.append(f"checkov terraform {stage_dir.name}")
    failures += terraform(stage_dir / "terraform", scratch)
    return failures


def main(stage_dirs: list[str]) -> int:
    if not stage_dirs:
        print("usage: lint.py OUT/<stage> ...", file=sys.stderr)
        return 2
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        for stage_dir in stage_dirs:
            failures += lint_stage(Path(stage_dir), Path(scratch))
    failures += lint_workflows()
    if failures:
        print("lint-infra FAILED: " + ", ".join(failures), file=sys.stderr)
        return 1
    print(f"lint-infra: clean for {', '.join(Path(d).name for d in stage_dirs)} and the workflows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
