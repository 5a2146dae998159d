"""`make replay-dlq [STAGE=...]`: hand the stream consumer, again, the records it gave up on.

For each batch the consumer's event source mapping gave up on (retries spent: a record it could not
handle, a bus or table that was down), Lambda sends the dead-letter queue where the batch lies in the
users table's stream (its `DDBStreamBatchInfo`: stream ARN, shard, first and last sequence number),
not the records. This reads each such message, reads those records from the stream while the stream
still keeps them (24 hours in DynamoDB), hands them to the consumer again, and deletes the message only
once every record of it went through. The consumer is the same code the mapping calls (app.py's
`user_changes`): a record whose first delivery got as far as its audit entry is skipped, so a replay
publishes and writes only what is missing (chalicelib/domain/change_consumer.py).

- A deployed stage (`STAGE=dev|staging|prod`, operator credentials): the stage's queue, by name; the
  consumer invoked through Lambda, at its `live` alias (the function itself on the `chalice deploy`
  path, which has none).
- The local stack (no STAGE, or `STAGE=local`): the running `make run`'s queue and stream on its
  emulator, and the consumer run in this process with that stack's settings.

Records already gone from the stream (older than its 24 hours) cannot be replayed: each such message
is reported and kept (so the dead-letter alarm keeps showing it) unless `--drop-trimmed`. A message
whose records the consumer failed again, or that is not a stream position at all, is reported and
kept. The exit status is 0 when nothing was left behind but what `--drop-trimmed` dropped.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Lambda's default (and the mapping's) batch size for a DynamoDB stream: one invocation per 100 records.
CHUNK = 100
# SQS: at most 10 per receive; a message being replayed is hidden from another replay this long.
RECEIVE_BATCH = 10
VISIBILITY_TIMEOUT_S = 300
# A deployed queue is long-polled for a second (a short poll may miss messages SQS holds on other
# hosts); the local emulator answers every message at once, and holds all its requests while it waits.
WAIT_TIME_S = 1
# GetRecords pages that came back empty before the batch's last record was read: the stream no
# longer holds the rest.
MAX_EMPTY_READS = 5
# The stream no longer holds the records (trimmed), or the stream itself is gone.
TRIMMED_ERRORS = {"TrimmedDataAccessException", "ResourceNotFoundException"}


class ReplayError(Exception):
    """Nothing could be replayed (no queue, no stack): one line."""


@dataclass(frozen=True)
class BatchPosition:
    """Where a failed batch lies in the stream: Lambda's on-failure record, DDBStreamBatchInfo."""

    stream_arn: str
    shard_id: str
    start: int
    end: int

    @classmethod
    def from_message(cls, body: str) -> BatchPosition:
        info = json.loads(body)["DDBStreamBatchInfo"]
        position = cls(
            str(info["streamArn"]),
            str(info["shardId"]),
            int(info["startSequenceNumber"]),
            int(info["endSequenceNumber"]),
        )
        if position.end < position.start:
            raise ValueError("the batch ends before it starts")
        return position

    def describe(self) -> str:
        return f"shard {self.shard_id}, sequence numbers {self.start}..{self.end}"


class Trimmed(Exception):
    """The stream no longer holds (all of) the batch."""


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _shard_start(streams: Any, position: BatchPosition) -> int | None:
    """The first sequence number the stream still holds in the batch's shard (None: no such shard)."""
    kwargs: dict[str, Any] = {"StreamArn": position.stream_arn}
    while True:
        description = streams.describe_stream(**kwargs)["StreamDescription"]
        for shard in description.get("Shards", []):
            if shard["ShardId"] == position.shard_id:
                return int(shard["SequenceNumberRange"]["StartingSequenceNumber"])
        last = description.get("LastEvaluatedShardId")
        if not last:
            return None
        kwargs["ExclusiveStartShardId"] = last


def read_batch(streams: Any, position: BatchPosition) -> list[dict[str, Any]]:
    """The batch's records from the stream, in order, as Lambda's event source mapping passes them;
    Trimmed when the stream no longer holds them."""
    from devstack.streams import lambda_record

    try:
        first = _shard_start(streams, position)
        if first is None:
            raise Trimmed("its shard is gone from the stream (older than the stream's 24 hours)")
        if first > position.start:
            raise Trimmed(f"the shard now starts at {first}: the stream dropped the records (24 hours)")
        iterator = streams.get_shard_iterator(
            StreamArn=position.stream_arn,
            ShardId=position.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=str(position.start),
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        empty_reads = 0
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            raw = page.get("Records", [])
            for record in raw:
                sequence = int(record["dynamodb"]["SequenceNumber"])
                if sequence > position.end:
                    return records
                records.append(lambda_record(record, position.stream_arn))
            if records and int(records[-1]["dynamodb"]["SequenceNumber"]) == position.end:
                return records
            empty_reads = 0 if raw else empty_reads + 1
            if empty_reads >= MAX_EMPTY_READS:
                break
            iterator = page.get("NextShardIterator")
    except Exception as exc:
        if _error_code(exc) in TRIMMED_ERRORS:
            raise Trimmed(f"the stream answered {_error_code(exc)}") from exc
        raise
    raise Trimmed(f"the stream ends at {records[-1]['dynamodb']['SequenceNumber'] if records else position.start}")


class Consumer(Protocol):
    def deliver(self, records: list[dict[str, Any]]) -> str | None:
        """Hand the consumer one batch; why it failed, or None when every record went through."""


def _reported(response: Any) -> str | None:
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if failures is None:
        return "the consumer did not answer with a partial batch response"
    if failures:
        return f"the consumer failed again from sequence number {failures[0].get('itemIdentifier')}"
    return None


class LambdaConsumer:
    """A deployed consumer, invoked as its mapping invokes it (synchronously, a batch at a time)."""

    def __init__(self, client: Any, function: str):
        self._client, self.function = client, function

    def deliver(self, records: list[dict[str, Any]]) -> str | None:
        response = self._client.invoke(
            FunctionName=self.function, InvocationType="RequestResponse", Payload=json.dumps({"Records": records})
        )
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            return f"the consumer raised ({response['FunctionError']}): see its log"
        try:
            return _reported(json.loads(payload))
        except ValueError:
            return "the consumer's answer is not JSON"


class InProcessConsumer:
    """The consumer's handler, called in this process as Lambda calls it (the local stack)."""

    def __init__(self, handler: Callable[[dict[str, Any]], Any]):
        self._handler = handler

    def deliver(self, records: list[dict[str, Any]]) -> str | None:
        try:
            return _reported(self._handler({"Records": records}))
        except Exception as exc:
            return f"the consumer raised {type(exc).__name__}"


@dataclass
class Summary:
    replayed: int = 0  # messages whose records all went through (deleted)
    records: int = 0
    trimmed_kept: int = 0
    trimmed_dropped: int = 0
    failed: int = 0  # delivered, and the consumer failed again (kept)
    unreadable: int = 0  # not a stream position (kept)
    lines: list[str] = field(default_factory=list)

    @property
    def left_behind(self) -> int:
        return self.trimmed_kept + self.failed + self.unreadable

    def total(self) -> str:
        seen = self.replayed + self.trimmed_kept + self.trimmed_dropped + self.failed + self.unreadable
        if not seen:
            return "the dead-letter queue is empty: nothing to replay"
        parts = [f"{self.replayed} replayed ({self.records} records) and deleted"]
        if self.trimmed_kept or self.trimmed_dropped:
            parts.append(
                f"{self.trimmed_kept + self.trimmed_dropped} past the stream's retention "
                f"({self.trimmed_kept} kept, {self.trimmed_dropped} dropped)"
            )
        if self.failed:
            parts.append(f"{self.failed} failed again (kept)")
        if self.unreadable:
            parts.append(f"{self.unreadable} not a stream position (kept)")
        return f"{seen} dead-lettered batches: " + "; ".join(parts)


def _messages(sqs: Any, queue_url: str, wait_time_s: int) -> Iterator[dict[str, Any]]:
    """Every message of the queue once: each stays hidden while it is handled (a replay running at
    the same time sees others), and the queue is read until a receive brings nothing new."""
    seen: set[str] = set()
    while True:
        page = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=RECEIVE_BATCH,
            VisibilityTimeout=VISIBILITY_TIMEOUT_S,
            WaitTimeSeconds=wait_time_s,
        )
        new = [message for message in page.get("Messages", []) if message["MessageId"] not in seen]
        if not new:
            return
        for message in new:
            seen.add(message["MessageId"])
            yield message


def replay(
    sqs: Any,
    queue_url: str,
    streams: Any,
    consumer: Consumer,
    drop_trimmed: bool,
    say: Callable[[str], None] = print,
    wait_time_s: int = WAIT_TIME_S,
) -> Summary:
    summary = Summary()
    kept: list[str] = []

    def keep(message: dict[str, Any], line: str) -> None:
        kept.append(message["ReceiptHandle"])
        say(line)

    for message in _messages(sqs, queue_url, wait_time_s):
        try:
            position = BatchPosition.from_message(message["Body"])
        except (ValueError, KeyError, TypeError):
            summary.unreadable += 1
            keep(message, f"kept message {message['MessageId']}: not a stream position (DDBStreamBatchInfo)")
            continue
        try:
            records = read_batch(streams, position)
        except Trimmed as why:
            if drop_trimmed:
                summary.trimmed_dropped += 1
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                say(f"dropped {position.describe()}: cannot be replayed, {why}")
            else:
                summary.trimmed_kept += 1
                keep(message, f"kept {position.describe()}: cannot be replayed, {why} (--drop-trimmed drops it)")
            continue
        failure = None
        for start in range(0, len(records), CHUNK):
            failure = consumer.deliver(records[start : start + CHUNK])
            if failure is not None:
                break
        if failure is not None:
            summary.failed += 1
            keep(message, f"kept {position.describe()}: {failure}")
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        summary.replayed += 1
        summary.records += len(records)
        say(f"replayed {position.describe()}: {len(records)} records handled; message deleted")
    for handle in kept:  # visible again at once: for the alarm, and for the next replay
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    say(summary.total())
    return summary


# --- Where the queue, the stream and the consumer are ------------------------------------------------


def _local(stack_file: Path) -> tuple[Any, str, Any, Consumer]:
    """The running local stack's queue and stream, and its consumer in this process."""
    from devstack import lifecycle
    from devstack.resources import emulator_client

    info = lifecycle.read_stack_file(stack_file)
    if info is None:
        raise ReplayError(f"{stack_file} not found: start the stack first with `make run`")
    pid = info.get("pid")
    if isinstance(pid, int) and not lifecycle.is_a_stack(pid):
        raise ReplayError(
            f"the stack that wrote {stack_file} (pid {pid}) is no longer running: start one with `make run`"
        )
    endpoint, region = str(info["aws_endpoint_url"]), str(info["region"])
    # The consumer's settings as the stack gives them to its own consumer (devstack/streams.py).
    os.environ.update(
        {
            "STAGE": "local",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AUDIT_TABLE_NAME": str(info["audit_table_name"]),
            "EVENT_BUS_NAME": str(info["event_bus_name"]),
            "AVATAR_BUCKET": str(info["bucket_name"]),
            "EVENTS_FILE": str(info["events_file"]),
            # The consumer's failures still show (on stdout, as JSON); its line per event would bury the report.
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    from app import app
    from devstack.streams import dynamodb_handler

    sqs = emulator_client("sqs", endpoint, region)
    return (
        sqs,
        str(info["dead_letter_queue_url"]),
        emulator_client("dynamodbstreams", endpoint, region),
        (InProcessConsumer(dynamodb_handler(app))),
    )


def _deployed(stage_name: str, say: Callable[[str], None]) -> tuple[Any, str, Any, Consumer]:
    import boto3

    from infra.stages import load_stage

    stage = load_stage(stage_name)
    sqs, functions = boto3.client("sqs"), boto3.client("lambda")
    try:
        queue_url = str(sqs.get_queue_url(QueueName=stage.dead_letter_queue_name)["QueueUrl"])
    except Exception as exc:
        raise ReplayError(f"no dead-letter queue {stage.dead_letter_queue_name}: {_error_code(exc) or exc}") from exc
    function = stage.consumer_function_name
    try:
        functions.get_alias(FunctionName=function, Name="live")
        function = f"{function}:live"
    except Exception as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        say(f"{function} has no `live` alias (the `chalice deploy` path): replaying to the function itself")
    return sqs, queue_url, boto3.client("dynamodbstreams"), LambdaConsumer(functions, function)


def run(stage: str, drop_trimmed: bool, stack_file: Path, say: Callable[[str], None] = print) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sqs, queue_url, streams, consumer = _local(stack_file) if stage == "local" else _deployed(stage, say)
        summary = replay(sqs, queue_url, streams, consumer, drop_trimmed, say, 0 if stage == "local" else WAIT_TIME_S)
    except ReplayError as exc:
        print(f"make replay-dlq: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        # A message not yet deleted is handed out again once its visibility timeout passes.
        reason = f"{_error_code(exc)}: {exc}" if _error_code(exc) else str(exc)
        print(f"make replay-dlq: AWS answered {reason} (what was said above is done)", file=sys.stderr)
        return 1
    return 1 if summary.left_behind else 0


def main(stage: str, drop_trimmed: bool) -> None:
    stack_file = Path(os.environ.get("STACK_FILE", Path(__file__).resolve().parent.parent / ".local" / "stack.json"))
    sys.exit(run(stage, drop_trimmed, stack_file))
