"""`make help`, and a bare `make`, list every target with its one-line description."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
MAKEFILE = (PROJECT_DIR / "Makefile").read_text()
# A rule named by a plain word (not `$(STAMP):`, not `VAR :=`), with what follows its colon.
RULE = re.compile(r"^([a-z][a-z-]*):(?!=)(.*)$", re.MULTILINE)


def phony() -> set[str]:
    (line,) = re.findall(r"^\.PHONY:(.*)$", MAKEFILE, re.MULTILINE)
    return set(line.split())


def described() -> dict[str, str]:
    """Each target's `## description`, or '' where it has none."""
    return {name: rest.partition("## ")[2].strip() for name, rest in RULE.findall(MAKEFILE)}


def make(*args: str) -> str:
    env = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    result = subprocess.run(
        ["make", "--no-print-directory", *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def test_every_target_is_phony_and_has_a_one_line_description() -> None:
    targets = described()
    assert set(targets) == phony()
    assert {name for name, text in targets.items() if not text} == set()


def test_make_help_lists_every_target_once_with_its_description() -> None:
    listed = make("help").splitlines()
    for name, text in described().items():
        lines = [line for line in listed if line.split()[0] == name]
        assert len(lines) == 1, name
        assert lines[0].split(None, 1)[1] == text
    assert len(listed) == len(described())


def test_a_bare_make_prints_the_same_list() -> None:
    assert make() == make("help")


def _infra_command(*args: str) -> str:
    """The `python -m infra` (or `-m ops`) line `make -n <args>` would run."""
    (line,) = [line for line in make("-n", *args).splitlines() if " -m infra " in line or " -m ops " in line]
    return line


def test_the_upgrade_commands_reach_their_steps_as_typed() -> None:
    """docs/DEPLOY.md, "Upgrading the users table": each INDEX_STEP template and the reindex."""
    assert _infra_command("package", "STAGE=prod", "INDEX_STEP=2").endswith(
        "-m infra package prod out/prod/cloudformation --index-step 2"
    )
    assert _infra_command("package", "STAGE=prod").endswith("-m infra package prod out/prod/cloudformation ")
    assert _infra_command("base-template", "STAGE=dev", "INDEX_STEP=1").endswith("--index-step 1")
    assert _infra_command("reindex", "STAGE=prod").endswith("-m ops reindex prod")
    assert _infra_command("reindex").endswith("-m ops reindex local")


def test_make_fuzz_runs_the_model_test_long_as_typed() -> None:
    """docs/TESTING.md, "The model test": `make fuzz` (2,000 sequences over two processes) and its
    overrides reach the model test's settings."""
    plain = make("-n", "fuzz")
    assert "MODEL_FUZZ=1 MODEL_EXAMPLES=$(( 2000 / 2 )) MODEL_STEPS=20" in plain
    assert "MODEL_SHARDS=2" in plain and "pytest -n 2 " in plain and "tests/functional/test_model.py" in plain
    given = make("-n", "fuzz", "EXAMPLES=500", "STEPS=30", "JOBS=1")
    assert "MODEL_EXAMPLES=$(( 500 / 1 )) MODEL_STEPS=30" in given and "MODEL_SHARDS=1" in given
