"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol: open a page, run
JavaScript in it, wait for what it renders. A real browser, so CORS is enforced as users meet it.

No browser download: the system's Chromium is used, and its absence is an error that says how to
install it (`make test` does: .ci/prerequisites).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import websocket

from tests.support.waiting import wait_until

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
START_TIMEOUT_S = 30
COMMAND_TIMEOUT_S = 60


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("the browser tests need Chromium: apt-get install -y chromium (`make test` installs it)")


class Page:
    """One tab, over its DevTools websocket."""

    def __init__(self, url: str) -> None:
        # No Origin header: Chromium accepts DevTools connections without one.
        self._socket = websocket.create_connection(url, timeout=COMMAND_TIMEOUT_S, suppress_origin=True)
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        sent = self._next_id
        self._socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            if "method" in message:
                self.events.append(message)

    def goto(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def evaluate(self, expression: str) -> Any:
        """The expression's value (awaited if it is a promise), or the exception it raised."""
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def call(self, function: str, *args: Any) -> Any:
        """`function` (JavaScript source of an async or plain function) applied to JSON arguments."""
        return self.evaluate(f"({function})(...{json.dumps(list(args))})")

    def wait_for(self, condition: str, timeout: float = COMMAND_TIMEOUT_S) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(condition)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {condition}")
            time.sleep(0.1)

    def read_events_until(self, done: Callable[[], bool], timeout: float = COMMAND_TIMEOUT_S) -> None:
        """Read the browser's events until `done()` holds, or `timeout` passes (the caller's assertion
        then says what is missing). Events are read while a command's answer is awaited, and the
        network's (a request sent) may come after the answer of the script that made the request."""
        wait_until(lambda: done() or self._read_events(), timeout)

    def _read_events(self) -> bool:
        """Send a command that does nothing, reading the events that come before its answer."""
        self.send("Runtime.evaluate", expression="0")
        return False

    def requested_urls(self) -> list[str]:
        return [
            event["params"]["request"]["url"] for event in self.events if event["method"] == "Network.requestWillBeSent"
        ]

    def errors(self) -> list[str]:
        """Uncaught exceptions and console or browser errors (a refused script, a policy violation)."""
        found = []
        for event in self.events:
            params = event["params"]
            if event["method"] == "Runtime.exceptionThrown":
                found.append(str(params["exceptionDetails"].get("text")))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(str(params["entry"].get("text")))
            elif event["method"] == "Runtime.consoleAPICalled" and params["type"] == "error":
                found.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"]))
        return found

    def close(self) -> None:
        self._socket.close()


@contextmanager
def browser(profile: Path) -> Iterator[Page]:
    """A fresh headless Chromium (its own profile in `profile`) with one blank tab."""
    profile.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(profile / "chromium.log").open("wb"),
        start_new_session=True,
    )
    page = None
    try:
        page = Page(_page_socket(process, profile))
        yield page
    finally:
        if page is not None:
            page.close()
        try:
            os.killpg(process.pid, signal.SIGKILL)  # Chromium and its helper processes
        except ProcessLookupError:
            pass
        process.wait()


def _page_socket(process: subprocess.Popen[bytes], profile: Path) -> str:
    import requests

    # Chromium writes the port it chose to DevToolsActivePort in its profile.
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (active.exists() and active.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("Chromium did not start:\n" + (profile / "chromium.log").read_text()[-3000:])
        time.sleep(0.05)
    port = active.read_text().split()[0]
    with requests.Session() as session:
        session.trust_env = False  # loopback: no proxy
        while True:
            targets = session.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
            pages = [target for target in targets if target.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
            if time.monotonic() > deadline:
                raise RuntimeError(f"Chromium opened no page: {targets}")
            time.sleep(0.05)
