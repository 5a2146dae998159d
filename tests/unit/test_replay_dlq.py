"""`make replay-dlq`'s decisions with fake clients: Lambda's on-failure record read as a stream
position, the batch read back across pages and shards, a deployed consumer invoked a batch at a
time, and every outcome (replayed, failed again, trimmed, unreadable) said and kept or deleted."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.replay_dlq import CHUNK, BatchPosition, LambdaConsumer, Trimmed, read_batch, replay, run

STREAM = "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"
# The record AWS's Lambda guide shows for a DynamoDB stream's on-failure destination.
LAMBDA_RECORD: dict[str, Any] = {
    "requestContext": {
        "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
        "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 1,
    },
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    "version": "1.0",
    "timestamp": "2019-11-14T00:13:49.717Z",
    "DDBStreamBatchInfo": {
        "shardId": "shardId-00000001573689847184-864758bb",
        "startSequenceNumber": "800000000003126276362",
        "endSequenceNumber": "800000000003126276364",
        "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
        "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
        "batchSize": 3,
        "streamArn": STREAM,
    },
}
SHARD = "shardId-00000001573689847184-864758bb"
START = 800000000003126276362


def raw(sequence: int) -> dict[str, Any]:
    return {
        "eventID": str(sequence),
        "eventName": "INSERT",
        "dynamodb": {"SequenceNumber": str(sequence), "ApproximateCreationDateTime": 1573690399.0, "Keys": {}},
    }


class FakeStreams:
    """A stream whose shard SHARD holds `sequences`, starting at `first`, served `page` records a read."""

    def __init__(self, sequences: list[int], first: int = START, page: int = 2, error: str | None = None) -> None:
        self.sequences, self.first, self.page, self.error = sequences, first, page, error
        self.shards = [{"ShardId": "shardId-other", "SequenceNumberRange": {"StartingSequenceNumber": "1"}}]

    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: str | None = None) -> dict[str, Any]:
        if ExclusiveStartShardId is None:  # the batch's shard is on the second page
            return {"StreamDescription": {"Shards": self.shards, "LastEvaluatedShardId": "shardId-other"}}
        shard = {"ShardId": SHARD, "SequenceNumberRange": {"StartingSequenceNumber": str(self.first)}}
        return {"StreamDescription": {"Shards": [shard]}}

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, str]:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "gone"}}, "GetShardIterator")
        assert kwargs["ShardIteratorType"] == "AT_SEQUENCE_NUMBER" and kwargs["ShardId"] == SHARD
        return {"ShardIterator": str(self.sequences.index(int(kwargs["SequenceNumber"])))}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        at = int(ShardIterator)
        records = [raw(s) for s in self.sequences[at : at + self.page]]
        return {"Records": records, "NextShardIterator": str(at + len(records))}


def position(start: int = START, end: int = START + 2) -> BatchPosition:
    return BatchPosition(STREAM, SHARD, start, end)


def test_lambdas_on_failure_record_is_read_as_a_stream_position() -> None:
    assert BatchPosition.from_message(json.dumps(LAMBDA_RECORD)) == position()
    with pytest.raises(KeyError):
        BatchPosition.from_message(json.dumps({"Records": []}))


def test_the_batch_is_read_back_across_pages_up_to_its_last_record_in_lambdas_shape() -> None:
    streams = FakeStreams([START - 1, START, START + 1, START + 2, START + 3], first=START - 1)
    records = read_batch(streams, position())
    assert [int(r["dynamodb"]["SequenceNumber"]) for r in records] == [START, START + 1, START + 2]
    assert all(r["eventSourceARN"] == STREAM for r in records)


@pytest.mark.parametrize(
    ("streams", "why"),
    [
        (FakeStreams([START + 5], first=START + 5), "the stream dropped the records"),
        (FakeStreams([START, START + 1, START + 2], error="TrimmedDataAccessException"), "TrimmedDataAccessException"),
        (FakeStreams([START, START + 1]), "the stream ends at"),  # the last record never comes
    ],
)
def test_a_batch_the_stream_no_longer_holds_is_trimmed(streams: FakeStreams, why: str) -> None:
    with pytest.raises(Trimmed, match=why):
        read_batch(streams, position())


class FakeLambda:
    def __init__(self, answer: Any, error: str | None = None) -> None:
        self.answer, self.error = answer, error
        self.batches: list[list[dict[str, Any]]] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: str) -> dict[str, Any]:
        assert (FunctionName, InvocationType) == ("users-api-prod-changes:live", "RequestResponse")
        self.batches.append(json.loads(Payload)["Records"])
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.error:
            response["FunctionError"] = self.error
        return response


def test_a_deployed_consumer_is_invoked_as_its_mapping_invokes_it() -> None:
    ok = FakeLambda({"batchItemFailures": []})
    assert LambdaConsumer(ok, "users-api-prod-changes:live").deliver([raw(1)]) is None
    failing = LambdaConsumer(
        FakeLambda({"batchItemFailures": [{"itemIdentifier": "7"}]}), "users-api-prod-changes:live"
    )
    assert failing.deliver([raw(7)]) == "the consumer failed again from sequence number 7"
    crashing = LambdaConsumer(FakeLambda({"errorMessage": "x"}, "Unhandled"), "users-api-prod-changes:live")
    assert "the consumer raised (Unhandled)" in str(crashing.deliver([raw(1)]))


class FakeSqs:
    def __init__(self, bodies: list[str]) -> None:
        self.messages = [
            {"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": body} for n, body in enumerate(bodies)
        ]
        self.deleted: list[str] = []
        self.made_visible: list[str] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["VisibilityTimeout"] > 0  # hidden from a replay running at the same time
        return {"Messages": self.messages[: kwargs["MaxNumberOfMessages"]]}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle)
        self.messages = [m for m in self.messages if m["ReceiptHandle"] != ReceiptHandle]

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        assert VisibilityTimeout == 0
        self.made_visible.append(ReceiptHandle)


def message(start: int, end: int) -> str:
    info = {**LAMBDA_RECORD["DDBStreamBatchInfo"], "startSequenceNumber": str(start), "endSequenceNumber": str(end)}
    return json.dumps({**LAMBDA_RECORD, "DDBStreamBatchInfo": info})


def test_each_message_is_deleted_only_once_its_records_went_through_and_the_rest_is_kept_and_said() -> None:
    big = list(range(START, START + 250))
    streams = FakeStreams(big, first=START, page=1000)
    sqs = FakeSqs([message(START, START + 249), message(START - 10, START - 5), "not json", message(START, START)])
    functions = FakeLambda({"batchItemFailures": []})
    consumer = LambdaConsumer(functions, "users-api-prod-changes:live")
    said: list[str] = []
    summary = replay(sqs, "queue", streams, consumer, False, said.append, wait_time_s=0)
    # 250 records in batches of at most 100, as the mapping would; then the single record.
    assert [len(batch) for batch in functions.batches] == [CHUNK, CHUNK, 50, 1]
    assert sqs.deleted == ["r0", "r3"]
    assert sorted(sqs.made_visible) == ["r1", "r2"]
    assert (summary.replayed, summary.records, summary.trimmed_kept, summary.unreadable) == (2, 251, 1, 1)
    assert summary.left_behind == 2
    assert said[-1] == (
        "4 dead-lettered batches: 2 replayed (251 records) and deleted; "
        "1 past the stream's retention (1 kept, 0 dropped); 1 not a stream position (kept)"
    )


def test_without_a_running_stack_it_says_so_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("local", False, tmp_path / "stack.json") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"make replay-dlq: {tmp_path / 'stack.json'} not found: start the stack first with `make run`"]
