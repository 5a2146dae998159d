"""The stream consumer: each event published and audited once, per-record failures reported so
Lambda retries from there, avatars of expired deleted users removed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.adapters.event_bus import SOURCE, EventBusPublisher, EventPublishFailed
from chalicelib.adapters.stream_records import stream_change
from chalicelib.domain.change_consumer import ChangeConsumer
from chalicelib.domain.change_events import ChangeEvent
from chalicelib.domain.errors import ServiceUnavailable
from tests.support.stream_records import meaning_of, record, trace, user

LATER = "2025-01-01T01:00:00.000Z"


class Audit:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], ChangeEvent] = {}
        self.writes = 0
        self.fail_on: str | None = None

    def has(self, event: ChangeEvent) -> bool:
        return (event.user_id, event.sequence) in self.entries

    def add(self, event: ChangeEvent) -> bool:
        if event.event_id == self.fail_on:
            raise ServiceUnavailable()
        self.writes += 1
        return self.entries.setdefault((event.user_id, event.sequence), event) is event


class Bus:
    def __init__(self) -> None:
        self.published: list[ChangeEvent] = []
        self.fail_on: str | None = None

    def publish(self, event: ChangeEvent) -> None:
        if event.event_id == self.fail_on:
            raise ServiceUnavailable()
        self.published.append(event)


class Avatars:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete(self, user_id: str) -> None:
        self.deleted.append(user_id)


@pytest.fixture
def parts() -> tuple[Audit, Bus, Avatars]:
    return Audit(), Bus(), Avatars()


def consumer(parts: tuple[Audit, Bus, Avatars]) -> ChangeConsumer:
    return ChangeConsumer(*parts, decode=stream_change)


def history() -> list[dict[str, Any]]:
    return [
        record("INSERT", new=user(), event_id="e1"),
        record("INSERT", new={"userId": {"S": "EMAIL#ada@example.com"}, "ownerId": {"S": "u-1"}}, event_id="r1"),
        record("MODIFY", old=user(), new=user(name="Ada K", version=2, at=LATER), event_id="e2"),
        record("MODIFY", old=user(name="Ada K", version=2, at=LATER), new=trace(), event_id="e3"),
    ]


def test_every_change_is_published_and_audited_once_in_order(parts: tuple[Audit, Bus, Avatars]) -> None:
    audit, bus, avatars = parts
    assert consumer(parts).handle(history()) == {"batchItemFailures": []}
    assert [e.event_id for e in bus.published] == ["e1", "e2", "e3"]
    assert [e.type for e in bus.published] == ["UserCreated", "UserUpdated", "UserDeleted"]
    assert audit.writes == 3 and avatars.deleted == []


def test_a_redelivered_batch_publishes_and_writes_nothing(parts: tuple[Audit, Bus, Avatars]) -> None:
    audit, bus, _ = parts
    batch = history()
    consumer(parts).handle(batch)
    consumer(parts).handle(batch)
    assert len(bus.published) == 3 and audit.writes == 3


def test_the_first_failure_stops_the_batch_and_is_reported(parts: tuple[Audit, Bus, Avatars]) -> None:
    audit, bus, _ = parts
    batch = history()
    bus.fail_on = "e2"
    response = consumer(parts).handle(batch)
    assert response == {"batchItemFailures": [{"itemIdentifier": batch[2]["dynamodb"]["SequenceNumber"]}]}
    assert [e.event_id for e in bus.published] == ["e1"]  # e3 was not attempted: it must not overtake e2
    # Lambda retries from the reported record: each event once in all.
    bus.fail_on = None
    assert consumer(parts).handle(batch[2:]) == {"batchItemFailures": []}
    assert [e.event_id for e in bus.published] == ["e1", "e2", "e3"]
    assert audit.writes == 3


def test_an_audit_failure_after_publishing_republishes_on_retry_never_loses(parts: tuple[Audit, Bus, Avatars]) -> None:
    audit, bus, _ = parts
    batch = history()[:1]
    audit.fail_on = "e1"
    assert consumer(parts).handle(batch)["batchItemFailures"]
    audit.fail_on = None
    assert consumer(parts).handle(batch) == {"batchItemFailures": []}
    # At least once: the same eventId twice, which subscribers de-duplicate on; the entry once.
    assert [e.event_id for e in bus.published] == ["e1", "e1"]
    assert audit.writes == 1


def test_an_unreadable_record_is_reported_not_raised(parts: tuple[Audit, Bus, Avatars]) -> None:
    broken = {"eventID": "x", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "42"}}
    assert consumer(parts).handle([broken]) == {"batchItemFailures": [{"itemIdentifier": "42"}]}


def test_the_ttl_removing_a_trace_deletes_the_avatar(parts: tuple[Audit, Bus, Avatars]) -> None:
    audit, bus, avatars = parts
    assert consumer(parts).handle([record("REMOVE", old=trace(user_id="u-9"), ttl=True)]) == {"batchItemFailures": []}
    assert avatars.deleted == ["u-9"]
    assert bus.published == [] and audit.writes == 0


class EventsClient:
    def __init__(self, failed: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failed = failed

    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"FailedEntryCount": self.failed, "Entries": [{"EventId": "x"}]}


def test_the_bus_gets_one_entry_naming_the_service_the_type_and_the_public_event() -> None:
    client = EventsClient()
    published = meaning_of(record("INSERT", new=user(), event_id="e1")).event
    assert published is not None
    EventBusPublisher("users-api-test", client).publish(published)
    (call,) = client.calls
    (entry,) = call["Entries"]
    assert entry["EventBusName"] == "users-api-test"
    assert (entry["Source"], entry["DetailType"]) == (SOURCE, "UserCreated")
    assert json.loads(entry["Detail"]) == published.detail()


def test_an_entry_the_bus_refused_is_a_failure() -> None:
    published = meaning_of(record("INSERT", new=user())).event
    assert published is not None
    with pytest.raises(EventPublishFailed):
        EventBusPublisher("bus", EventsClient(failed=1)).publish(published)
