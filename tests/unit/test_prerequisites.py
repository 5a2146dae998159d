"""`make test` and `make run` on a machine that lacks something (.ci/prerequisites): they stop at
once, before any venv or npm work, with one line naming what is missing and the command that
installs it. Run as typed, `make test`, on a copy of the Makefile with a PATH that holds everything
but what is taken away, and no apt-get or sudo on it, so nothing is installed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
SCRIPT = PROJECT_DIR / ".ci" / "prerequisites"
# What `make test` checks for, each found on this machine's PATH (`make test` is running here).
TOOLS = ("node", "npm", "jq", "curl", "git", "terraform")
# The brief's bound: a missing prerequisite stops `make test` within seconds, not after minutes.
STOP_WITHIN_S = 30


def fake_path(tmp_path: Path, without: set[str]) -> Path:
    """A folder of the tools `make test` needs, as links to this machine's, less `without`; a
    stand-in Chromium (only its presence is checked)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    real_python = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    links = {"python3": str(real_python)}
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is on the PATH of a machine that runs `make test`"
        links[tool] = found
    for name, target in links.items():
        if name not in without:
            (folder / name).symlink_to(target)
    if "chromium" not in without:
        stand_in = folder / "chromium"
        stand_in.write_text("#!/bin/sh\nexit 0\n")
        stand_in.chmod(0o755)
    return folder


def make(tmp_path: Path, goal: str, without: set[str]) -> subprocess.CompletedProcess[str]:
    """`make <goal>` in a copy of the Makefile and .ci/prerequisites (were the check to let it
    through, nothing of the project would be touched), with only the fake PATH."""
    project = tmp_path / "project"
    (project / ".ci").mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "Makefile", project / "Makefile")
    shutil.copy(SCRIPT, project / ".ci" / "prerequisites")
    make_binary = shutil.which("make")
    assert make_binary
    env = {"PATH": str(fake_path(tmp_path, without)), "HOME": str(tmp_path)}
    process = subprocess.Popen(
        [make_binary, goal],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"`make {goal}` without {without} did not stop within {STOP_WITHIN_S} s")
    assert not (project / ".venv").exists() and not (project / "node_modules").exists()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1, result.stdout + result.stderr
    return lines[0]


def test_make_test_without_chromium_stops_at_once_with_one_line_and_the_install_command(tmp_path: Path) -> None:
    line = one_line(make(tmp_path, "test", {"chromium"}))
    assert "make test needs chromium (the browser tests); install with: sudo apt-get install -y chromium" in line
    for present in TOOLS:
        assert f"{present} (" not in line


def test_every_missing_tool_is_named_in_the_same_line(tmp_path: Path) -> None:
    line = one_line(make(tmp_path, "test", {"chromium", "jq", "npm", "node", "terraform"}))
    for tool in ("chromium", "jq", "npm", "node", "terraform"):
        assert f"{tool} (" in line
    assert "sudo apt-get install -y npm chromium jq;" in line  # npm brings node; each package once
    # Terraform is not one of Debian's packages: the line says where it comes from.
    assert line.endswith("terraform: https://developer.hashicorp.com/terraform/install.  Stop.")


def test_make_run_needs_only_python_with_venv(tmp_path: Path) -> None:
    line = one_line(make(tmp_path, "run", {"python3", "chromium", "jq", "npm", "node", "terraform"}))
    needs = "make run needs python3 (Python 3.11+ with venv)"
    assert f"{needs}; install with: sudo apt-get install -y python3 python3-venv" in line
    assert "chromium" not in line


def test_with_everything_present_the_check_says_nothing(tmp_path: Path) -> None:
    folder = fake_path(tmp_path, set())
    for goal in ("test", "run"):
        result = subprocess.run(
            ["/bin/bash", str(SCRIPT), goal], env={"PATH": str(folder)}, capture_output=True, text=True, timeout=30
        )
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_ci_runs_exactly_the_readmes_command() -> None:
    lines = [line for line in (PROJECT_DIR / ".ci" / "run").read_text().splitlines() if line and line[0] != "#"]
    assert lines[-1] == "make test"
    assert "apt-get" not in "\n".join(lines)  # make test installs what it needs; CI adds nothing
