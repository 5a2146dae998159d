"""`make rehearse`: the deploy commands of docs/DEPLOY.md and .github/workflows/deploy.yml, run as
written against the emulator, each path in one bash session, with checks of what each step left.

- cloudformation (prod): the docs' CloudFormation block, then deploy.yml's job for prod (the second
  deploy: an update), the first-token and key-rotation blocks, and the docs' teardown;
- chalice (dev): the base stack and `chalice deploy`;
- terraform (prod, in an emulator of its own, as another account would be: the CloudFormation path's
  retained prod resources would otherwise hold the same names): init, apply, output, `make release-tf`,
  and the docs' teardown.

Runs in a scratch copy of the project (the commands write out/ and edit .chalice/config.json), with
the project's .venv and .venv-awscli linked in, fake credentials and AWS_ENDPOINT_URL set. Full logs
go to out/rehearsal/<path>.log.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from infra.rehearsal import checks, plan
from infra.rehearsal.commands import Block, Context, blocks, step_outputs, workflow_job
from infra.rehearsal.emulator import Emulator
from infra.rehearsal.session import BlockFailed, Session
from infra.stages import PROJECT_DIR

DEPLOY_DOC = PROJECT_DIR / "docs" / "DEPLOY.md"
WORKFLOW = PROJECT_DIR / ".github" / "workflows" / "deploy.yml"
LOGS = PROJECT_DIR / "out" / "rehearsal"
ARTIFACT_BUCKET = "users-api-artifacts-rehearsal"
# What the user supplies (`# needs:`), as the rehearsal sets it.
VALUES = {
    "ARTIFACT_BUCKET": ARTIFACT_BUCKET,
    "ALARM_EMAIL": "ops@example.com",
    "VERSION": "v1.0.0",  # the docs' first release; deploy.yml then deploys NEXT_VERSION over it
    "ROLLBACK_TO": "v1.0.0",  # and the docs' rollback goes back to the first
    "ADMIN_EMAIL": "you@example.com",
    "ADMIN_PASSWORD": "A-long-Passw0rd!",
}
NEXT_VERSION = "v1.1.0"
# The Terraform folder's provider settings for an emulator at AWS_ENDPOINT_URL, dropped into the copy's
# infra/terraform so that `make package-tf` copies it with the rest: S3 by path, no EC2 metadata.
TERRAFORM_OVERRIDE = """# The rehearsal's emulator (infra/rehearsal): not part of the project's Terraform.
provider "aws" {
  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_metadata_api_check     = true
}
"""
TERRAFORM_RC = """provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["registry.terraform.io/hashicorp/aws"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }}
}}
"""
TOOLS = {
    "terraform": "terraform is not installed: install Terraform 1.11 or later "
    "(developer.hashicorp.com/terraform/install)",
    "jq": "jq is not installed: apt-get install jq (or your system's package)",
}


def route(block: Block) -> str:
    """The path that runs a DEPLOY.md block (infra/rehearsal/plan.py); stops at a block it does not list."""
    return plan.route(block).path


@dataclass
class DeployPath:
    name: str
    log: list[str] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)
    failure: str = ""


def project_copy(scratch: Path) -> Path:
    copy = scratch / "project"
    skip = shutil.ignore_patterns(
        ".git", ".venv*", "out", "node_modules", ".local", ".*_cache", "__pycache__", "deployed", "deployments"
    )
    shutil.copytree(PROJECT_DIR, copy, ignore=skip, symlinks=True)
    for venv in (".venv", ".venv-awscli"):
        (copy / venv).symlink_to(PROJECT_DIR / venv)
    (copy / "infra" / "terraform" / "rehearsal_override.tf").write_text(TERRAFORM_OVERRIDE)
    return copy


def environment(scratch: Path, copy: Path, endpoint: str) -> dict[str, str]:
    tools = scratch / "bin"
    tools.mkdir(exist_ok=True)
    if not (tools / "aws").exists():
        (tools / "aws").symlink_to(PROJECT_DIR / ".venv-awscli" / "bin" / "aws")
    mirror = Path("/opt/tf-plugins")
    rc = scratch / "terraform.rc"
    rc.write_text(TERRAFORM_RC.format(mirror=mirror) if mirror.is_dir() else "")
    import os

    return {
        "PATH": f"{tools}:{copy / '.venv' / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(scratch),
        "LANG": "C.UTF-8",
        # A user's own AWS configuration and credentials are never read: fake ones, the emulator's address.
        "AWS_CONFIG_FILE": str(scratch / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "aws-credentials"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": checks.REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "TF_CLI_CONFIG_FILE": str(rc),
    }


def timed(path: DeployPath, what: str, action: Callable[[], Any]) -> Any:
    started = time.monotonic()
    try:
        return action()
    finally:
        path.timings.append((what, time.monotonic() - started))


# --- cloudformation -----------------------------------------------------------------------------------


def check_prod_stack(aws: checks.Client, status: str) -> None:
    found = checks.stack(aws, "users-api-prod")
    checks.expect(found["StackStatus"] == status, f"users-api-prod is {found['StackStatus']}, expected {status}")
    out = checks.outputs(aws, "users-api-prod")
    checks.output_shapes(
        out,
        [
            "ApiEndpoint",
            "UsersTableName",
            "FunctionArn",
            "UserPoolId",
            "UserPoolClientId",
            "AvatarBucketName",
            "CursorSecretArn",
            "AlarmTopicArn",
            "AuditTableName",
            "EventBusName",
            "ChangeDeadLetterQueueUrl",
            "ApiKeyId",
        ],
    )
    checks.users_table(aws, out["UsersTableName"])
    checks.audit_table(aws, out["AuditTableName"])
    checks.pool(aws, out["UserPoolId"], out["UserPoolClientId"], "users-api-prod")
    checks.bucket(aws, out["AvatarBucketName"], "https://app.example.com")
    checks.secret(aws, out["CursorSecretArn"])
    stream = aws("dynamodb").describe_table(TableName=out["UsersTableName"])["Table"]["LatestStreamArn"]
    consumer = next(
        r["PhysicalResourceId"]
        for r in aws("cloudformation").list_stack_resources(StackName="users-api-prod")["StackResourceSummaries"]
        if r["LogicalResourceId"] == "UserChanges"
    )
    checks.functions_and_alias(aws, out["FunctionArn"].rsplit(":", 1)[1], consumer, stream)
    rest_api = out["ApiEndpoint"].split("//")[1].split(".")[0]
    checks.api(aws, rest_api, api_key=True)
    checks.waf(aws, rest_api)
    alarms = aws("cloudwatch").describe_alarms()["MetricAlarms"]
    checks.expect(len(alarms) >= 10, f"{len(alarms)} alarms, the template declares 10")
    checks.expect(
        checks.exists(lambda: aws("sqs").get_queue_url(QueueName="users-api-prod-changes-dlq")), "dead-letter queue"
    )


def check_first_admin(aws: checks.Client) -> None:
    pool_id = checks.outputs(aws, "users-api-prod")["UserPoolId"]
    users = aws("cognito-idp").list_users_in_group(UserPoolId=pool_id, GroupName="admins")["Users"]
    emails = [a["Value"] for u in users for a in u["Attributes"] if a["Name"] == "email"]
    checks.expect(emails == ["you@example.com"], f"admins after the first-token block: {emails}")


def check_rotated_key(aws: checks.Client) -> None:
    apigateway = aws("apigateway")
    old = checks.outputs(aws, "users-api-prod")["ApiKeyId"]
    checks.expect(apigateway.get_api_key(apiKey=old)["enabled"] is False, "the stack's key is still enabled")
    plan_id = next(
        r["PhysicalResourceId"]
        for r in aws("cloudformation").list_stack_resources(StackName="users-api-prod")["StackResourceSummaries"]
        if r["LogicalResourceId"] == "ApiUsagePlan"
    )
    keys = apigateway.get_usage_plan_keys(usagePlanId=plan_id)["items"]
    enabled = [k["id"] for k in keys if k["id"] != old and apigateway.get_api_key(apiKey=k["id"])["enabled"]]
    checks.expect(len(enabled) == 1, f"the usage plan's keys after the rotation: {keys}")


def check_prod_teardown(aws: checks.Client, kept: dict[str, str]) -> None:
    cloudformation = aws("cloudformation")
    checks.gone(aws, "stack users-api-prod", lambda: cloudformation.describe_stacks(StackName="users-api-prod"))
    dynamodb, awslambda = aws("dynamodb"), aws("lambda")
    checks.still_there(aws, "the users table", lambda: dynamodb.describe_table(TableName=kept["UsersTableName"]))
    checks.still_there(aws, "the audit table", lambda: dynamodb.describe_table(TableName=kept["AuditTableName"]))
    checks.still_there(aws, "the pool", lambda: aws("cognito-idp").describe_user_pool(UserPoolId=kept["UserPoolId"]))
    checks.still_there(aws, "the avatar bucket", lambda: aws("s3").head_bucket(Bucket=kept["AvatarBucketName"]))
    checks.still_there(
        aws, "the cursor secret", lambda: aws("secretsmanager").describe_secret(SecretId=kept["CursorSecretArn"])
    )
    function = kept["FunctionArn"].rsplit(":", 1)[1]
    checks.gone(aws, "the API function", lambda: awslambda.get_function(FunctionName=function))
    rest_api = kept["ApiEndpoint"].split("//")[1].split(".")[0]
    checks.gone(aws, "the REST API", lambda: aws("apigateway").get_rest_api(restApiId=rest_api))
    checks.gone(aws, "the dead-letter queue", lambda: aws("sqs").get_queue_url(QueueName="users-api-prod-changes-dlq"))
    checks.gone(aws, "the event bus", lambda: aws("events").describe_event_bus(Name=kept["EventBusName"]))


def run_workflow(path: DeployPath, cwd: Path, env: dict[str, str], stage: str, smoke_test: bool) -> None:
    """deploy.yml's job, one shell per step as on GitHub's runner; `uses:` steps as the runner has them here."""
    document = yaml.safe_load(WORKFLOW.read_text())
    job_env, steps = workflow_job(document, "deploy")
    context = Context(
        inputs={"stage": stage, "version": NEXT_VERSION, "allow-older": False, "smoke-test": smoke_test},
        vars={
            "AWS_REGION": checks.REGION,
            "ARTIFACT_BUCKET": ARTIFACT_BUCKET,
            "ALARM_EMAIL": VALUES["ALARM_EMAIL"],
            "DEPLOY_ROLE_ARN": "arn:aws:iam::123456789012:role/users-api-deploy",
        },
        secrets={"SMOKE_USERNAME": "", "SMOKE_PASSWORD": ""},
    )
    base = {**env, **{key: context.substitute(value) for key, value in job_env.items()}}
    for step in steps:
        plan.step_entry(step)  # a step the table does not list stops the rehearsal
        if step.condition and not context.holds(step.condition):
            path.log.append(f"--- [workflow {stage}] {step.name}: skipped (if: {step.condition})\n")
            continue
        if step.uses:
            action = step.uses.split("@", 1)[0]
            if action == "aws-actions/configure-aws-credentials":
                region = context.substitute(step.with_["aws-region"])
                base |= {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
            elif action == "actions/download-artifact":
                packaged = cwd / context.substitute(step.with_["path"]) / stage / "cloudformation" / "sam.json"
                checks.expect(packaged.exists(), f"the workflow's artifact {packaged} was never packaged")
            elif action not in ("actions/checkout", "actions/setup-python"):
                raise BlockFailed(f"deploy.yml uses {action}, which the rehearsal does not stand in for")
            path.log.append(f"--- [workflow {stage}] {step.name}: {action} (the rehearsal's copy has what it gives)\n")
            continue
        outputs = cwd / ".github-output"
        outputs.write_text("")
        script = context.substitute(step.run)
        step_env = {**base, **{k: context.substitute(v) for k, v in step.env.items()}, "GITHUB_OUTPUT": str(outputs)}
        path.log.append(f"--- [workflow {stage}] {step.name}\n{script}\n")
        started = time.monotonic()
        ran = subprocess.run(
            ["bash", "-e", "-c", script], cwd=cwd, env=step_env, capture_output=True, text=True, timeout=300
        )
        path.timings.append((f"deploy.yml: {step.name}", time.monotonic() - started))
        path.log.append(ran.stdout + ran.stderr)
        if ran.returncode != 0:
            raise BlockFailed(f"deploy.yml step {step.name!r} failed (exit {ran.returncode})")
        if step.step_id:
            context.steps[step.step_id] = step_outputs(outputs.read_text())


def cloudformation_path(
    path: DeployPath, copy: Path, env: dict[str, str], aws: checks.Client, doc: list[Block]
) -> None:
    aws("s3").create_bucket(Bucket=ARTIFACT_BUCKET)  # the account's artifact bucket, which the docs assume
    session = Session(path.name, copy, env, path.log, copy.parent)
    kept: dict[str, str] = {}
    # The cleanup of a failed or deleted stage's leftovers refuses while the stack is live: it runs
    # after the teardown, on what the teardown retained.
    cleanup = [block for block in doc if block.heading.startswith("If the first create fails")]
    try:
        for number, block in enumerate(b for b in doc if b not in cleanup):
            if "delete-stack" in block.text:
                kept = checks.outputs(aws, "users-api-prod")
            timed(path, block.heading, partial(session.run, block, VALUES))
            if number == 0:
                check_prod_stack(aws, "CREATE_COMPLETE")
                check_release(aws, VALUES["VERSION"])
                # The next release: deploy.yml's job for prod on the stack the docs made (an update).
                run_workflow(path, copy, env, "prod", smoke_test=False)
                check_prod_stack(aws, "UPDATE_COMPLETE")
                check_release(aws, NEXT_VERSION)
            elif block.heading.startswith("Rolling back"):
                check_release(aws, VALUES["ROLLBACK_TO"])
            elif block.heading.startswith("First token"):
                check_first_admin(aws)
            elif block.heading.startswith("Rotating the API key"):
                check_rotated_key(aws)
        checks.expect(bool(kept), "no block of the CloudFormation path deletes the stack")
        check_prod_teardown(aws, kept)
        for block in cleanup:
            # Its second command keeps the pool, which holds the first admin, and says so: make exits 2.
            said = timed(path, block.heading, partial(session.run, block, VALUES, expect_exit=2))
            checks.expect("kept 1 that hold data" in said, "make cleanup CONFIRM=1 did not say what it kept")
        checks.expect(bool(cleanup), "docs/DEPLOY.md no longer shows make cleanup")
        check_cleanup(aws, kept)
    except BlockFailed:
        path.log.append(failed_events(aws, "users-api-prod"))
        raise
    finally:
        session.close()


def failed_events(aws: checks.Client, stack: str) -> str:
    """What CloudFormation said failed (the CLI only says to ask), for the log."""
    try:
        events = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    except Exception as unavailable:  # the log says why there are none
        return f"(no stack events of {stack}: {unavailable})\n"
    failed = [e for e in events if "FAILED" in e["ResourceStatus"] or e.get("ResourceStatusReason")][:15]
    return "stack events:\n" + "".join(
        f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}\n" for e in failed
    )


def check_release(aws: checks.Client, version: str) -> None:
    live = checks.outputs(aws, "users-api-prod").get("ReleaseVersion")
    checks.expect(live == version, f"users-api-prod runs {live!r}, expected {version!r}")


def check_cleanup(aws: checks.Client, kept: dict[str, str]) -> None:
    """`make cleanup STAGE=prod CONFIRM=1` deleted what held no data and kept what did (the pool,
    which holds the first admin; the tables, which hold their record and its audit)."""
    dynamodb = aws("dynamodb")
    checks.gone(aws, "the avatar bucket (empty)", lambda: aws("s3").head_bucket(Bucket=kept["AvatarBucketName"]))
    checks.gone(aws, "the users table (empty)", lambda: dynamodb.describe_table(TableName=kept["UsersTableName"]))
    checks.gone(aws, "the audit table (empty)", lambda: dynamodb.describe_table(TableName=kept["AuditTableName"]))
    secrets = aws("secretsmanager")
    if checks.exists(partial(secrets.describe_secret, SecretId=kept["CursorSecretArn"])):
        secret = secrets.describe_secret(SecretId=kept["CursorSecretArn"])
        checks.expect("DeletedDate" in secret, "the cursor secret (never read) is still there after the cleanup")
    checks.still_there(
        aws,
        "the pool (holds the first admin)",
        lambda: aws("cognito-idp").describe_user_pool(UserPoolId=kept["UserPoolId"]),
    )


# --- chalice --------------------------------------------------------------------------------------------


def chalice_path(path: DeployPath, copy: Path, env: dict[str, str], aws: checks.Client, doc: list[Block]) -> None:
    session = Session(path.name, copy, env, path.log, copy.parent)
    try:
        for block in doc:
            timed(path, block.heading, partial(session.run, block, VALUES))
    finally:
        session.close()
    base = checks.outputs(aws, "users-api-dev-base")
    checks.output_shapes(
        base,
        ["UserPoolId", "UserPoolClientId", "UserPoolArn", "CursorSecretArn", "AvatarBucketName", "UsersTableStreamArn"],
    )
    checks.users_table(aws, "users-api-dev")
    checks.pool(aws, base["UserPoolId"], base["UserPoolClientId"], "users-api-dev")
    checks.bucket(aws, base["AvatarBucketName"], "https://dev.example.com")
    variables = aws("lambda").get_function_configuration(FunctionName="users-api-dev")["Environment"]["Variables"]
    for name, output in (("USER_POOL_ARN", "UserPoolArn"), ("CURSOR_SECRET_ARN", "CursorSecretArn")):
        checks.expect(variables.get(name) == base[output], f"users-api-dev's {name} is {variables.get(name)!r}")
    mappings = aws("lambda").list_event_source_mappings(EventSourceArn=base["UsersTableStreamArn"])
    checks.expect(len(mappings["EventSourceMappings"]) == 1, "no consumer reads the dev table's stream")
    apis = [a["name"] for a in aws("apigateway").get_rest_apis()["items"]]
    checks.expect("users-api" in apis, f"chalice deploy made no API (APIs: {apis})")
    checks.expect((copy / ".chalice" / "deployed" / "dev.json").exists(), "chalice deploy recorded no deployment")


# --- terraform -------------------------------------------------------------------------------------------


def terraform_path(path: DeployPath, copy: Path, env: dict[str, str], doc: list[Block]) -> None:
    # The emulator's own messages go to a log of their own: if it dies, that log says why.
    LOGS.mkdir(parents=True, exist_ok=True)
    emulator_log = (LOGS / "terraform-emulator.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "infra.rehearsal.emulator"],
        cwd=PROJECT_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=emulator_log,
        text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()
        aws = checks.emulator(endpoint)
        session = Session(path.name, copy, {**env, "AWS_ENDPOINT_URL": endpoint}, path.log, copy.parent)
        try:
            for block in doc:
                if "state rm" in block.text:
                    kept = terraform_outputs(copy / "out" / "prod" / "terraform", env)
                timed(path, block.heading, partial(session.run, block, VALUES, timeout=400))
                if block.heading.startswith("With Terraform"):
                    out = terraform_outputs(copy / "out" / "prod" / "terraform", env)
                    checks.output_shapes(
                        out, ["ApiEndpoint", "UsersTableName", "UserPoolId", "UserPoolClientId", "CursorSecretArn"]
                    )
                    checks.users_table(aws, out["UsersTableName"])
                    checks.pool(aws, out["UserPoolId"], out["UserPoolClientId"], "users-api-prod")
                    checks.secret(aws, out["CursorSecretArn"])
        finally:
            session.close()
        dynamodb = aws("dynamodb")
        checks.still_there(aws, "the users table", lambda: dynamodb.describe_table(TableName=kept["UsersTableName"]))
        checks.still_there(
            aws, "the pool", lambda: aws("cognito-idp").describe_user_pool(UserPoolId=kept["UserPoolId"])
        )
        checks.gone(aws, "the API function", lambda: aws("lambda").get_function(FunctionName="users-api-prod"))
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(30)


def terraform_outputs(folder: Path, env: dict[str, str]) -> dict[str, str]:
    import json

    ran = subprocess.run(
        ["terraform", "output", "-json"], cwd=folder, env=env, capture_output=True, text=True, check=True
    )
    return {key: str(item["value"]) for key, item in json.loads(ran.stdout).items() if item["value"] is not None}


# --- all -------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """All three paths, or those named (`python -m infra.rehearsal terraform`)."""
    if argv == ["--table"]:
        print(plan.table(), end="")
        return 0
    missing = [line for tool, line in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        print(f"make rehearse: {missing[0]}", file=sys.stderr)
        return 2
    doc = blocks(DEPLOY_DOC.read_text())
    routed: dict[str, list[Block]] = {"cloudformation": [], "chalice": [], "terraform": []}
    for block in doc:
        routed[route(block)].append(block)
    for step in workflow_job(yaml.safe_load(WORKFLOW.read_text()), "deploy")[1]:
        plan.step_entry(step)
    started = time.monotonic()
    paths = {name: DeployPath(name) for name in routed}
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as scratch_name:
        scratch = Path(scratch_name)
        emulator = Emulator().start()
        try:
            aws = checks.emulator(emulator.url)
            copy = project_copy(scratch / "a")
            env = environment(scratch, copy, emulator.url)
            tf_copy = project_copy(scratch / "b")
            jobs: list[tuple[DeployPath, Callable[[], None]]] = [
                (paths["terraform"], lambda: terraform_path(paths["terraform"], tf_copy, env, routed["terraform"])),
                (
                    paths["cloudformation"],
                    lambda: cloudformation_path(paths["cloudformation"], copy, env, aws, routed["cloudformation"]),
                ),
                (paths["chalice"], lambda: chalice_path(paths["chalice"], copy, env, aws, routed["chalice"])),
            ]

            if argv:
                jobs = [job for job in jobs if job[0].name in argv]
                paths = {name: path for name, path in paths.items() if name in argv}

            def run(path: DeployPath, action: Callable[[], None]) -> None:
                begun = time.monotonic()
                try:
                    action()
                except (BlockFailed, checks.CheckFailed, subprocess.CalledProcessError) as failure:
                    path.failure = str(failure) or type(failure).__name__
                except Exception as failure:
                    path.failure = f"{type(failure).__name__}: {failure}"
                path.timings.append(("total", time.monotonic() - begun))

            # Terraform in its own emulator, alongside the other two (which share one, one after the other).
            threads = [threading.Thread(target=run, args=job) for job in jobs if job[0].name == "terraform"]
            for thread in threads:
                thread.start()
            for path, action in jobs:
                if path.name != "terraform":
                    run(path, action)
            for thread in threads:
                thread.join()
        finally:
            emulator.stop()
    return report(paths, time.monotonic() - started)


def report(paths: dict[str, DeployPath], elapsed: float) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    failed = False
    for path in paths.values():
        log = LOGS / f"{path.name}.log"
        log.write_text("".join(entry if entry.endswith("\n") else entry + "\n" for entry in path.log))
        steps = ", ".join(f"{what} {seconds:.1f} s" for what, seconds in path.timings)
        if path.failure:
            failed = True
            tail = log.read_text().splitlines()[-60:]
            print("\n".join(tail))
            print(f"FAIL {path.name}: {path.failure} (log: {log.relative_to(PROJECT_DIR)})")
        else:
            print(f"ok   {path.name}: {steps}")
    print(f"rehearsal: {'FAILED' if failed else 'passed'} in {elapsed:.0f} s; logs in {LOGS.relative_to(PROJECT_DIR)}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
