"""The README's examples, run in order against a stack started as `make run` starts it, each
command's printed status (or output) checked against the comment the README gives it; then
docs/LOCAL.md's invited user, who continues from them."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, running_stack
from tests.support.local_api import shell_env

PROJECT_DIR = Path(__file__).resolve().parents[2]
README = PROJECT_DIR / "README.md"
SECTION = "## A first token and three calls"
LOCAL = PROJECT_DIR / "docs" / "LOCAL.md"
LOCAL_SECTION = "### Invited users"
STATUSES = re.compile(r"[1-5][0-9]{2}( [1-5][0-9]{2})*")
MARK = "@@end-of-command@@"


@dataclass
class Command:
    text: str
    expected: str | None  # statuses ("201 201"), one word of output, or None (prose)


def blocks(path: Path = README, heading: str = SECTION) -> list[str]:
    section = path.read_text().split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def commands(block: str) -> list[Command]:
    found: list[Command] = []
    lines: list[str] = []
    for line in block.splitlines():
        if not lines and (not line.strip() or line.lstrip().startswith("#")):
            continue
        lines.append(line)
        text = "\n".join(lines)
        if line.rstrip().endswith("\\") or (text.startswith("for ") and not line.startswith("done")):
            continue
        comment = line.split("  # ", 1)[1].strip() if "  # " in line else ""
        expected = comment if STATUSES.fullmatch(comment) or (comment and " " not in comment) else None
        found.append(Command(text, expected))
        lines = []
    return found


def test_the_readme_has_its_examples_within_150_lines() -> None:
    assert len(README.read_text().splitlines()) <= 150
    assert len(blocks()) == 2 and sum(len(commands(b)) for b in blocks()) >= 12
    assert len(blocks(LOCAL, LOCAL_SECTION)) == 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Its own stack: the examples create users whose emails other tests' stacks may hold.
    with running_stack(tmp_path_factory.mktemp("readme")) as running:
        yield running


def test_every_example_runs_in_order_and_answers_as_its_comment_says(stack: Stack) -> None:
    script = ["set -euo pipefail"]
    checked: list[Command] = []
    for block in [*blocks(), *blocks(LOCAL, LOCAL_SECTION)]:
        for command in commands(block):
            text = command.text
            if text.startswith("API="):
                text = f"API={stack.url}"  # this stack's port, not 8000
            script += [text, f"echo {MARK}"]
            checked.append(command)
    ran = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=PROJECT_DIR,
        env=shell_env(stack.stack_file),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    outputs = ran.stdout.split(f"{MARK}\n")
    assert len(outputs) == len(checked) + 1
    for command, output in zip(checked, outputs, strict=False):
        if command.expected is None:
            continue
        if STATUSES.fullmatch(command.expected):
            printed = [line.split()[-1] for line in output.splitlines() if line.split()]
            assert " ".join(printed) == command.expected, (command.text, output)
        else:
            assert output.strip() == command.expected, (command.text, output)


def test_make_help_lists_the_quick_starts_targets() -> None:
    shown = subprocess.run(["make", "help"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True).stdout
    for target in ("run", "test", "token", "user", "outbox", "events", "drift"):
        assert re.search(rf"^\s+{target}\s", shown, re.M), target
