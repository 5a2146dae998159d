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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The contract test first. At about a minute it is the layer's longest file by far, so the
    layer takes no less than it does; started last, it would add its minute to the others' time.
    `make test` hands out files in this order (--dist loadfile --no-loadscope-reorder)."""
    items.sort(key=lambda item: item.path.name != "test_contract.py")  # stable: the rest keep their order
