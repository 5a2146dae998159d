"""The emulator's stall control: make the next matching DynamoDB requests answer late.

Fault tests need DynamoDB to be *slow*, not failing: a held-back request is applied by the backend
and its answer leaves only after `seconds`, so botocore's read timeout fires after the write
happened and botocore resends it. SerializedApp (devstack/motoserver.py) asks `hold_for` before each
request and waits `wait` after it, with its serialisation lock held, so nothing overtakes a stalled
request. Tests arm it with `MotoServer.stall`, `devstack.process.Stack.stall`, or over HTTP on the
emulator's own port (`handle`): `POST /_devstack/stall` {"seconds": 4.5, "operations": ["UpdateItem"],
"count": 1} arms, `GET` shows the state, `DELETE` disarms and lets an answer being held back go.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

StartResponse = Callable[..., Any]

PATH = "/_devstack/stall"
# X-Amz-Target of DynamoDB (not DynamoDB Streams) calls: DynamoDB_20120810.<Operation>.
DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."
# Longer than any test needs, short enough that a typo cannot wedge the emulator for long.
MAX_SECONDS = 120.0
MAX_COUNT = 1000
MAX_BODY_BYTES = 4096
_OPERATION_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")


class BadStallRequest(ValueError):
    """A stall request the control refuses (answered 400)."""


@dataclass
class StallState:
    """What the control is armed with, and what it has seen since it was armed."""

    seconds: float = 0.0
    operations: frozenset[str] = frozenset()  # empty: any DynamoDB operation
    remaining: int = 0  # requests still to hold back
    matched: int = 0  # DynamoDB requests of those operations since armed, held back or not
    stalled: int = 0  # of which held back

    def to_dict(self) -> dict[str, Any]:
        return {
            "armed": self.remaining > 0,
            "seconds": self.seconds,
            "operations": sorted(self.operations),
            "remaining": self.remaining,
            "matched": self.matched,
            "stalled": self.stalled,
        }


def validate(seconds: Any, operations: Any, count: Any) -> tuple[float, frozenset[str], int]:
    """The arguments of a stall, checked (BadStallRequest says what is wrong)."""
    # bool is an int in Python; `true` seconds or counts are typos, not numbers.
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= MAX_SECONDS:
        raise BadStallRequest(f"seconds must be a number above 0 and at most {MAX_SECONDS:g}")
    if operations is not None and (
        isinstance(operations, str | bytes)
        or not isinstance(operations, Iterable)
        or not all(isinstance(name, str) and _OPERATION_NAME.fullmatch(name) for name in operations)
    ):
        raise BadStallRequest("operations must be null or a list of DynamoDB operation names such as UpdateItem")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise BadStallRequest(f"count must be a whole number from 1 to {MAX_COUNT}")
    return float(seconds), frozenset(operations or ()), count


def parse(body: bytes) -> tuple[float, frozenset[str], int]:
    """(seconds, operations, count) from a POST body."""
    try:
        document = json.loads(body)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise BadStallRequest("the body must be JSON") from exc
    if not isinstance(document, dict):
        raise BadStallRequest("the body must be a JSON object")
    unknown = set(document) - {"seconds", "operations", "count"}
    if unknown:
        raise BadStallRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    return validate(document.get("seconds"), document.get("operations"), document.get("count", 1))


def dynamodb_operation(environ: dict[str, Any]) -> str | None:
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target.removeprefix(DYNAMODB_TARGET_PREFIX) if target.startswith(DYNAMODB_TARGET_PREFIX) else None


def _respond(start_response: StartResponse, status: str, document: dict[str, Any]) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class StallControl:
    def __init__(self) -> None:
        # Its own lock, not the serialisation lock: arming or disarming must not wait behind a
        # request being held back.
        self._lock = threading.Lock()
        self._state = StallState()
        self._released = threading.Event()

    def arm(self, seconds: float, operations: Iterable[str] | None = None, count: int = 1) -> None:
        """Hold back the answers of the next `count` DynamoDB requests of `operations` (None: any) for `seconds`."""
        checked_seconds, names, checked_count = validate(
            seconds, list(operations) if operations is not None else None, count
        )
        with self._lock:
            self._state = StallState(seconds=checked_seconds, operations=names, remaining=checked_count)
            self._released.clear()

    def disarm(self) -> None:
        """No more stalls, and an answer being held back goes now."""
        with self._lock:
            self._state.remaining = 0
            self._released.set()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self._state.to_dict()

    def hold_for(self, environ: dict[str, Any]) -> float:
        """Seconds to hold this request's answer back (0: not at all), counted against the armed stall."""
        operation = dynamodb_operation(environ)
        if operation is None:
            return 0.0
        with self._lock:
            state = self._state
            if state.operations and operation not in state.operations:
                return 0.0
            state.matched += 1
            if state.remaining <= 0:
                return 0.0
            state.remaining -= 1
            state.stalled += 1
            return state.seconds

    def wait(self, seconds: float) -> None:
        """Hold an answer back for `seconds`, or until disarmed."""
        self._released.wait(seconds)

    def handle(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """The HTTP face of the control, at PATH."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                if not 0 < length <= MAX_BODY_BYTES:
                    raise BadStallRequest(f"send a JSON object of at most {MAX_BODY_BYTES} bytes")
                seconds, operations, count = parse(environ["wsgi.input"].read(length))
            except ValueError as exc:  # BadStallRequest, or a Content-Length that is not a number
                return _respond(start_response, "400 Bad Request", {"error": str(exc)})
            self.arm(seconds, operations, count)
            return _respond(start_response, "200 OK", {"armed": True})
        if method == "DELETE":
            self.disarm()
            return _respond(start_response, "200 OK", {"armed": False})
        if method == "GET":
            return _respond(start_response, "200 OK", self.state())
        return _respond(start_response, "405 Method Not Allowed", {"error": "use POST, GET or DELETE"})
