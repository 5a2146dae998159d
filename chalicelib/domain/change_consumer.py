"""The users table's stream consumer: each record's meaning (chalicelib/domain/change_events.py) carried out.

For an event, in this order: skip it if its audit entry is already written (a redelivered record
whose first delivery finished: nothing is published or written twice), publish it, then write the
entry. A crash between the two publishes the event again on the retry, with the same eventId;
never the other way round, which would leave an entry whose event was never sent.

Records are handled in stream order and the first failure stops the batch: it is reported as the
batch's one item failure, so Lambda retries from that record (and the ones after it, which were
not attempted) and a user's changes never overtake each other. Lambda's retry limit and the
dead-letter queue bound what a record that keeps failing can hold up (infra/cloudformation.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from chalicelib.domain.avatars import AvatarRemover
from chalicelib.domain.change_events import ChangeEvent, StreamChange, interpret

logger = logging.getLogger("users_api.changes")


class AuditLog(Protocol):
    def has(self, event: ChangeEvent) -> bool: ...

    def add(self, event: ChangeEvent) -> bool: ...


class Publisher(Protocol):
    def publish(self, event: ChangeEvent) -> None: ...


class ChangeConsumer:
    def __init__(
        self,
        audit: AuditLog,
        publisher: Publisher,
        avatars: AvatarRemover,
        decode: Callable[[dict[str, Any]], StreamChange],
    ):
        """`decode`: a stream record as Lambda delivers it to the change it shows
        (chalicelib/adapters/stream_records.py)."""
        self._audit = audit
        self._publisher = publisher
        self._avatars = avatars
        self._decode = decode

    def handle(self, records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response: {"batchItemFailures": [{"itemIdentifier": <sequence
        number>}]}, empty when every record was handled."""
        for record in records:
            sequence = str(record.get("dynamodb", {}).get("SequenceNumber", ""))
            try:
                self._handle(record)
            except Exception:
                # Whatever failed (AWS, or a record this code cannot read), the record is retried and
                # in the end dead-lettered: logged without its content, which holds user data.
                logger.exception("stream record failed", extra={"sequenceNumber": sequence})
                return {"batchItemFailures": [{"itemIdentifier": sequence}]}
        return {"batchItemFailures": []}

    def _handle(self, record: dict[str, Any]) -> None:
        meaning = interpret(self._decode(record))
        event = meaning.event
        if event is not None and not self._audit.has(event):
            self._publisher.publish(event)
            self._audit.add(event)
            logger.info("change event", extra={"eventId": event.event_id, "type": event.type})
        if meaning.remove_avatar_of is not None:
            self._avatars.delete(meaning.remove_avatar_of)
            logger.info("removed the avatar of an expired deleted user")
