"""Structured logging: one JSON object per line, nothing but what is passed explicitly."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Mapping
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_EMPTY: Mapping[str, Any] = {}
_bound: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("log_fields", default=_EMPTY)


def bind(fields: Mapping[str, Any]) -> contextvars.Token[Mapping[str, Any]]:
    """Add `fields` (a request's ids) to every line logged in this context until `unbind`."""
    return _bound.set(fields)


def unbind(token: contextvars.Token[Mapping[str, Any]]) -> None:
    _bound.reset(token)


class BoundFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _bound.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return dumps(entry)


_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


def dumps(entry: Mapping[str, Any]) -> str:
    return _ENCODER.encode(entry)


def write(entry: Mapping[str, Any], encoded_tail: str = "") -> None:
    """One JSON line straight to stdout, in one write (the request line: see chalicelib.web.pipeline).
    `encoded_tail` is more members, already JSON (`"key":value,...`), added to the object."""
    line = dumps(entry)
    if encoded_tail:
        line = f"{line[:-1]},{encoded_tail}}}" if len(line) > 2 else f"{{{encoded_tail}}}"
    sys.stdout.write(line + "\n")


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is when a line is logged (tests and benchmarks redirect it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler.__init__ sets it


def configure(level: str = "INFO") -> None:
    """Send the app's logs as JSON lines to stdout (CloudWatch in Lambda)."""
    logger = logging.getLogger("users_api")
    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        handler = StdoutHandler()
        handler.setFormatter(JsonFormatter())
        handler.addFilter(BoundFields())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
