"""The local stack's life: a second start refuses and leaves the first alone, SIGINT and SIGTERM
stop it however it was started, and no stack outlives whoever started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.lifecycle import alive, read_stack_file
from devstack.process import PROJECT_DIR, RUN_COMMAND, running_stack, stack_environment, start_stack, stop_stack
from tests.support.listeners import listening, port_of
from tests.support.waiting import wait_until

TIMEOUT = 15
# A refused start exits at once; one that is not refused would run until killed.
REFUSAL_TIMEOUT_S = 20


def _start_again(stack_file: Path, port: int) -> subprocess.CompletedProcess[str]:
    """`make run` once more, as `PORT=<port> python -m devstack run` with this stack file."""
    command = [*RUN_COMMAND[:-1], str(port)]
    return subprocess.run(
        command,
        cwd=PROJECT_DIR,
        env=stack_environment(stack_file),
        capture_output=True,
        text=True,
        timeout=REFUSAL_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


# What an earlier `make run` left in the folder of the stack file: its invitations and events.
EARLIER_RUN = '{"to": "earlier@example.com", "note": "written by an earlier run"}\n'


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # One stack for the module's tests: each leaves it as it found it (that is what they check).
    folder = tmp_path_factory.mktemp("first")
    for name in ("outbox.jsonl", "events.jsonl"):
        (folder / name).write_text(EARLIER_RUN)
    with running_stack(folder) as stack:
        yield stack


def _make(target: str, stack_file: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    return subprocess.run(
        ["make", "-s", "--no-print-directory", target],
        cwd=PROJECT_DIR,
        env={**env, "STACK_FILE": str(stack_file)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_a_start_shows_none_of_the_earlier_runs_invitations_or_events(first: Any) -> None:
    for target, name in (("outbox", "outbox_file"), ("events", "events_file")):
        assert Path(first.info[name]).parent == first.stack_file.parent
        shown = _make(target, first.stack_file)
        assert shown.returncode == 0, shown.stderr
        file = Path(first.info[name])
        assert "earlier run" not in shown.stdout + shown.stderr + (file.read_text() if file.exists() else "")
    # Nothing invited yet (the seeded users have their passwords); the events are the seeding's.
    assert _make("outbox", first.stack_file).stdout == ""
    assert {json.loads(line)["DetailType"] for line in _make("events", first.stack_file).stdout.splitlines()} <= {
        "UserCreated"
    }


def test_a_second_start_with_the_same_stack_file_and_port_refuses_and_leaves_the_first_alone(first: Any) -> None:
    before = first.stack_file.read_bytes()
    # An invitation of this run, as the app appends one (removed below: the stack is the module's).
    outbox = Path(first.info["outbox_file"])
    kept = '{"to": "this-run@example.com"}\n'
    outbox.write_text(kept)
    second = _start_again(first.stack_file, port_of(first.url))
    assert second.returncode == 1, second.stderr
    (line,) = second.stderr.strip().splitlines()  # one clear line, no traceback
    assert line.startswith("Cannot start the local stack: one is already running from this checkout")
    assert f"pid {first.process.pid}" in line and first.url in line
    assert "PORT=9000 STACK_FILE=.local/stack-9000.json make run" in line
    assert second.stdout == ""  # nothing started, so nothing to stop
    assert first.stack_file.read_bytes() == before
    # The running stack's invitations stay: a refused start wipes nothing.
    assert outbox.read_text() == kept
    outbox.unlink()
    assert requests.get(first.url + "/hello", timeout=TIMEOUT).status_code == 200


def test_a_second_start_on_another_port_still_leaves_the_first_stack_file_alone(first: Any) -> None:
    before = first.stack_file.read_bytes()
    second = _start_again(first.stack_file, 0)
    assert second.returncode == 1 and "already running" in second.stderr
    assert first.stack_file.read_bytes() == before


def test_a_start_on_a_taken_port_names_the_port_and_how_to_choose_another(first: Any, tmp_path: Path) -> None:
    own_file = tmp_path / "second" / "stack.json"
    port = port_of(first.url)
    started = time.monotonic()
    second = _start_again(own_file, port)
    assert second.returncode == 1, second.stderr
    (line,) = second.stderr.strip().splitlines()
    assert line == (
        f"Cannot start the local stack: 127.0.0.1:{port} is already in use (by another `make run`, or another "
        "program). Stop it, or choose another port: PORT=9000 make run"
    )
    # Refused before the emulator started or anything was written.
    assert time.monotonic() - started < REFUSAL_TIMEOUT_S / 2
    assert second.stdout == "" and not own_file.parent.exists()
    assert requests.get(first.url + "/hello", timeout=TIMEOUT).status_code == 200


def test_a_stack_never_removes_a_stack_file_it_did_not_write(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        # Another stack's, written over this one's while it ran.
        someone_else = {"api_url": "http://127.0.0.1:9000", "pid": stack.process.pid + 1, "instance": "other"}
        stack.stack_file.write_text(json.dumps(someone_else))
        assert stop_stack(stack, signal.SIGINT) == 0
    assert read_stack_file(stack.stack_file) == someone_else


def test_a_background_job_of_a_script_starts_with_sigint_ignored() -> None:
    """The premise of the next test: what `make run &` in a script gives the stack."""
    probe = "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"
    job = subprocess.run(
        ["bash", "-c", '"$0" -c "$1" & wait', sys.executable, probe], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert job.stdout.strip() == "True"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stack_started_in_the_background_of_a_script_stops_on(sig: signal.Signals, tmp_path: Path) -> None:
    stack_file = tmp_path / "stack.json"
    log = tmp_path / "stack.log"
    with log.open("wb") as out:
        script = subprocess.Popen(
            ["bash", "-c", '"$0" -m devstack run --port 0 & wait', sys.executable],
            cwd=PROJECT_DIR,
            env=stack_environment(stack_file),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        assert wait_until(lambda: read_stack_file(stack_file) is not None, 60), log.read_text()
        info = read_stack_file(stack_file)
        assert info is not None
        assert requests.get(info["api_url"] + "/hello", timeout=TIMEOUT).status_code == 200
        os.kill(info["pid"], sig)
        assert script.wait(timeout=10) == 0, log.read_text()
        assert not stack_file.exists()
        assert not listening(info["api_url"]) and not listening(info["aws_endpoint_url"])
        assert "Stopped the API and the embedded AWS stack." in log.read_text()
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()


def test_a_stack_that_will_not_stop_is_killed_with_its_process_group(tmp_path: Path) -> None:
    stack = start_stack(tmp_path)
    api_url, moto_url = stack.url, stack.info["aws_endpoint_url"]
    # A stopped process handles no signal but SIGKILL: as a stack hung in its shutdown.
    os.kill(stack.process.pid, signal.SIGSTOP)
    started = time.monotonic()
    assert stop_stack(stack, signal.SIGINT, timeout=2) == -signal.SIGKILL
    assert time.monotonic() - started < 10
    assert not listening(api_url) and not listening(moto_url)


@pytest.mark.parametrize("ending", ["returns", "is killed"])
def test_no_stack_outlives_the_process_that_started_it(ending: str, tmp_path: Path) -> None:
    """A test run that ends without stopping its stack (atexit), or that is killed (the stack
    watches it): either way the stack goes with it."""
    starter = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from devstack.process import start_stack\n"
        "stack = start_stack(Path(sys.argv[1]))\n"
        "print(stack.process.pid, stack.url, stack.info['aws_endpoint_url'], flush=True)\n"
        "if sys.argv[2] == 'is killed':\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run(
        [sys.executable, "-c", starter, str(tmp_path), ending],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    pid_text, api_url, moto_url = done.stdout.split()
    pid = int(pid_text)
    try:
        assert wait_until(lambda: not alive(pid), 10), "the stack outlived its starter"
        assert not listening(api_url) and not listening(moto_url)
    finally:
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
