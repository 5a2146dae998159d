"""The local stack's files that hold secrets (the outbox's temporary passwords, the stack file's
seeded passwords, the log that prints them, the change events' user ids) are readable by their
owner only from their first byte: created 0600 in a folder created 0700, never opened wider and
narrowed afterwards. Each test runs with umask 0, so a mode the writer did not ask for shows."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters import local_outbox
from chalicelib.adapters.event_bus import LocalEventBusPublisher
from devstack import lifecycle

OWNER_ONLY_FILE, OWNER_ONLY_FOLDER = 0o600, 0o700


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """umask 0: whatever mode a file is created with is the mode it has."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file made readable and narrowed afterwards was readable in between: no writer may chmod."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the mode must be set when the file is created, not changed afterwards")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(os, "fchmod", refuse)
    monkeypatch.setattr(Path, "chmod", refuse)


def write_outbox(path: Path) -> None:
    local_outbox.append(path, {"kind": "invitation", "to": "ada@example.com", "temporaryPassword": "Xx1!secret"})


def write_events(path: Path) -> None:
    LocalEventBusPublisher("bus", path, client=object()).published({"Detail": "{}", "DetailType": "UserCreated"})


def write_stack(path: Path) -> None:
    lifecycle.write_stack_file(path, {"admin_password": "Xx1!secret", "pid": 1})


WRITERS = {"outbox": write_outbox, "events": write_events, "stack file": write_stack}


@pytest.mark.parametrize("write", WRITERS.values(), ids=WRITERS.keys())
def test_a_new_file_and_its_new_folder_are_created_owner_only(tmp_path: Path, write: Any, no_chmod: None) -> None:
    path = tmp_path / ".local" / "file.json"
    write(path)
    assert mode(path) == OWNER_ONLY_FILE
    assert mode(path.parent) == OWNER_ONLY_FOLDER


@pytest.mark.parametrize("write", WRITERS.values(), ids=WRITERS.keys())
def test_a_folder_that_exists_is_left_as_it_is(tmp_path: Path, write: Any) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    write(folder / "file.json")
    assert mode(folder) == 0o755
    assert mode(folder / "file.json") == OWNER_ONLY_FILE


@pytest.mark.parametrize("write", [write_outbox, write_events], ids=["outbox", "events"])
def test_appends_keep_the_lines_and_the_mode(tmp_path: Path, write: Any) -> None:
    path = tmp_path / ".local" / "file.jsonl"
    write(path)
    write(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    assert mode(path) == OWNER_ONLY_FILE


@pytest.mark.parametrize("write", [write_outbox, write_events], ids=["outbox", "events"])
def test_a_file_left_readable_by_an_earlier_version_is_narrowed_and_kept(tmp_path: Path, write: Any) -> None:
    path = tmp_path / "old.jsonl"
    path.write_text('{"old": true}\n')
    path.chmod(0o644)
    write(path)
    assert mode(path) == OWNER_ONLY_FILE
    assert len(path.read_text().splitlines()) == 2 and path.read_text().startswith('{"old": true}\n')


def test_a_stack_file_is_whole_or_absent_and_a_stale_temporary_file_does_not_leak_its_mode(tmp_path: Path) -> None:
    path = tmp_path / ".local" / "stack.json"
    path.parent.mkdir(mode=0o700)
    stale = path.with_name(f".{path.name}.{os.getpid()}")  # left by a writer that was killed
    stale.write_text("half")
    stale.chmod(0o644)
    write_stack(path)
    assert json.loads(path.read_text())["admin_password"] == "Xx1!secret"
    assert mode(path) == OWNER_ONLY_FILE
    assert not stale.exists()
