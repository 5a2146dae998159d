"""Start the real local stack (`python -m devstack run`, what `make run` runs) once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.process import Stack, running_stack, start_stack, stop_stack

__all__ = ["Stack", "running_stack", "start_stack", "stop_stack"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Credentials for talking to the emulator from the test process (Cognito sign-in).
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    # Stopped for sure at the session's end (SIGKILL of its process group if it will not stop).
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


# The layer's files that take 3 s or more of a worker's time, longest first (from about 55 s down to
# about 3 s in a `make test` here); the other files, shorter, follow in their own order. `make test`
# hands out files in the order of the items (--dist loadfile --no-loadscope-reorder), and a worker is
# handed its next file while it still has a test or two to run. Handed out in alphabetical order, a
# 17 s file went last, queued behind another on one worker while the contract test's worker sat idle;
# with only the eight longest first, the next two (9 s and 8 s, which mostly wait on the stack) were
# left for the contract test's worker after it, and the run ended on them alone. Longest first, the
# files left for the end are short, and the workers end together.
LONGEST_FIRST = (
    "test_contract.py",
    "test_stack_lifecycle.py",
    "test_postman.py",
    "test_write_safety.py",
    "test_lifecycle.py",
    "test_bulk_jobs.py",
    "test_replay_dlq.py",
    "test_readme.py",
    "test_cli.py",
    "test_load.py",
    "test_browser_cors.py",
    "test_races.py",
    "test_local_stack.py",
    "test_browser_docs.py",
    "test_sign_in_actions.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (LONGEST_FIRST), the rest after them as collected."""
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable: the rest keep their order
