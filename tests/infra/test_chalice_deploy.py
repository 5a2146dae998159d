"""`chalice deploy` of a deployed stage whose USER_POOL_ARN was never filled in stops before any
AWS call, with a message that says what to set, instead of deploying an authorizer for a
placeholder pool. `make package` still works: it gives Chalice a stand-in that the template replaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.stages import PROJECT_DIR

CHALICE = Path(sys.executable).parent / "chalice"


def _project_copy(target: Path) -> Path:
    """The app and its config, so whatever Chalice writes (.chalice/deployments) stays out of the repository."""
    shutil.copy2(PROJECT_DIR / "app.py", target / "app.py")
    shutil.copy2(PROJECT_DIR / "requirements.txt", target / "requirements.txt")
    shutil.copytree(PROJECT_DIR / "chalicelib", target / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_DIR / ".chalice", target / ".chalice", ignore=shutil.ignore_patterns("deploy*"))
    return target


@pytest.mark.parametrize("command", [["deploy", "--stage", "dev"], ["package", "--stage", "staging", "out"]])
def test_chalice_refuses_a_deployed_stage_without_a_pool_arn(tmp_path: Path, command: list[str]) -> None:
    project = _project_copy(tmp_path)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Nothing listens here: had Chalice got as far as calling AWS, it would fail differently.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
    }
    result = subprocess.run(
        [str(CHALICE), "--project-dir", str(project), *command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    stage = command[2]
    assert f"USER_POOL_ARN is 'not set' for stage '{stage}'" in result.stderr
    assert f"stages.{stage}.environment_variables" in result.stderr
    assert "127.0.0.1:9" not in result.stderr  # refused before any AWS call
    assert not (project / ".chalice" / "deployed").exists()
