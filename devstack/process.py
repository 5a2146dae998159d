"""Run `python -m devstack run` (what `make run` runs) as a child process: for the e2e tests and the load test."""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalicelib.adapters import private_files
from devstack import lifecycle, resources, stall

PROJECT_DIR = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 90
STALL_CONTROL_TIMEOUT_S = 10
STOP_TIMEOUT_S = 30
LEFTOVER_STOP_TIMEOUT_S = 5
# Settings the stack must take from .chalice/config.json, not from whatever this process has.
APP_SETTINGS = {
    "STAGE", "TABLE_NAME", "USER_POOL_ID", "USER_POOL_CLIENT_ID", "USER_POOL_ARN", "CORS_ALLOW_ORIGIN",
    "CURSOR_SECRET", "CURSOR_SECRET_ARN", "AWS_ENDPOINT_URL", "JWKS_URL", "MAX_BODY_BYTES", "LOG_LEVEL",
    "AWS_LAMBDA_FUNCTION_NAME", "REQUIRE_API_KEY", "AVATAR_BUCKET",
    "AUDIT_TABLE_NAME", "EVENT_BUS_NAME", "EVENTS_FILE", "USERS_STREAM_ARN", "AWS_READ_TIMEOUT_S",
    "INVITATION_EMAIL_SUBJECT", "INVITATION_EMAIL_MESSAGE",
    "JOBS_TABLE_NAME", "JOBS_QUEUE", "JOBS_QUEUE_URL", "IMPORT_ROWS_PER_SECOND", "EXPORT_READ_UNITS_PER_SECOND",
}  # fmt: skip


# Stacks this process started and has not stopped yet (stopped at exit, see _stop_leftovers).
_started: set[subprocess.Popen[bytes]] = set()


class Stack:
    """A running stack: its stack file contents (`info`), the process and where the file is."""

    def __init__(self, info: dict[str, Any], process: subprocess.Popen[bytes], stack_file: Path):
        self.info = info
        self.process = process
        self.stack_file = stack_file
        self.url = str(info["api_url"])

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client of this stack's emulator (resources.emulator_client)."""
        return resources.emulator_client(service, self.info["aws_endpoint_url"], self.info["region"], **config)

    def token(self, username: str | None = None, password: str | None = None) -> str:
        return resources.id_token(
            self.info["aws_endpoint_url"],
            self.info["region"],
            self.info["user_pool_client_id"],
            username or self.info["admin_username"],
            password or self.info["admin_password"],
        )

    def add_user(self, email: str, password: str, admin: bool = False) -> str:
        resources.add_user(
            self.info["aws_endpoint_url"],
            self.info["region"],
            self.info["user_pool_id"],
            self.info["table_name"],
            email,
            password,
            admin,
        )
        return self.token(email, password)

    def stall(self, seconds: float, operations: list[str] | None = None, count: int = 1) -> None:
        """Make the emulator apply the next `count` DynamoDB requests of `operations` (None: any)
        and answer each `seconds` late (devstack/stall.py)."""
        self._stall_control("POST", {"seconds": seconds, "operations": operations, "count": count})

    def unstall(self) -> None:
        """Disarm the stall; an answer being held back goes now."""
        self._stall_control("DELETE")

    def stall_state(self) -> dict[str, Any]:
        """What the stall is armed with and how many DynamoDB requests it matched and held back."""
        return self._stall_control("GET")

    def _stall_control(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import requests

        with requests.Session() as session:
            # Loopback only: no proxy from the environment may reroute the call.
            session.trust_env = False
            response = session.request(
                method, self.info["aws_endpoint_url"] + stall.PATH, json=body, timeout=STALL_CONTROL_TIMEOUT_S
            )
        if response.status_code != 200:
            raise RuntimeError(f"{method} {stall.PATH} answered {response.status_code}: {response.text[:300]}")
        return dict(response.json())


def _read_info(stack_file: Path) -> dict[str, Any] | None:
    """The stack file's contents, or None while it is absent or still being written."""
    try:
        return dict(json.loads(stack_file.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


RUN_COMMAND = [sys.executable, "-m", "devstack", "run", "--port", "0"]


def stack_environment(stack_file: Path, settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment `python -m devstack run` gets here: this one without the app's settings
    (they come from .chalice/config.json) but for those given in `settings` (as a developer sets
    CORS_ALLOW_ORIGIN for `make run`), writing `stack_file`, stopping if this process dies."""
    env = {key: value for key, value in os.environ.items() if key not in APP_SETTINGS}
    env.update(settings or {})
    env.update(
        {
            "STACK_FILE": str(stack_file),
            "PORT": "0",
            "PYTHONUNBUFFERED": "1",
            lifecycle.PARENT_ENV: str(os.getpid()),
        }
    )
    return env


def start_stack(tmp: Path, settings: Mapping[str, str] | None = None) -> Stack:
    """Start a stack on free ports; its stack file and log (stack.log) go to `tmp`.

    The stack runs in its own process group (so its whole group can be killed), stops if this
    process dies (lifecycle.exit_with_parent), and is killed at this interpreter's exit if still
    running: none outlives the test run or tool that started it.
    """
    private_files.make_folder(tmp)
    stack_file = tmp / "stack.json"
    log = private_files.open_truncated(tmp / "stack.log")  # owner-only: it prints the seeded passwords
    process = subprocess.Popen(
        RUN_COMMAND,
        cwd=PROJECT_DIR,
        env=stack_environment(stack_file, settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()  # the child has its own copy
    _started.add(process)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while (info := _read_info(stack_file)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            _kill_group(process)
            raise RuntimeError("local stack did not start:\n" + (tmp / "stack.log").read_text())
        time.sleep(0.1)
    return Stack(info, process, stack_file)


def stop_stack(stack: Stack, sig: int = signal.SIGINT, timeout: float = STOP_TIMEOUT_S) -> int:
    """Stop the stack with `sig` (as Ctrl-C does), or SIGKILL its process group if it has not
    exited within `timeout` seconds; its exit status (negative: the signal that killed it)."""
    if stack.process.poll() is None:
        stack.process.send_signal(sig)
        try:
            stack.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(stack.process)
    return stack.process.returncode


@contextmanager
def running_stack(tmp: Path, settings: Mapping[str, str] | None = None) -> Iterator[Stack]:
    """A started stack, stopped (for sure) when the block ends, however it ends."""
    stack = start_stack(tmp, settings)
    try:
        yield stack
    finally:
        stop_stack(stack)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of a stack started here (the stack and anything it started)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its pid is its group's id: start_new_session
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
    process.wait()
    _started.discard(process)


@atexit.register
def _stop_leftovers() -> None:
    """Whatever a caller did not stop (a failed test between start and stop, an interrupted run):
    asked to stop as Ctrl-C would, killed if it does not within a few seconds."""
    for process in list(_started):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=LEFTOVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        _kill_group(process)
