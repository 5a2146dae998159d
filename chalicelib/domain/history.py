"""A user's change history: the audit trail a page at a time, behind signed cursors bound to the
history route, the caller and the user whose history they page."""

from __future__ import annotations

from typing import Protocol

from chalicelib.adapters.audit_log import AuditEntry, is_position
from chalicelib.domain.cursor import CursorCodec, CursorScope
from chalicelib.domain.errors import InvalidCursor

# The name history cursors are bound to (GET /users/{userId}/history).
ROUTE = "history"


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
