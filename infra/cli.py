"""What the command-line entry points (`python -m infra`, `python -m ops`) share: a failure the
user can act on is one line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

from chalicelib.config import ConfigurationError
from infra.stages import Stage, load_stage


def fail(program: str, command: str, message: object) -> NoReturn:
    sys.exit(f"{program} {command}: {message}")


def stage_or_fail(program: str, command: str, name: str) -> Stage:
    try:
        return load_stage(name)
    except (ValueError, KeyError, ConfigurationError) as exc:  # unknown stage, or a config it cannot read
        fail(program, command, exc)
