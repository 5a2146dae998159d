"""The local stack refuses to start on a moto other than the one its patches were copied from."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack import moto_patches
from tests.support.moto_state import moto_as

PROJECT_DIR = Path(__file__).resolve().parents[2]


OTHER_MOTO = "5.3.0"


@contextmanager
def refused_version() -> Iterator[str]:
    """Another moto installed (its version is yielded), for the block only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(moto_patches, "version", lambda name: OTHER_MOTO)
        yield OTHER_MOTO


def test_the_pinned_version_is_the_one_the_requirements_install() -> None:
    pin = re.search(r"^moto\[[^\]]*\]==(\S+)$", (PROJECT_DIR / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert pin is not None
    assert pin.group(1) == moto_patches.PINNED_MOTO_VERSION
    moto_patches.check_version()  # and it is what this environment has


def test_another_version_is_refused_with_both_versions_and_what_to_do() -> None:
    with refused_version() as other_moto, pytest.raises(moto_patches.MotoVersionMismatch) as refused:
        moto_patches.check_version()
    message = str(refused.value)
    assert f"patches moto {moto_patches.PINNED_MOTO_VERSION}, but moto {other_moto} is installed" in message
    assert "rm .venv/.installed && make run" in message
    assert "PINNED_MOTO_VERSION" in message


def test_nothing_is_patched_when_the_version_is_refused() -> None:
    # As a fresh process finds moto (a worker may have run other layers); the version is put back
    # before the worker's own moto is.
    with moto_as(patched=False), refused_version():
        with pytest.raises(moto_patches.MotoVersionMismatch):
            moto_patches.apply()
        assert moto_patches.active() == []


def test_the_stack_stops_at_start_with_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from devstack.__main__ import run

    # run() sets fake emulator credentials first; monkeypatch puts the environment back afterwards.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.setenv(name, "unused")
    with moto_as(patched=False), refused_version():  # as above
        with pytest.raises(SystemExit) as stopped:
            run("127.0.0.1", 0, 0)
        assert moto_patches.active() == []
    assert str(stopped.value.code).startswith("Cannot start the local stack: devstack/moto_patches.py patches moto")
