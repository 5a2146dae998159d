"""devstack.lifecycle.alive: a process runs until every thread of it has ended, and a zombie nobody
has reaped yet has ended (what the parent watch, a stack file's owner check and the stack-lifecycle
tests rely on)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devstack.lifecycle import alive
from tests.support.waiting import wait_until

# A process with three threads besides its first, all asleep until killed.
THREADED = (
    "import threading, time\n"
    "for _ in range(3):\n"
    "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def threaded() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, "-c", THREADED], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    yield process
    process.kill()
    process.wait()


def test_a_running_process_with_threads_is_alive(threaded: subprocess.Popen[str]) -> None:
    assert alive(threaded.pid)


def test_a_killed_process_nobody_has_reaped_has_ended_and_so_has_a_reaped_one(
    threaded: subprocess.Popen[str],
) -> None:
    threaded.send_signal(signal.SIGKILL)
    # Not reaped: it stays a zombie until this process waits for it.
    assert wait_until(lambda: not alive(threaded.pid), 10)
    assert threaded.poll() == -signal.SIGKILL
    assert not alive(threaded.pid)
