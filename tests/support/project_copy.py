"""A copy of the checkout, to run the documented `make` commands exactly as written without
writing into the repository's own out/ (which `make lint-infra` fills and CI ships)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
# What `make` and its recipes must not inherit from an outer `make test`.
MAKE_VARIABLES = {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"}


def project_copy(target: Path) -> Path:
    """The checkout's files (tracked and new, never ignored ones) copied to `target`, with the
    installed .venv linked in, so `make` finds its stamp up to date and installs nothing."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = PROJECT_DIR / name
        if not source.is_file():
            continue  # deleted in the working tree, not yet in the index
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)  # keeps mtimes: the venv's stamp stays newer
    (target / ".venv").symlink_to(PROJECT_DIR / ".venv")
    return target


def user_shell() -> dict[str, str]:
    """A developer's shell: this environment without an outer make's flags."""
    return {key: value for key, value in os.environ.items() if key not in MAKE_VARIABLES}


def make(project: Path, *arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`make <arguments>` typed in `project`."""
    return subprocess.run(
        ["make", *arguments],
        cwd=project,
        env=user_shell() if env is None else env,
        capture_output=True,
        text=True,
        timeout=300,
    )
