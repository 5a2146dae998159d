"""Change events onto the stage's EventBridge bus, one PutEvents entry per event.

Subscribers add rules on the bus (Source SOURCE, DetailType the event type) and de-duplicate on
the Detail's `eventId`: delivery is at least once, here (a batch retried after a publish whose
audit write failed) as in EventBridge itself.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from chalicelib.adapters import aws
from chalicelib.config import ConfigurationError
from chalicelib.domain.change_events import ChangeEvent
from chalicelib.domain.errors import ServiceUnavailable

SOURCE = "users-api"
_lock = threading.Lock()


class EventPublishFailed(ServiceUnavailable):
    """EventBridge answered but did not accept the entry (PutEvents reports failures per entry)."""


class EventBusPublisher(aws.ClientHolder):
    service = "events"

    def __init__(self, bus_name: str, client: Any | None = None):
        if not bus_name:
            raise ConfigurationError("environment variable EVENT_BUS_NAME is required for change events")
        super().__init__(client)
        self._bus = bus_name

    def entry(self, event: ChangeEvent) -> dict[str, str]:
        return {
            "EventBusName": self._bus,
            "Source": SOURCE,
            "DetailType": event.type,
            "Detail": json.dumps(event.detail(), separators=(",", ":")),
        }

    def publish(self, event: ChangeEvent) -> None:
        entry = self.entry(event)
        result = aws.call(self.client, "put_events", Entries=[entry])
        # PutEvents answers 200 even when it refused the entry: the count says so.
        if result.get("FailedEntryCount", 0):
            raise EventPublishFailed()
        self.published(entry)

    def published(self, entry: dict[str, str]) -> None:
        """Called after each accepted entry (the local stages keep a copy)."""


class LocalEventBusPublisher(EventBusPublisher):
    """The local stages' publisher: the emulator's bus, and every accepted entry appended to a
    file (`.local/events.jsonl`, one PutEvents entry per line) that `make events` shows, since
    nothing subscribes to the emulator's bus. Never wired outside the local stages."""

    def __init__(self, bus_name: str, events_file: Path, client: Any | None = None):
        super().__init__(bus_name, client)
        self._file = events_file

    def published(self, entry: dict[str, str]) -> None:
        # Here, not at the top: the consumer's Lambda function never loads it.
        from chalicelib.adapters import private_files

        line = json.dumps(entry)
        with _lock:
            private_files.append_line(self._file, line)  # owner-only: who changed which user
