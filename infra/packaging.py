"""`chalice package` for a stage, as CloudFormation (with our merge template) or Terraform
(with our .tf files), into one output folder per format."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from chalicelib.config import APP_SETTINGS as CONFIG_SETTINGS
from infra.bytecode import add_bytecode
from infra.policies import ACCOUNT_POOLS_ARN
from infra.stages import PROJECT_DIR, Stage

TERRAFORM_SOURCES = PROJECT_DIR / "infra" / "terraform"
# The pool the authorizer trusts is created by the same deployment, so its ARN is a reference
# that the template resolves: a Terraform interpolation, a GetAtt in the merge template. The app
# refuses to be imported for a deployed stage without a real-looking pool ARN (so a bare
# `chalice deploy` fails fast), so packaging gives it this stand-in, which both paths replace.
PACKAGING_POOL_ARN = "arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_ReplacedWhenPackaged"
TERRAFORM_POOL_ARN = "${aws_cognito_user_pool.users.arn}"
# Likewise the users table's stream, which the consumer's event source mapping reads.
PACKAGING_STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/ReplacedWhenPackaged/stream/ReplacedWhenPackaged"
TERRAFORM_STREAM_ARN = "${aws_dynamodb_table.users.stream_arn}"
_STAND_INS = {"USER_POOL_ARN": PACKAGING_POOL_ARN, "USERS_STREAM_ARN": PACKAGING_STREAM_ARN}
# Every setting the app reads from its environment (chalicelib/config.py and the adapters; a test
# checks the list is complete). Packaging gives the app the settings of the stage it packages, never
# whatever the calling shell holds: `make package STAGE=dev` exports STAGE=dev, and a developer's
# shell may hold another stage's pool, table or REQUIRE_API_KEY.
APP_SETTINGS = CONFIG_SETTINGS | {
    "OUTBOX_FILE",
    "MAIL_FROM",
    "AWS_ENDPOINT_URL_S3",
    "METRICS",
    "METRICS_NAMESPACE",
    "REPORT_BATCH_ITEM_FAILURES",
    "_HANDLER",
}
# Chalice's Terraform output invokes the function itself; ours goes through the `live` alias
# so provisioned concurrency (which lives on an alias) serves API traffic.
_CHALICE_INVOKE_ARN = "${aws_lambda_function.api_handler.invoke_arn}"
_ALIAS_INVOKE_ARN = "${aws_lambda_alias.live.invoke_arn}"
_IAM_POLICY_VARIABLE = "${aws:"


class PackagingError(Exception):
    """Packaging stopped for a reason its user can act on; `python -m infra` says it in one line."""


def app_environment(stage: Stage) -> dict[str, str]:
    """The environment the app is imported with while `stage` is packaged: this process's without
    any of the app's settings, then the stage's own (.chalice/config.json, as Chalice gives them to
    the function) and the stand-ins the templates replace."""
    env = {key: value for key, value in os.environ.items() if key not in APP_SETTINGS}
    env["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    env.update(stage.lambda_environment)
    env.update(_STAND_INS)
    return env


def _last_line(text: str) -> str:
    """The line a failed Python process ends on: its exception, or its own message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


_ROUTES = (
    "import json, app; print(json.dumps(sorted([path, method.lower()] "
    "for path, methods in app.app.routes.items() for method in methods)))"
)


def app_routes(stage: Stage) -> list[tuple[str, str]]:
    """(path, method) of every route the app declares when `stage` imports it: read in a process of
    its own with that stage's environment, as Chalice reads it, never from whatever app this process
    may have imported with other settings."""
    result = subprocess.run(
        [sys.executable, "-c", _ROUTES], cwd=PROJECT_DIR, env=app_environment(stage), capture_output=True, text=True
    )
    if result.returncode != 0:
        raise PackagingError(f"app.py cannot be imported for stage {stage.name}: {_last_line(result.stderr)}")
    return [(str(path), str(method)) for path, method in json.loads(result.stdout)]


def _chalice(project_dir: Path, stage: Stage, out: Path, *options: str) -> None:
    chalice = Path(sys.executable).parent / "chalice"
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)  # an unusable output folder is said here, plainly
    result = subprocess.run(
        [str(chalice), "--project-dir", str(project_dir), "package", "--stage", stage.name, *options, str(out)],
        env=app_environment(stage),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0:
        raise PackagingError(f"chalice package failed for stage {stage.name}: {_last_line(result.stderr)}")
    sys.stderr.write(result.stderr)  # its warnings, if any


def package_cloudformation(stage: Stage, out: Path, index_step: int | None = None) -> Path:
    """out/sam.json (Chalice's template merged with ours) and out/deployment.zip (`index_step`: an
    intermediate template of an upgrade of the users table's indexes, docs/DEPLOY.md)."""
    from chalicelib.adapters.table_schema import FINAL_STEP
    from infra.cloudformation import merge_template

    out = out.resolve()
    with tempfile.TemporaryDirectory() as scratch:
        merge_file = Path(scratch) / "merge.json"
        merge_file.write_text(
            json.dumps(merge_template(stage, FINAL_STEP if index_step is None else index_step), indent=2)
        )
        _chalice(PROJECT_DIR, stage, out, "--merge-template", str(merge_file))
    add_bytecode(out / "deployment.zip")
    sam = out / "sam.json"
    for stand_in in _STAND_INS.values():
        if stand_in in sam.read_text():
            raise PackagingError(f"the merge template no longer replaces the stand-in {stand_in} in Chalice's template")
    return sam


def _project_copy_for_terraform(target: Path) -> None:
    """The project as Chalice's Terraform packager accepts it: that packager raises
    UnsupportedFeatureError on `log_retention_in_days`, so the copy's config drops it and
    infra/terraform/lambda.tf creates the log group with the same retention."""
    shutil.copy2(PROJECT_DIR / "app.py", target / "app.py")
    shutil.copy2(PROJECT_DIR / "requirements.txt", target / "requirements.txt")
    shutil.copytree(PROJECT_DIR / "chalicelib", target / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (target / ".chalice").mkdir()
    for policy in (PROJECT_DIR / ".chalice").glob("policy-*.json"):
        shutil.copy2(policy, target / ".chalice" / policy.name)
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    config.pop("log_retention_in_days", None)
    for stage_config in config["stages"].values():
        stage_config.pop("log_retention_in_days", None)
        # A pool or stream pasted for the `chalice deploy` path must not override the stand-ins replaced below.
        for name in _STAND_INS:
            stage_config.get("environment_variables", {}).pop(name, None)
    (target / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))


def _without_the_null_provider(document: dict[str, Any]) -> None:
    """Chalice declares a `null_data_source` that nothing reads; it is deprecated, and it would make
    `terraform init` fetch the null provider for nothing. The versions are set in chalice_override.tf."""
    if "data.null_data_source" in json.dumps(document):
        raise PackagingError("Chalice's Terraform output now reads its null_data_source; keep the null provider")
    document["data"].pop("null_data_source")
    document["terraform"]["required_providers"].pop("null")


def _gateway_responses_in_body(document: dict[str, Any], stage: Stage) -> None:
    """The gateway responses go into the API body (see infra/gateway_responses.py)."""
    from infra.gateway_responses import EXTENSION, gateway_responses
    from infra.stages import load_limits

    swagger = json.loads(document["locals"]["chalice_api_swagger"])
    swagger[EXTENSION] = gateway_responses(stage, load_limits())
    document["locals"]["chalice_api_swagger"] = json.dumps(swagger, indent=2)


def package_terraform(stage: Stage, out: Path) -> Path:
    """out/chalice.tf.json, our .tf files, stage.auto.tfvars.json and out/deployment.zip."""
    from infra.terraform_vars import tfvars

    out = out.resolve()  # chalice resolves a relative path against --project-dir, a temporary copy
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch) / "project"
        project.mkdir()
        _project_copy_for_terraform(project)
        _chalice(project, stage, out, "--pkg-format", "terraform")
    add_bytecode(out / "deployment.zip")
    chalice_tf = out / "chalice.tf.json"
    text = chalice_tf.read_text()
    for expected in (_CHALICE_INVOKE_ARN, PACKAGING_POOL_ARN, PACKAGING_STREAM_ARN):
        if expected not in text:
            raise PackagingError(f"Chalice's Terraform output changed: no {expected} to replace")
    text = (
        text.replace(_CHALICE_INVOKE_ARN, _ALIAS_INVOKE_ARN)
        .replace(PACKAGING_POOL_ARN, TERRAFORM_POOL_ARN)
        .replace(PACKAGING_STREAM_ARN, TERRAFORM_STREAM_ARN)
    )
    # The role's Cognito grant names the stage's own pool, not every pool of the account.
    if ACCOUNT_POOLS_ARN not in text:
        raise PackagingError("the role policy's Cognito grant is missing: run `make policies`")
    text = text.replace(ACCOUNT_POOLS_ARN, TERRAFORM_POOL_ARN)
    # IAM policy variables in the role policy look like Terraform interpolations; `$${` keeps them literal.
    document = json.loads(text.replace(_IAM_POLICY_VARIABLE, "$" + _IAM_POLICY_VARIABLE))
    _without_the_null_provider(document)
    _gateway_responses_in_body(document, stage)
    chalice_tf.write_text(json.dumps(document, indent=2) + "\n")
    shutil.copy2(PROJECT_DIR / "infra" / "limits.json", out / "limits.json")
    for source in sorted(TERRAFORM_SOURCES.glob("*.tf")):
        shutil.copy2(source, out / source.name)
    (out / "stage.auto.tfvars.json").write_text(json.dumps(tfvars(stage), indent=2) + "\n")
    return chalice_tf
