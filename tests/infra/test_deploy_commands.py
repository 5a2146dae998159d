"""The deploy commands of docs/DEPLOY.md and of the deploy workflow, read as bash reads them (the
deploy rehearsal runs them against the emulator; this checks what must hold of them as written):

- every template goes through the artifact bucket: `aws cloudformation deploy` refuses a template
  over 51,200 bytes before calling AWS unless it has --s3-bucket, and the packaged ones are larger;
- every block runs as written: valid bash, no placeholder to paste over, and each value the user
  supplies a shell variable that the block's first line (`# needs: ...`) names;
- the rollback the docs give finds the template each deploy keeps, and says it is deliberate.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.stages import PROJECT_DIR

DOCS = PROJECT_DIR / "docs" / "DEPLOY.md"
WORKFLOW = PROJECT_DIR / ".github" / "workflows" / "deploy.yml"
# The packaged templates are 60-70 KB; the AWS CLI's own limit without a bucket.
CLI_TEMPLATE_LIMIT = 51_200
# Set by the shell itself, not by the user.
SHELL = {"HOME", "PATH", "PWD"}


def blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", DOCS.read_text(), re.S)


def commands(script: str) -> list[str]:
    """Each command of a script: continuation lines joined, comments dropped."""
    joined = script.replace("\\\n", " ")
    return [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines() if line.strip()]


def workflow_runs() -> list[str]:
    (job,) = yaml.safe_load(WORKFLOW.read_text())["jobs"].values()
    return [step["run"] for step in job["steps"] if "run" in step]


def all_commands() -> list[str]:
    return [command for block in blocks() for command in commands(block)] + workflow_runs()


def test_the_packaged_templates_are_over_the_clis_limit(sam_files: dict[str, Path]) -> None:
    """Why the bucket is needed: each stage's template, as `aws cloudformation package` writes it
    (YAML), is over what `aws cloudformation deploy` takes without one."""
    for sam in sam_files.values():
        template = json.loads(sam.read_text())
        assert len(yaml.safe_dump(template, default_flow_style=False)) > CLI_TEMPLATE_LIMIT


def test_every_template_goes_through_the_artifact_bucket() -> None:
    deploys = [c for c in all_commands() if c.startswith("aws cloudformation deploy")]
    packages = [c for c in all_commands() if c.startswith("aws cloudformation package")]
    # docs: CloudFormation, the rollback and the chalice deploy base stack; the workflow's deploy.
    assert len(deploys) == 4 and len(packages) == 2
    for command in deploys + packages:
        assert re.search(r"--s3-bucket \"\$ARTIFACT_BUCKET\"", command), command
        assert "--s3-prefix users-api/" in command or '--s3-prefix "users-api/$STAGE"' in command, command


@pytest.mark.parametrize("script", blocks(), ids=lambda script: script.splitlines()[0][:40])
def test_each_block_runs_as_written_in_bash(script: str) -> None:
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    code = "\n".join(commands(script))
    assert "MY-" not in code and "..." not in code, code
    assert not re.search(r"<[a-z][a-z _-]*>", code), code  # <id>, <stack name>, ...
    assert not re.search(r"\b(PLAN|KEY|API_KEY|OLD_KEY)_ID\b", code), code  # ids to paste in
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", code)) - SHELL
    assigned = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", code))
    first = script.splitlines()[0]
    needed = set(first.removeprefix("# needs:").split()) if first.startswith("# needs:") else set()
    # What the block uses and does not set itself is exactly what its first line names.
    assert used - assigned == needed, (first, used, assigned)


def test_the_rollback_finds_the_template_each_deploy_keeps_and_says_it_is_deliberate() -> None:
    docs_deploy, rollback = [b for b in blocks() if "aws cloudformation deploy" in b and "users-api-prod " in b]
    assert 'releases/$VERSION/packaged.yaml"' in docs_deploy
    assert any('s3://$ARTIFACT_BUCKET/users-api/$STAGE/releases/$VERSION/packaged.yaml"' in r for r in workflow_runs())
    assert rollback.startswith("# needs: ARTIFACT_BUCKET ROLLBACK_TO")
    assert '"s3://$ARTIFACT_BUCKET/users-api/prod/releases/$ROLLBACK_TO/packaged.yaml"' in rollback
    steps = commands(rollback)
    (check,) = [c for c in steps if "infra.release_version check" in c]
    assert check.endswith('--version "$ROLLBACK_TO" --allow-older true')
    (deploy,) = [c for c in steps if c.startswith("aws cloudformation deploy")]
    assert "--template-file out/prod/rollback.yaml" in deploy and '"ReleaseVersion=$ROLLBACK_TO"' in deploy
    assert steps.index(check) < steps.index(deploy)
    # The forward deploy checks too, without the override.
    (forward,) = [c for c in commands(docs_deploy) if "infra.release_version check" in c]
    assert "--allow-older" not in forward and '--version "$VERSION"' in forward


def test_the_documented_make_targets_exist() -> None:
    makefile = (PROJECT_DIR / "Makefile").read_text()
    for command in all_commands():
        for target in re.findall(r"(?:^|&& )make ([a-z-]+)", command):
            assert re.search(rf"^{target}:", makefile, re.M), target
