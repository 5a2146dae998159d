"""Which moto a test runs on. The integration and functional layers run it with the local stack's
patches (devstack/moto_patches.py), as `make run` serves it; a test that needs moto as released,
or checks the patching itself, says so for its block and gets the layer's state back after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from devstack import moto_patches


def _use(patched: bool) -> None:
    if patched:
        moto_patches.apply()
    else:
        moto_patches.remove()


@contextmanager
def moto_as(patched: bool) -> Iterator[None]:
    """moto patched or as released for the block, then as it was before the block."""
    was_patched = bool(moto_patches.active())
    _use(patched)
    try:
        yield
    finally:
        _use(was_patched)


@pytest.fixture(autouse=True)
def moto_as_make_run_serves_it() -> None:
    """The layer's moto (a conftest.py imports this fixture): released moto deep-copies every table
    a transaction names, and the functional layer's tables live for the whole layer (about half
    the in-process time went to those copies). Per test, since moto registers some model classes
    only as they are imported."""
    moto_patches.apply()
