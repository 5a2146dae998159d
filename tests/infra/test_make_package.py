"""The first commands of docs/DEPLOY.md, typed as a user types them: `make package STAGE=<stage>`
for every deployed stage (make exports STAGE to what it runs, so packaging must not take the app's
settings from its environment), and a packaging failure said in one line, never a traceback.

Each runs in a copy of the checkout (tests/support/project_copy.py): the command line is the
documented one, and the repository's own out/ is left alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra.packaging import APP_SETTINGS
from infra.stages import DEPLOYED_STAGES, PROJECT_DIR
from tests.support.project_copy import make, project_copy, user_shell

TARGETS = {
    "package": "out/{stage}/cloudformation/sam.json",
    "package-tf": "out/{stage}/terraform/chalice.tf.json",
    "base-template": "out/{stage}/base.json",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project_copy(tmp_path_factory.mktemp("checkout"))


def own_lines(stderr: str) -> list[str]:
    """What the command itself said on stderr: make's own `make: *** [...] Error 1` aside."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("make: ***")]


def api_key_routes(sam: Path) -> list[str]:
    body = json.loads(sam.read_text())["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    return sorted(
        f"{method.upper()} {path}"
        for path, methods in body["paths"].items()
        for method, operation in methods.items()
        if any("api_key" in requirement for requirement in operation.get("security", []))
    )


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_make_package_works_for_every_stage_as_documented(project: Path, stage: str) -> None:
    result = make(project, "package", f"STAGE={stage}")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    sam = project / TARGETS["package"].format(stage=stage)
    template = json.loads(sam.read_text())
    assert template["Resources"]["APIHandler"]["Properties"]["FunctionName"] == f"users-api-{stage}"
    assert (sam.parent / "deployment.zip").is_file()
    # The stage's own settings shaped the routes: only prod's /users routes take an API key.
    assert bool(api_key_routes(sam)) is (stage == "prod")


def test_packaging_takes_the_stages_settings_not_the_shells(project: Path, tmp_path: Path) -> None:
    """A shell that happens to hold another stage's settings (or a pasted pool) changes nothing."""
    shell = {
        **user_shell(),
        "REQUIRE_API_KEY": "true",
        "USER_POOL_ARN": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Other1",
        "TABLE_NAME": "someone-elses-table",
    }
    result = make(project, "package", "STAGE=dev", f"OUT={tmp_path}", env=shell)
    assert result.returncode == 0, result.stderr
    sam = tmp_path / "dev" / "cloudformation" / "sam.json"
    assert api_key_routes(sam) == []
    assert "someone-elses-table" not in sam.read_text()
    assert "us-east-1_Other1" not in sam.read_text()


@pytest.mark.parametrize("target", TARGETS)
def test_an_unknown_stage_is_refused_in_one_line(project: Path, target: str) -> None:
    result = make(project, target, "STAGE=qa")
    assert result.returncode != 0
    (line,) = own_lines(result.stderr)
    assert "qa" in line and "dev, staging, prod" in line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_an_output_folder_that_cannot_be_written_is_said_in_one_line(project: Path, target: str) -> None:
    (project / "blocker").write_text("a file where the output folder would go\n")
    result = make(project, target, "STAGE=dev", "OUT=blocker")
    assert result.returncode != 0
    (line,) = own_lines(result.stderr)
    assert "blocker" in line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("target", ["package", "package-tf"])
def test_an_app_that_does_not_import_is_said_in_one_line(tmp_path: Path, target: str) -> None:
    broken = project_copy(tmp_path / "checkout")
    app = broken / "app.py"
    app.write_text(app.read_text() + '\nraise RuntimeError("this release cannot be imported")\n')
    result = make(broken, target, "STAGE=staging")
    assert result.returncode != 0
    (line,) = own_lines(result.stderr)
    assert "this release cannot be imported" in line
    assert "Traceback" not in result.stderr


def test_packaging_sets_aside_every_setting_the_app_reads() -> None:
    """The list packaging clears is complete: every quoted name chalicelib reads from an environment."""
    read = {
        name
        for path in (PROJECT_DIR / "chalicelib").rglob("*.py")
        for line in path.read_text().splitlines()
        if "environ" in line
        for name in re.findall(r'"([A-Z_][A-Z0-9_]+)"', line)
    }
    # The region is the machine's (Chalice needs one to render ARNs); the CLI flag is Chalice's own.
    assert read - {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CHALICE_CLI_MODE"} <= APP_SETTINGS
    assert {"STAGE", "USER_POOL_ARN", "REQUIRE_API_KEY", "TABLE_NAME"} <= read
