"""One bash session per path: blocks go in one at a time, as a user would paste them, and the
session's state (variables, the working directory) carries from one block to the next. A command
that asks for confirmation (`terraform apply`) is answered "yes", as the user would type it."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

from infra.rehearsal.commands import Block, commands, first_word

MARK = "@@rehearsal-block-done@@"
STATUS = "@@rehearsal-block-status="
PROMPT = "Enter a value: "
# terraform apply asks to approve, terraform destroy to confirm.
APPROVALS = ("Only 'yes' will be accepted to approve.", "Only 'yes' will be accepted to confirm.")
# Commands the rehearsal does not run, and why (docs/DEPLOY.md, "What the rehearsal cannot show").
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOT_RUN = {"curl": "calls the deployed API, which the emulator's API Gateway does not serve"}


class BlockFailed(Exception):
    pass


class Session:
    def __init__(self, name: str, cwd: Path, env: dict[str, str], log: list[str], scratch: Path):
        self.name = name
        self._scratch = scratch
        self._blocks = 0
        self.log = log
        self._process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._buffer = ""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._send("set -eo pipefail\n")

    def _read(self) -> None:
        assert self._process.stdout is not None
        while chunk := os.read(self._process.stdout.fileno(), 65536):
            with self._lock:
                self._buffer += chunk.decode(errors="replace")

    def _send(self, text: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(text.encode())
        self._process.stdin.flush()

    def run(self, block: Block, values: dict[str, str], timeout: float = 300, expect_exit: int = 0) -> str:
        """Run the block's commands (what NOT_RUN names is shown, not run); its output. With
        `expect_exit`, the block must stop with that status (in a subshell: its state is not kept)."""
        missing = [name for name in block.needs if name not in values]
        if missing:
            raise BlockFailed(f"the block under {block.heading!r} needs {missing}, which the rehearsal does not set")
        script = [f"export {name}={shlex.quote(values[name])}" for name in block.needs]
        for command in commands(block.text):
            program = first_word(command)
            if program in NOT_RUN:
                script.append("echo " + shlex.quote(f"# not run: {NOT_RUN[program]}: {command.splitlines()[0]}"))
            else:
                script.append(command)
        self.log.append(f"--- [{self.name}] {block.heading}\n{block.text}")
        # Sourced from a file, so the session's standard input stays free for a command's own question.
        self._blocks += 1
        source = self._scratch / f"{self.name}-block-{self._blocks}.sh"
        source.write_text("\n".join(script) + "\n")
        if not expect_exit:
            return self.script(f"source {source}", timeout)
        output = self.script(f"status=0; (source {source}) || status=$?; echo {STATUS}$status", timeout)
        found = output.rstrip("\n").rpartition("\n")[2]
        if found != f"{STATUS}{expect_exit}":
            raise BlockFailed(f"the block under {block.heading!r} ended with {found!r}, expected exit {expect_exit}")
        return output

    def script(self, text: str, timeout: float = 300) -> str:
        started = time.monotonic()
        # One line: bash has read all of it before the block runs, so nothing waits in the pipe.
        self._send(f"{text}; echo {MARK}\n")
        answered = 0
        while True:
            with self._lock:
                buffered = self._buffer
            if MARK + "\n" in buffered:
                output, _, rest = buffered.partition(MARK + "\n")
                with self._lock:
                    self._buffer = rest
                self.log.append(output)
                return output
            plain = ANSI.sub("", buffered)
            if (
                plain.rstrip(" ").endswith(PROMPT.rstrip())
                and any(approval in plain for approval in APPROVALS)
                and plain.count(PROMPT) > answered
            ):
                answered = plain.count(PROMPT)
                self._send("yes\n")
            if self._process.poll() is not None:
                time.sleep(0.1)
                with self._lock:
                    self.log.append(self._buffer)
                raise BlockFailed(f"[{self.name}] the session stopped (exit {self._process.returncode})")
            if time.monotonic() - started > timeout:
                self.close()
                with self._lock:
                    self.log.append(self._buffer)
                raise BlockFailed(f"[{self.name}] no end after {timeout:.0f} s")
            time.sleep(0.05)

    def close(self) -> None:
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(10)
