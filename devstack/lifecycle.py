"""The local stack's life: one per port and per stack file, stopped by SIGINT or SIGTERM, and
never outliving a test run that started it."""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any

from chalicelib.adapters import private_files

# Set by devstack.process.start_stack: the pid whose death stops the stack (see exit_with_parent).
PARENT_ENV = "DEVSTACK_EXIT_WITH_PARENT"
PARENT_POLL_S = 0.5


class AlreadyRunning(Exception):
    """A stack already holds this stack file or this port."""


def stop_on_signals() -> None:
    """SIGINT and SIGTERM stop the stack as Ctrl-C does (KeyboardInterrupt in the main thread)."""

    def stop(signum: int, frame: Any) -> None:
        # Once: a second signal while the stack stops must not cut its cleanup short (SIGKILL still can).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


def exit_with_parent() -> None:
    """Stop when the process named by DEVSTACK_EXIT_WITH_PARENT is gone, so a stack that a test run
    started does not outlive it even when the run itself is killed (no finalizer, no atexit)."""
    watched = os.environ.pop(PARENT_ENV, "")
    if not watched.isdigit():
        return
    pid = int(watched)

    def watch() -> None:
        while alive(pid):
            time.sleep(PARENT_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def alive(pid: int) -> bool:
    """Whether process `pid` still runs: until every thread of it has ended. Its first thread shows as
    a zombie as soon as it exits, while the others, which hold the process's sockets, may still be on
    their way out; a zombie nobody reaps for a while (PID 1 of a container) has ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True  # no /proc (macOS): that the pid exists is all we can tell
    return any(_thread_state(pid, thread) not in ("Z", None) for thread in threads)


def _thread_state(pid: int, thread: str) -> str | None:
    """A thread's state letter (R, S, Z, ...); None once the thread is gone."""
    try:
        return Path(f"/proc/{pid}/task/{thread}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def is_a_stack(pid: int) -> bool:
    if not alive(pid):
        return False
    try:
        # A pid reused since a stack was killed (no cleanup) belongs to some other program.
        return b"devstack" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): alive is all we can tell


def read_stack_file(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def refuse_if_running(stack_file: Path) -> None:
    """AlreadyRunning if the stack file belongs to a stack that is still running."""
    info = read_stack_file(stack_file)
    pid = info.get("pid") if info else None
    if not isinstance(pid, int) or pid == os.getpid() or not is_a_stack(pid):
        return  # none, or left behind by a stack that was killed: ours to replace
    assert info is not None
    raise AlreadyRunning(
        f"one is already running from this checkout (pid {pid}, {info.get('api_url')}; details in "
        f"{_display(stack_file)}). Stop it first (Ctrl-C in its terminal, or `kill {pid}`), or start another "
        "with its own port and stack file: PORT=9000 STACK_FILE=.local/stack-9000.json make run"
    )


def claim_port(host: str, port: int) -> Any:
    """The API's listening server, bound now: before the emulator starts or any file is written."""
    from devstack.gateway import bind

    try:
        return bind(host, port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise AlreadyRunning(
            f"{host}:{port} is already in use (by another `make run`, or another program). Stop it, or choose "
            "another port: PORT=9000 make run"
        ) from None


def new_instance_id() -> str:
    return secrets.token_hex(8)


def write_stack_file(path: Path, info: dict[str, Any]) -> None:
    # Readable by its owner only (it holds the seeded users' passwords), and whole or absent,
    # never half-written, for whoever polls it (devstack.process).
    private_files.replace(path, json.dumps(info, indent=2) + "\n")


def remove_own_stack_file(path: Path, written: dict[str, Any]) -> None:
    """Remove the stack file only if it is still the one this stack wrote."""
    found = read_stack_file(path)
    if found is not None and found.get("pid") == written["pid"] and found.get("instance") == written["instance"]:
        path.unlink(missing_ok=True)
