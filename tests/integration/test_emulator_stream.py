"""The local stack's stream on the emulator it serves (devstack/streams.py): delivered records
beyond the last few are dropped and used shard iterators forgotten, so a long-running stack stays
flat in memory, and every sequence number stays what it was."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.table_schema import create_table_kwargs
from devstack.motoserver import MotoServer
from devstack.streams import EmulatorStream, StreamPoller, StreamReader, stream_arn

TABLE = "users-stream-it"
WOKEN = "users-stream-woken-it"


def put(client: Any, n: int, table: str = TABLE) -> None:
    client.put_item(TableName=table, Item={"userId": {"S": f"EMAIL#{n}@example.com"}, "ownerId": {"S": "u"}})


def test_delivered_records_are_trimmed_to_the_last_few_and_numbers_stay(moto_server: MotoServer) -> None:
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_server.url, region_name="us-east-1")
    streams = boto3.client("dynamodbstreams", endpoint_url=moto_server.url, region_name="us-east-1")
    dynamodb.create_table(**create_table_kwargs(TABLE))
    emulator = EmulatorStream(moto_server, "us-east-1", TABLE)
    arn = stream_arn(dynamodb, TABLE)
    for n in range(20):
        put(dynamodb, n)
    seen: list[str] = []

    def deliver(event: dict[str, Any]) -> dict[str, Any]:
        seen.extend(r["dynamodb"]["SequenceNumber"] for r in event["Records"])
        return {"batchItemFailures": []}

    used: list[str] = []

    def forget(iterator: str) -> None:
        used.append(iterator)
        emulator.forget(iterator)

    poller = StreamPoller(
        StreamReader(streams, arn, used=forget), deliver, delivered_up_to=lambda s: emulator.trim(s, keep=5)
    )
    poller.drain()
    assert len(seen) == 20

    # A reader from the oldest record now finds only the last five, under their own numbers.
    def oldest() -> list[str]:
        return [r["dynamodb"]["SequenceNumber"] for r in StreamReader(streams, arn).read()]

    assert oldest() == seen[-5:]
    # New records go on from where the numbers were.
    put(dynamodb, 20)
    poller.drain()
    assert int(seen[-1]) == int(seen[-2]) + 1 and len(seen) == 21
    assert oldest() == seen[-5:]
    # The iterators the poller used are gone from the emulator; a used one no longer reads.
    assert used
    with pytest.raises(ClientError):
        streams.get_records(ShardIterator=used[0])


def test_the_emulator_wakes_the_stream_poller_on_each_write_and_the_job_workers_on_each_message(
    moto_server: MotoServer,
) -> None:
    """What lets the local stack's pollers idle (devstack/streams.py IDLE_READ_S, devstack/jobs.py
    IDLE_RECEIVE_S) without delivering any later."""
    from devstack.jobs import EMULATOR_ACCOUNT, wake_on_message

    dynamodb = boto3.client("dynamodb", endpoint_url=moto_server.url, region_name="us-east-1")
    dynamodb.create_table(**create_table_kwargs(WOKEN))
    record_added = EmulatorStream(moto_server, "us-east-1", WOKEN).wake_on_record()
    assert not record_added.is_set()
    put(dynamodb, 1, WOKEN)
    assert record_added.is_set()

    sqs = boto3.client("sqs", endpoint_url=moto_server.url, region_name="us-east-1")
    url = sqs.create_queue(QueueName="jobs-it")["QueueUrl"]
    assert (
        EMULATOR_ACCOUNT
        in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    )
    message_sent = wake_on_message("us-east-1", "jobs-it")
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    assert message_sent.is_set()
