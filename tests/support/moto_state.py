"""Which moto a test runs on. The integration and functional layers run it with the local stack's
patches (devstack/moto_patches.py), as `make run` serves it; a test that needs moto as released,
or checks the patching itself, says so for its block and gets the layer's state back after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from devstack import moto_patches


@contextmanager
def moto_as(patched: bool) -> Iterator[None]:
    """moto patched or as released for the block, then as it was before the block."""
    was_patched = bool(moto_patches.active())
    if patched:
        moto_patches.apply()
    else:
        moto_patches.remove()
    try:
        yield
    finally:
        if was_patched:
            moto_patches.apply()
        else:
            moto_patches.remove()
