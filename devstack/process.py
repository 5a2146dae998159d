"""Run `python -m devstack run` (what `make run` runs) as a child process: for the e2e tests and the load test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devstack import resources, stall

PROJECT_DIR = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 90
STALL_CONTROL_TIMEOUT_S = 10
# Settings the stack must take from .chalice/config.json, not from whatever this process has.
APP_SETTINGS = {
    "STAGE", "TABLE_NAME", "USER_POOL_ID", "USER_POOL_CLIENT_ID", "USER_POOL_ARN", "CORS_ALLOW_ORIGIN",
    "CURSOR_SECRET", "CURSOR_SECRET_ARN", "AWS_ENDPOINT_URL", "JWKS_URL", "MAX_BODY_BYTES", "LOG_LEVEL",
    "AWS_LAMBDA_FUNCTION_NAME", "REQUIRE_API_KEY", "AVATAR_BUCKET",
    "AUDIT_TABLE_NAME", "EVENT_BUS_NAME", "EVENTS_FILE", "USERS_STREAM_ARN",
}  # fmt: skip


class Stack:
    """A running stack: its stack file contents (`info`), the process and where the file is."""

    def __init__(self, info: dict[str, Any], process: subprocess.Popen[bytes], stack_file: Path):
        self.info = info
        self.process = process
        self.stack_file = stack_file
        self.url = str(info["api_url"])

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


def start_stack(tmp: Path) -> Stack:
    """Start a stack on free ports; its stack file and log (stack.log) go to `tmp`."""
    stack_file = tmp / "stack.json"
    env = {key: value for key, value in os.environ.items() if key not in APP_SETTINGS}
    env.update({"STACK_FILE": str(stack_file), "PORT": "0", "PYTHONUNBUFFERED": "1"})
    log = (tmp / "stack.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "run", "--port", "0"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()  # the child has its own copy
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while (info := _read_info(stack_file)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError("local stack did not start:\n" + (tmp / "stack.log").read_text())
        time.sleep(0.1)
    return Stack(info, process, stack_file)


def stop_stack(stack: Stack, sig: int = signal.SIGINT) -> int:
    stack.process.send_signal(sig)
    return stack.process.wait(timeout=30)
