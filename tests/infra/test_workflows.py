"""The GitHub workflows, read as GitHub reads them, for what the linters do not check:

- a job that calls a reusable workflow must grant every permission that workflow's jobs ask for
  (GitHub refuses the whole run otherwise: "nested job requires id-token: write but the calling job
  grants id-token: none"); actionlint does not check this;
- the deploy ships the packages the test job built and linted, serialised per stage, and prod
  starts only after staging passed its smoke test.

`make lint-infra` runs zizmor (and actionlint where it could be installed) on the same files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.stages import PROJECT_DIR

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
LEVELS = {"none": 0, "read": 1, "write": 2}
# GitHub's token scopes (the ones `read-all` / `write-all` cover).
SCOPES = (
    "actions",
    "attestations",
    "checks",
    "contents",
    "deployments",
    "discussions",
    "id-token",
    "issues",
    "models",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "security-events",
    "statuses",
)


def load(name: str) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True; GitHub means the trigger.
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True, document.get("on"))
    return dict(document)


def grants(permissions: Any) -> dict[str, int]:
    """The level each scope gets from a `permissions:` value."""
    if isinstance(permissions, str):
        level = {"read-all": "read", "write-all": "write"}[permissions]
        return dict.fromkeys(SCOPES, LEVELS[level])
    return {scope: LEVELS[(permissions or {}).get(scope, "none")] for scope in SCOPES}


def requested(workflow: dict[str, Any]) -> dict[str, int]:
    """The most each scope is asked for anywhere in a called workflow."""
    asks = [grants(workflow["permissions"])] if "permissions" in workflow else []
    asks += [grants(job["permissions"]) for job in workflow["jobs"].values() if "permissions" in job]
    return {scope: max((ask[scope] for ask in asks), default=0) for scope in SCOPES}


def missing_permissions(caller: dict[str, Any], job: dict[str, Any], callee: dict[str, Any]) -> list[str]:
    if "permissions" in job:
        granted = grants(job["permissions"])
    elif "permissions" in caller:
        granted = grants(caller["permissions"])
    else:
        return ["no permissions stated: the repository's default token decides"]
    return [
        f"{scope}: {level} asked, {granted[scope]} granted"
        for scope, level in requested(callee).items()
        if level > granted[scope]
    ]


def calls() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = load(path.name)
        for name, job in workflow["jobs"].items():
            uses = job.get("uses", "")
            if uses.startswith("./.github/workflows/"):
                found.append((path.name, name, workflow, job))
    return found


def test_the_ci_workflow_calls_the_deploy_workflow_twice() -> None:
    assert [(file, name, job["uses"]) for file, name, _, job in calls()] == [
        ("ci.yml", "deploy-staging", "./.github/workflows/deploy.yml"),
        ("ci.yml", "deploy-prod", "./.github/workflows/deploy.yml"),
    ]


@pytest.mark.parametrize("job_name", ["deploy-staging", "deploy-prod"])
def test_each_calling_job_grants_what_the_called_workflow_asks_for(job_name: str) -> None:
    ((_, _, caller, job),) = [entry for entry in calls() if entry[1] == job_name]
    callee = load(Path(job["uses"]).name)
    assert requested(callee)["id-token"] == LEVELS["write"]  # OIDC to AWS
    assert missing_permissions(caller, job, callee) == []


def test_the_rule_catches_the_grant_github_refuses() -> None:
    """The shape the workflow had: `contents: read` at the top, nothing on the calling job."""
    caller = {"permissions": {"contents": "read"}}
    callee = {"permissions": {"contents": "read", "id-token": "write"}, "jobs": {"deploy": {}}}
    assert missing_permissions(caller, {"uses": "./x.yml"}, callee) == ["id-token: 2 asked, 0 granted"]


def test_nothing_gets_a_token_it_does_not_state() -> None:
    for name in ("ci.yml", "deploy.yml"):
        workflow = load(name)
        assert workflow["permissions"] == {}
        for job in workflow["jobs"].values():
            assert "permissions" in job
            assert job.get("secrets") != "inherit"


def test_every_action_is_pinned_to_a_commit_with_its_version_beside_it() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            match = re.search(r"uses: ([\w.-]+/[\w./-]+)@(\S+)(.*)", line)
            if match:
                assert re.fullmatch(r"[0-9a-f]{40}", match.group(2)), line
                assert re.fullmatch(r" # v\d+\.\d+\.\d+", match.group(3)), line


def test_the_deploy_ships_the_tested_packages_one_deploy_per_stage_at_a_time() -> None:
    ci = load("ci.yml")
    test_steps = ci["jobs"]["test"]["steps"]
    runs = [step["run"] for step in test_steps if "run" in step]
    assert runs == ["bash .ci/run"]  # make test packages and lints out/<stage>/; nothing is rebuilt after it
    (upload,) = [step for step in test_steps if "upload-artifact" in step.get("uses", "")]
    assert upload["with"]["name"] == "packages"
    assert upload["with"]["path"].split() == ["out/staging/", "out/prod/"]

    (deploy,) = load("deploy.yml")["jobs"].values()
    assert deploy["concurrency"] == {"group": "deploy-users-api-${{ inputs.stage }}", "cancel-in-progress": False}
    (download,) = [step for step in deploy["steps"] if "download-artifact" in step.get("uses", "")]
    assert download["with"] == {"name": "packages", "path": "out/"}
    scripts = " ".join(step.get("run", "") for step in deploy["steps"])
    for rebuild in ("make", "chalice", "infra package", "pip install"):
        assert rebuild not in scripts
    assert 'aws cloudformation package --template-file "out/$STAGE/cloudformation/sam.json"' in scripts


def test_prod_starts_only_after_staging_passed_its_smoke_test_and_is_smoke_tested_too() -> None:
    jobs = load("ci.yml")["jobs"]
    assert jobs["deploy-prod"]["needs"] == "deploy-staging"
    for name, stage in (("deploy-staging", "staging"), ("deploy-prod", "prod")):
        assert jobs[name]["with"] == {
            "stage": stage,
            "version": "${{ github.ref_name }}",
            "allow-older": "${{ github.event_name == 'workflow_dispatch' }}",
            "smoke-test": True,
        }
        assert set(jobs[name]["secrets"]) == {"SMOKE_USERNAME", "SMOKE_PASSWORD"}
    (deploy,) = load("deploy.yml")["jobs"].values()
    (smoke,) = [step for step in deploy["steps"] if "infra.smoke" in step.get("run", "")]
    assert smoke["if"] == "inputs.smoke-test"
    # The URL, the app client and prod's API key come from the stack it just deployed.
    assert smoke["run"] == 'python -m infra.smoke --stack-name "users-api-$STAGE" --region "$AWS_REGION"'
    assert deploy["steps"].index(smoke) == len(deploy["steps"]) - 1  # after the deploy and its outputs


def steps_running(deploy: dict[str, Any], command: str) -> list[dict[str, Any]]:
    return [step for step in deploy["steps"] if step.get("run", "").startswith(command)]


def test_an_older_version_than_the_live_one_is_refused_before_anything_is_deployed() -> None:
    (deploy,) = load("deploy.yml")["jobs"].values()
    inputs = load("deploy.yml")["on"]["workflow_call"]["inputs"]
    assert inputs["version"]["required"] is True
    assert inputs["allow-older"] == {**inputs["allow-older"], "type": "boolean", "default": False}
    assert deploy["env"]["VERSION"] == "${{ inputs.version }}"
    assert deploy["env"]["ALLOW_OLDER"] == "${{ inputs.allow-older }}"
    (check,) = steps_running(deploy, "python -m infra.release_version check")
    assert check["run"] == (
        'python -m infra.release_version check --stack-name "users-api-$STAGE" --version "$VERSION" '
        '--allow-older "$ALLOW_OLDER"'
    )
    (package,) = steps_running(deploy, "aws cloudformation package")
    (stack,) = steps_running(deploy, "aws cloudformation deploy")
    assert deploy["steps"].index(check) < deploy["steps"].index(package) < deploy["steps"].index(stack)
    assert '"ReleaseVersion=$VERSION"' in stack["run"]
    # The deliberate rollback: the workflow run by hand on the older tag; a tag push never allows it.
    assert load("ci.yml")["on"]["workflow_dispatch"] is None  # no inputs (checkov CKV_GHA_7)


def test_each_release_keeps_its_template_where_the_rollback_command_finds_it() -> None:
    (deploy,) = load("deploy.yml")["jobs"].values()
    (keep,) = steps_running(deploy, "aws s3 cp")
    assert keep["run"] == (
        'aws s3 cp "out/$STAGE/cloudformation/packaged.yaml" '
        '"s3://$ARTIFACT_BUCKET/users-api/$STAGE/releases/$VERSION/packaged.yaml"'
    )
    (stack,) = steps_running(deploy, "aws cloudformation deploy")
    assert deploy["steps"].index(stack) < deploy["steps"].index(keep)  # only a release that went out


def test_every_run_is_one_command_and_more_is_a_script_under_infra() -> None:
    """Logic in a workflow is untested; a `run:` holds one command (a folded line), no shell logic."""
    for name in ("ci.yml", "deploy.yml"):
        for job in load(name)["jobs"].values():
            for step in job.get("steps", []):
                if "run" in step:
                    command = step["run"].strip()
                    assert "\n" not in command, command
                    assert not re.search(r"(;|&&|\|\||\$\(|\bfor\b|\bif\b|`)", command), command
