"""`make replay-dlq`'s work on the emulator the local stack serves: the local mapping sends the place
of a record it gave up on to its dead-letter queue as Lambda does (devstack/streams.py), and the
replay (infra/replay_dlq.py) reads that record back from the stream, hands it to the consumer, and
deletes the message only once it went through; records the stream no longer holds are reported."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from chalicelib.adapters.table_schema import create_table_kwargs
from devstack.motoserver import MotoServer
from devstack.resources import emulator_client
from devstack.streams import DeadLetterQueue, EmulatorStream, StreamPoller, StreamReader, stream_arn
from infra.replay_dlq import InProcessConsumer, replay

REGION = "us-east-1"
CONSUMER_ARN = "arn:aws:lambda:us-east-1:000000000000:function:users-api-local-changes"


class Emulator:
    def __init__(self, moto: MotoServer) -> None:
        # moto's backends live as long as the process: names of this test's own.
        self.table = f"users-replay-{uuid.uuid4().hex[:8]}"
        self.dynamodb = emulator_client("dynamodb", moto.url, REGION)
        self.streams = emulator_client("dynamodbstreams", moto.url, REGION)
        self.sqs = emulator_client("sqs", moto.url, REGION)
        self.dynamodb.create_table(**create_table_kwargs(self.table))
        self.queue_url = self.sqs.create_queue(QueueName=f"{self.table}-dlq")["QueueUrl"]
        self.stream = EmulatorStream(moto, REGION, self.table)
        self.arn = stream_arn(self.dynamodb, self.table)
        self.delivered: list[dict[str, Any]] = []

    def put(self, n: int) -> None:
        self.dynamodb.put_item(TableName=self.table, Item={"userId": {"S": f"u-{n}"}, "n": {"N": str(n)}})

    def run_mapping(self, failing: set[int]) -> None:
        """The local mapping, with a consumer that fails on the items numbered `failing`."""
        reader = StreamReader(self.streams, self.arn, used=self.stream.forget)

        def deliver(event: dict[str, Any]) -> dict[str, Any]:
            for record in event["Records"]:
                if int(record["dynamodb"]["NewImage"]["n"]["N"]) in failing:
                    return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
                self.delivered.append(record)
            return {"batchItemFailures": []}

        dead_letters = DeadLetterQueue(self.sqs, self.queue_url, reader, CONSUMER_ARN)
        StreamPoller(reader, deliver, retry_pause_s=0, dead_letter=dead_letters).drain()

    def messages(self) -> list[dict[str, Any]]:
        page = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in page.get("Messages", [])]

    def waiting(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def recording(given: list[dict[str, Any]]) -> Any:
    """A consumer that now handles everything, and keeps what it was given."""

    def handle(event: dict[str, Any]) -> dict[str, Any]:
        given.extend(event["Records"])
        return {"batchItemFailures": []}

    return handle


@pytest.fixture
def emulator(moto_server: MotoServer) -> Emulator:
    return Emulator(moto_server)


def test_a_record_the_mapping_gave_up_on_is_a_stream_position_in_the_queue(emulator: Emulator) -> None:
    for n in range(3):
        emulator.put(n)
    emulator.run_mapping(failing={1})
    assert [int(r["dynamodb"]["NewImage"]["n"]["N"]) for r in emulator.delivered] == [0, 2]
    (message,) = emulator.messages()
    info = message["DDBStreamBatchInfo"]
    (shard,) = emulator.streams.describe_stream(StreamArn=emulator.arn)["StreamDescription"]["Shards"]
    assert info["shardId"] == shard["ShardId"] and info["streamArn"] == emulator.arn
    assert info["startSequenceNumber"] == info["endSequenceNumber"] and info["batchSize"] == 1
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["functionArn"] == CONSUMER_ARN


def test_the_replay_hands_the_record_to_the_consumer_again_and_then_deletes_the_message(emulator: Emulator) -> None:
    for n in range(3):
        emulator.put(n)
    emulator.run_mapping(failing={1})
    (message,) = emulator.messages()
    given: list[dict[str, Any]] = []
    consumer = InProcessConsumer(recording(given))
    said: list[str] = []
    summary = replay(emulator.sqs, emulator.queue_url, emulator.streams, consumer, False, said.append, wait_time_s=0)
    (record,) = given
    assert record["dynamodb"]["SequenceNumber"] == message["DDBStreamBatchInfo"]["startSequenceNumber"]
    assert record["dynamodb"]["NewImage"]["n"] == {"N": "1"}
    assert record["eventSourceARN"] == emulator.arn  # Lambda's shape, as the mapping delivered it
    assert (summary.replayed, summary.records, summary.left_behind) == (1, 1, 0)
    assert emulator.waiting() == 0
    assert said[-1] == "1 dead-lettered batches: 1 replayed (1 records) and deleted"


def test_a_record_the_consumer_fails_again_keeps_its_message(emulator: Emulator) -> None:
    emulator.put(0)
    emulator.run_mapping(failing={0})
    consumer = InProcessConsumer(lambda event: {"batchItemFailures": [{"itemIdentifier": "x"}]})
    said: list[str] = []
    summary = replay(emulator.sqs, emulator.queue_url, emulator.streams, consumer, False, said.append, wait_time_s=0)
    assert (summary.replayed, summary.failed) == (0, 1)
    assert "failed again" in said[0]
    assert len(emulator.messages()) == 1  # kept, and visible again at once


@pytest.mark.parametrize("drop", [False, True])
def test_records_the_stream_no_longer_holds_are_reported_and_kept_unless_dropped(
    emulator: Emulator, drop: bool
) -> None:
    for n in range(3):
        emulator.put(n)
    emulator.run_mapping(failing={0})
    last = int(emulator.delivered[-1]["dynamodb"]["SequenceNumber"])
    emulator.stream.trim(last, keep=1)  # what 24 hours do to DynamoDB's stream
    given: list[dict[str, Any]] = []
    consumer = InProcessConsumer(recording(given))
    said: list[str] = []
    summary = replay(emulator.sqs, emulator.queue_url, emulator.streams, consumer, drop, said.append, wait_time_s=0)
    assert given == []
    assert (summary.trimmed_kept, summary.trimmed_dropped) == ((0, 1) if drop else (1, 0))
    assert "cannot be replayed" in said[0] and "the stream dropped the records" in said[0]
    assert len(emulator.messages()) == (0 if drop else 1)
    assert summary.left_behind == (0 if drop else 1)
