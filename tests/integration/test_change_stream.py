"""Change events from the emulator's stream: the service's real writes on moto, the stream read
as the local stack reads it (devstack/streams.py), the real consumer writing the audit table,
publishing on a bus (a rule forwards to a queue, to see what arrived) and deleting avatars."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from chalicelib.adapters import aws
from chalicelib.adapters.audit_log import DynamoAuditLog
from chalicelib.adapters.avatars import AvatarStore, avatar_key
from chalicelib.adapters.dynamodb import DynamoUserRepository
from chalicelib.adapters.event_bus import SOURCE, EventBusPublisher
from chalicelib.adapters.table_schema import create_audit_table_kwargs, create_table_kwargs
from chalicelib.domain.change_consumer import ChangeConsumer
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.errors import EmailAlreadyExists, PreconditionFailed, Unauthorized
from chalicelib.domain.models import NewUser, Preconditions, Revision, UserChanges
from chalicelib.domain.service import UserService
from devstack.streams import StreamPoller, StreamReader, stream_arn
from tests.unit.fakes import FakeIdentityProvider

TABLE, AUDIT, BUS, BUCKET = "users-it", "users-it-audit", "users-it-changes", "users-it-avatars"
ADMIN = "admin-sub"


@dataclass
class Stack:
    service: UserService
    audit: DynamoAuditLog
    consumer: ChangeConsumer
    streams: Any
    stream_arn: str
    sqs: Any
    queue_url: str
    s3: Any

    def poller(self) -> StreamPoller:
        """A poller from the stream's oldest record, delivering to the consumer as Lambda would."""
        return StreamPoller(StreamReader(self.streams, self.stream_arn), lambda e: self.consumer.handle(e["Records"]))

    def published(self) -> list[dict[str, Any]]:
        messages = []
        while batch := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws.reset_clients()
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(**create_table_kwargs(TABLE))
        ddb.create_table(**create_audit_table_kwargs(AUDIT))
        identities = FakeIdentityProvider()
        identities.seed("sub-1", "mia@example.com")  # a sign-in made outside the API
        events = boto3.client("events", region_name="us-east-1")
        events.create_event_bus(Name=BUS)
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all-changes", EventBusName=BUS, EventPattern=json.dumps({"source": [SOURCE]}))
        events.put_targets(Rule="all-changes", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        audit = DynamoAuditLog(AUDIT, ddb)
        yield Stack(
            service=UserService(DynamoUserRepository(TABLE, ddb), CursorCodec(b"k" * 32), identities),
            audit=audit,
            consumer=ChangeConsumer(audit, EventBusPublisher(BUS, events), AvatarStore(BUCKET, s3)),
            # botocore sends stream calls to an account-based host moto 5.2.5 does not serve.
            streams=boto3.client(
                "dynamodbstreams", region_name="us-east-1", config=Config(account_id_endpoint_mode="disabled")
            ),
            stream_arn=stream_arn(ddb, TABLE),
            sqs=sqs,
            queue_url=queue_url,
            s3=s3,
        )
        aws.reset_clients()


def history(stack: Stack, user_id: str) -> list[dict[str, Any]]:
    entries, cursor = stack.audit.page(user_id, 100, None)
    assert cursor is None
    return [entry.public() for entry in entries]


def test_create_rename_email_change_delete_are_four_events_and_failed_writes_none(stack: Stack) -> None:
    service = stack.service
    service.create_user(NewUser(name="Other", email="other@example.com"), actor=ADMIN)
    ada = service.create_user(NewUser(name="Ada", email="ada@example.com"), actor=ADMIN)
    service.update_user(ada.user_id, UserChanges(name="Ada K"), actor=ada.user_id)
    with pytest.raises(EmailAlreadyExists):  # 409: the transaction is cancelled
        service.update_user(ada.user_id, UserChanges(email="OTHER@example.com"), actor=ADMIN)
    with pytest.raises(PreconditionFailed):  # 412: the condition fails
        service.update_user(
            ada.user_id, UserChanges(name="x"), Preconditions(if_match=(Revision(1, ada.created_at),)), actor=ADMIN
        )
    service.update_user(ada.user_id, UserChanges(email="ada@lovelace.example"), actor=ADMIN)
    service.delete_user(ada.user_id, actor=ADMIN)
    stack.poller().drain()

    entries = history(stack, ada.user_id)
    assert [(e["type"], e["actor"], e["changed"]) for e in entries] == [
        ("UserCreated", ADMIN, ["name", "email", "role", "enabled"]),
        ("UserUpdated", ada.user_id, ["name"]),
        ("UserUpdated", ADMIN, ["email"]),
        ("UserDeleted", ADMIN, ["name", "email", "role", "enabled"]),
    ]
    published = [m for m in stack.published() if m["detail"]["userId"] == ada.user_id]
    assert [(m["source"], m["detail-type"]) for m in published] == [(SOURCE, e["type"]) for e in entries]
    assert [m["detail"]["eventId"] for m in published] == [e["eventId"] for e in entries]
    assert published[0]["detail"] == {**entries[0], "userId": ada.user_id}


def test_a_redelivered_stream_adds_nothing(stack: Stack) -> None:
    ada = stack.service.create_user(NewUser(name="Ada", email="ada@example.com"), actor=ADMIN)
    stack.service.update_user(ada.user_id, UserChanges(name="Ada K"), actor=ADMIN)
    stack.poller().drain()
    before, sent = history(stack, ada.user_id), stack.published()
    assert len(before) == 2 and len(sent) == 2
    stack.poller().drain()  # every record again, from the oldest: a redelivery of the whole stream
    assert history(stack, ada.user_id) == before
    assert stack.published() == []


def test_a_deleted_user_is_not_made_again_so_its_history_ends_with_the_delete(stack: Stack) -> None:
    stack.service.put_profile("sub-1", UserChanges(name="Mia"))
    stack.service.delete_user("sub-1", actor=ADMIN)
    with pytest.raises(Unauthorized):  # its stale token's profile PUT: its sign-in went with it
        stack.service.put_profile("sub-1", UserChanges(name="Mia"))
    stack.poller().drain()
    assert [(e["type"], e["actor"]) for e in history(stack, "sub-1")] == [
        ("UserCreated", "sub-1"),
        ("UserDeleted", ADMIN),
    ]


def test_the_trace_expiring_removes_an_avatar_uploaded_after_the_delete(stack: Stack) -> None:
    ada = stack.service.create_user(NewUser(name="Ada", email="ada@example.com"), actor=ADMIN)
    stack.service.delete_user(ada.user_id, actor=ADMIN)
    # A form issued before the delete stays valid 15 minutes: an upload after the delete.
    stack.s3.put_object(Bucket=BUCKET, Key=avatar_key(ada.user_id), Body=b"png")
    poller = stack.poller()
    poller.drain()
    assert stack.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 1
    # The emulator runs no TTL: the trace's removal is the same REMOVE record TTL would write.
    boto3.client("dynamodb", region_name="us-east-1").delete_item(TableName=TABLE, Key={"userId": {"S": ada.user_id}})
    poller.drain()
    assert stack.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert [e["type"] for e in history(stack, ada.user_id)] == ["UserCreated", "UserDeleted"]


def test_history_pages_oldest_first(stack: Stack) -> None:
    ada = stack.service.create_user(NewUser(name="Ada", email="ada@example.com"), actor=ADMIN)
    for n in range(4):
        stack.service.update_user(ada.user_id, UserChanges(name=f"Ada {n}"), actor=ADMIN)
    stack.poller().drain()
    seen, after = [], None
    while True:
        entries, after = stack.audit.page(ada.user_id, 2, after)
        seen += entries
        if after is None:
            break
    assert len(seen) == 5 and [e.type for e in seen[:2]] == ["UserCreated", "UserUpdated"]
    assert [e.at for e in seen] == sorted(e.at for e in seen)
