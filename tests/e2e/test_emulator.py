"""The emulator `make run` starts: moto with the local stack's patches."""

from __future__ import annotations

from devstack import moto_patches
from tests.e2e.conftest import Stack


def test_the_stack_runs_moto_with_the_patches_applied(stack: Stack) -> None:
    assert stack.info["emulator_patches"] == [moto_patches.TRANSACT_WRITE_ITEMS, moto_patches.WEAK_INSTANCE_TRACKING]
