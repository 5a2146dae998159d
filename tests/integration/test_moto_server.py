"""MotoServer, the emulator `make run` serves: patched where it is made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack import moto_patches
from devstack.motoserver import MotoServer


@pytest.fixture
def server() -> Iterator[MotoServer]:
    running = MotoServer().start()
    try:
        yield running
    finally:
        running.stop()
        moto_patches.remove()  # MotoServer patches moto for its whole process; this one is pytest's


def test_the_server_is_made_with_the_patches_applied(server: MotoServer) -> None:
    assert (
        server.patches
        == moto_patches.active()
        == [
            moto_patches.TRANSACT_WRITE_ITEMS,
            moto_patches.WEAK_INSTANCE_TRACKING,
        ]
    )
