"""A user's change history: the audit trail a page at a time, behind the list route's signed cursors."""

from __future__ import annotations

from typing import Protocol

from chalicelib.adapters.audit_log import AuditEntry, is_position
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.errors import InvalidCursor


class AuditPages(Protocol):
    def page(self, user_id: str, limit: int, after: str | None) -> tuple[list[AuditEntry], str | None]: ...


class History:
    def __init__(self, audit: AuditPages, cursors: CursorCodec):
        self._audit = audit
        self._cursors = cursors

    def page(self, user_id: str, limit: int, cursor: str | None) -> tuple[list[AuditEntry], str | None]:
        """Up to `limit` entries, oldest first, and the cursor of the next page (None: the last).
        A user never created, or whose entries have expired, has an empty history."""
        after = self._cursors.decode(cursor) if cursor is not None else None
        # A list cursor is signed with the same key: only a history position is taken here.
        if after is not None and not is_position(after):
            raise InvalidCursor()
        entries, last = self._audit.page(user_id, limit, after)
        return entries, (self._cursors.encode(last) if last is not None else None)
