"""Files the local stack writes that hold secrets or personal data (the outbox's temporary
passwords, the stack file's seeded passwords, the log that prints them, the change events):
readable by their owner only from their first byte.

A file is created 0600 by the `open` that makes it, and a folder made for it 0700 by the `mkdir`
that makes it: opened with the default mode and narrowed by a chmod afterwards, it would be
readable by anyone in between (and for good if the process died in between). umask can only
narrow these modes further. A folder that already exists is the user's choice and is left alone.
Never used on Lambda, which writes no files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
FOLDER_MODE = 0o700
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def make_folder(folder: Path) -> None:
    """`folder` and any missing parent; the folder itself, when made here, owner-only."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)


def _open(path: Path, flags: int) -> int:
    make_folder(path.parent)
    fd = os.open(path, flags | os.O_WRONLY | os.O_CREAT | _CLOEXEC, FILE_MODE)
    try:
        # Made by an earlier version with the default mode: narrowed before anything new goes in.
        if stat.S_IMODE(os.fstat(fd).st_mode) & ~FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def append_line(path: Path, line: str) -> None:
    """Append `line` and a newline, in one write (O_APPEND: whole lines even with other writers)."""
    with os.fdopen(_open(path, os.O_APPEND), "ab") as out:
        out.write(line.encode() + b"\n")


def open_truncated(path: Path) -> BinaryIO:
    """`path` emptied (or created) for writing, as a binary file (a log a child process writes to)."""
    return os.fdopen(_open(path, os.O_TRUNC), "wb")


def replace(path: Path, text: str) -> None:
    """`path` holds `text`, whole or not at all for whoever reads it meanwhile: written to a new
    file beside it, then renamed over it."""
    make_folder(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)  # left by a writer that was killed: made afresh, with our mode
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    temporary.replace(path)
