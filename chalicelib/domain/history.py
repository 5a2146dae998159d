"""A user's change history: the audit trail a page at a time, behind signed cursors bound to the
history route, the caller and the user whose history they page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.domain.change_events import ChangeEvent
from chalicelib.domain.cursor import CursorCodec, CursorScope
from chalicelib.domain.errors import InvalidCursor

# The name history cursors are bound to (GET /users/{userId}/history).
ROUTE = "history"
# How long a change stays in its user's history (the audit table's TTL, and the OpenAPI document's words).
RETENTION_DAYS = 365
RETENTION_S = RETENTION_DAYS * 24 * 3600
# Stream sequence numbers are decimal strings of up to 40 digits: padded, text order is number order.
SEQUENCE_DIGITS = 40
# A position as position() writes it: one of our timestamps, "#", a padded sequence number. Cursors
# must decode to one, so no other value ever reaches the audit log's start key.
POSITION_PATTERN = re.compile(rf"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9:.]{{8,15}}Z#[0-9]{{{SEQUENCE_DIGITS}}}")


@dataclass(frozen=True)
class AuditEntry:
    """What the history route shows of one change."""

    event_id: str
    type: str
    at: str
    actor: str
    changed: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "type": self.type,
            "at": self.at,
            "actor": self.actor,
            "changed": list(self.changed),
        }


def position(event: ChangeEvent) -> str:
    """Where an event's entry sits in its user's history: time order, then stream order."""
    return f"{event.at}#{event.sequence.zfill(SEQUENCE_DIGITS)}"


def is_position(value: str) -> bool:
    return bool(POSITION_PATTERN.fullmatch(value))


class AuditPages(Protocol):
    def page(self, user_id: str, limit: int, after: str | None) -> tuple[list[AuditEntry], str | None]: ...


class History:
    def __init__(self, audit: AuditPages, cursors: CursorCodec):
        self._audit = audit
        self._cursors = cursors

    def page(self, user_id: str, limit: int, cursor: str | None, caller: str) -> tuple[list[AuditEntry], str | None]:
        """Up to `limit` entries, oldest first, and the cursor of the next page (None: the last),
        which only `caller` can use, on this user's history. A user never created, or whose
        entries have expired, has an empty history."""
        scope = CursorScope(route=ROUTE, caller=caller, query=user_id)
        after = self._cursors.decode(cursor, scope) if cursor is not None else None
        if after is not None and not is_position(after):
            # Unreachable with our own cursors (the scope says it is a history cursor); kept so a
            # position never reaches the audit table's key unchecked.
            raise InvalidCursor(details=[{"field": "cursor", "message": "is not a history cursor"}])
        entries, last = self._audit.page(user_id, limit, after)
        return entries, (self._cursors.encode(last, scope) if last is not None else None)
