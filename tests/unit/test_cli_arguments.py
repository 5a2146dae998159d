"""`make user` and `make token` as the README types them, with an argument left out: one line
naming what is missing and the command as it should be, before any stack is looked for; and the
password policy a refused password is told about, in words, from infra/limits.json."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from devstack.__main__ import TOKEN_EXAMPLE, USER_EXAMPLE, password_policy

PROJECT_DIR = Path(__file__).resolve().parents[2]
README = (PROJECT_DIR / "README.md").read_text()


def documented(target: str, first: str) -> list[str]:
    """The README's `make <target> FIRST=value ...`, as its arguments."""
    line = next(line for line in README.splitlines() if re.search(rf"make (-s )?{target} {first}=", line))
    words = shlex.split(line[line.index("make") :].split(")")[0].split("  #")[0])
    return [word for word in words if "=" in word]


def make(tmp_path: Path, target: str, *variables: str) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    env["STACK_FILE"] = str(tmp_path / "no-stack.json")  # the check comes before the stack is looked for
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", target, *variables],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and result.stdout == "" and "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("make: ***")]


def test_the_readme_shows_both_commands_with_both_arguments() -> None:
    assert [word.split("=")[0] for word in documented("user", "EMAIL")] == ["EMAIL", "PASSWORD"]
    assert [word.split("=")[0] for word in documented("token", "USER")] == ["USER", "PASSWORD"]
    # The line's example is the README's command.
    assert USER_EXAMPLE.startswith("make user EMAIL=jo@example.com PASSWORD='Another-passw0rd!'")
    assert "make user EMAIL=jo@example.com PASSWORD='Another-passw0rd!'" in README
    assert TOKEN_EXAMPLE.startswith("make token USER=jo@example.com PASSWORD='Another-passw0rd!'")
    assert "make -s token USER=jo@example.com PASSWORD='Another-passw0rd!'" in README


@pytest.mark.parametrize("left_out", [{"EMAIL"}, {"PASSWORD"}, {"EMAIL", "PASSWORD"}])
def test_make_user_names_what_is_missing_in_one_line(tmp_path: Path, left_out: set[str]) -> None:
    given = [word for word in documented("user", "EMAIL") if word.split("=")[0] not in left_out]
    missing = " and ".join(name for name in ("EMAIL", "PASSWORD") if name in left_out)
    verb = "is" if len(left_out) == 1 else "are"
    assert make(tmp_path, "user", *given) == [f"make user: {missing} {verb} missing: {USER_EXAMPLE}"]


@pytest.mark.parametrize("left_out", ["USER", "PASSWORD"])
def test_make_token_for_a_user_names_what_is_missing_in_one_line(tmp_path: Path, left_out: str) -> None:
    given = [word for word in documented("token", "USER") if word.split("=")[0] != left_out]
    assert make(tmp_path, "token", *given) == [f"make token: {left_out} is missing: {TOKEN_EXAMPLE}"]


def test_a_first_sign_in_without_the_temporary_password_names_it(tmp_path: Path) -> None:
    assert make(tmp_path, "token", "USER=ada@example.com", "NEW_PASSWORD=Ada-passw0rd-2!") == [
        f"make token: PASSWORD is missing: {TOKEN_EXAMPLE}"
    ]


def test_the_seeded_users_tokens_need_no_argument(tmp_path: Path) -> None:
    # Not an argument error: it goes on to look for the stack.
    (line,) = make(tmp_path, "token")
    assert line.endswith("not found: start the stack first with `make run`")


def test_the_password_policy_in_words_is_the_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra import stages

    assert (
        password_policy()
        == "at least 12 characters, with an uppercase letter, a lowercase letter, a number and a symbol"
    )
    monkeypatch.setattr(
        stages,
        "load_limits",
        lambda: {"password_policy": {"MinimumLength": 8, "RequireNumbers": True, "RequireSymbols": False}},
    )
    assert password_policy() == "at least 8 characters, with a number"
