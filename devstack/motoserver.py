"""A moto server on loopback that serves one request at a time, patched and able to answer late.

moto's backends are not thread-safe: two overlapping TransactWriteItems could both pass their
conditions. Holding one lock for each whole request makes every call atomic, as in DynamoDB,
so race tests against this stack mean something.

The stall control (devstack/stall.py) lives at /_devstack/stall on the same port; its requests
never reach moto.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from devstack import moto_patches, stall

StartResponse = Callable[..., Any]
SHUTDOWN_POLL_S = 0.05


class SerializedApp:
    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]):
        self._app = app
        self._lock = threading.Lock()
        self.requests = 0
        self.stalls = stall.StallControl()

    def stall(self, seconds: float, operations: Iterable[str] | None = None, count: int = 1) -> None:
        """Apply the next `count` DynamoDB requests of `operations` (None: any), answer each `seconds` late."""
        self.stalls.arm(seconds, operations, count)

    def unstall(self) -> None:
        self.stalls.disarm()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ.get("PATH_INFO") == stall.PATH:
            return self.stalls.handle(environ, start_response)
        with self._lock:
            self.requests += 1
            hold = self.stalls.hold_for(environ)
            result = self._app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if hold:
                # Applied, answered late, lock held: werkzeug sends nothing (not even the status
                # line) before this returns, and no other request overtakes this one.
                self.stalls.wait(hold)
        return [body]


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                """One line per emulator call would drown the API's own request log."""

        # Here, where the emulator is made, so whatever serves it serves it patched (never mock_aws).
        self.patches = moto_patches.apply()
        self.app = SerializedApp(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True, request_handler=QuietHandler)
        self._server.socket.listen(128)
        # `stop` waits for the serving loop to notice; werkzeug's default poll of 0.5 s would be most of Ctrl-C.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name="moto-server",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> MotoServer:
        self._thread.start()
        return self

    def stall(self, seconds: float, operations: Iterable[str] | None = None, count: int = 1) -> None:
        self.app.stall(seconds, operations, count)

    def unstall(self) -> None:
        self.app.unstall()

    def stop(self) -> None:
        self.app.unstall()  # an answer held back would otherwise delay the shutdown by its stall
        self._server.shutdown()
        self._server.server_close()
