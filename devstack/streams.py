"""The local stack's event source mapping: the emulator's stream records delivered to the app's
stream consumer, as Lambda would deliver them.

`chalice local` runs no event sources, so a thread of the local stack reads the users table's
stream on the emulator (DescribeStream, GetShardIterator, GetRecords: what moto emulates) and
calls the very handler `@app.on_dynamodb_record` declares, with Lambda's event shape
({"Records": [...]}, each with eventSourceARN and ApproximateCreationDateTime in epoch seconds),
a batch at a time: as soon as the emulator adds a record when it runs in this process (it sets
the poller's wake-up), else POLL_INTERVAL_S after the last empty read.

Like the deployed mapping, it honours partial batch responses: the first reported record and
those after it are delivered again, after a pause, up to MAX_RETRIES times; then the record is
skipped and its place in the stream sent to the local stack's dead-letter queue on the emulator,
in the message Lambda sends (`DDBStreamBatchInfo`), which `make replay-dlq` replays. Unlike it,
every record is delivered (no filter criteria): the handler ignores what is not a user's.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from devstack.emulator_tables import emulator_table
from devstack.polling import poll_until_stopped, woken_by

if TYPE_CHECKING:
    from devstack.resources import Clients

log = logging.getLogger("devstack.streams")

POLL_INTERVAL_S = 0.2
# With a wake-up (the local stack: the emulator sets it as it adds a record to the stream), an idle
# poller reads this often instead (devstack/polling.py), only in case a wake-up went missing.
IDLE_READ_S = 2.0
BATCH_SIZE = 100
MAX_RETRIES = 3
RETRY_PAUSE_S = 0.5
STOP_TIMEOUT_S = 1.0
# The emulator keeps every stream record (about 5 KB each) and every shard iterator it hands out,
# for the life of the stack; DynamoDB keeps records 24 hours. Delivered records beyond this many
# are dropped, so a long `make run` or a load test stays flat in memory while a redelivery of the
# recent past can still be read (TRIM_HORIZON).
KEEP_DELIVERED = 1000
# The local stack's consumer and its dead-letter queue, named as a deployed stage's are (infra/stages.py).
LOCAL_CONSUMER = "users-api-local-changes"
LOCAL_DEAD_LETTER_QUEUE = f"{LOCAL_CONSUMER}-dlq"

Deliver = Callable[[dict[str, Any]], Any]
# Told of each record the poller gave up on, with how many times it was delivered.
DeadLetter = Callable[[dict[str, Any], int], None]


def lambda_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda's event source mapping passes it: the stream's ARN added, the
    creation time in epoch seconds (boto3 parses it into a datetime)."""
    record = {**raw, "eventSourceARN": stream_arn, "dynamodb": dict(raw["dynamodb"])}
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
    return record


class StreamReader:
    """Reads a stream from its oldest record (TRIM_HORIZON, as the deployed mapping starts), shard by
    shard. `used(iterator)` is told of each iterator once a read has replaced it."""

    def __init__(self, client: Any, stream_arn: str, used: Callable[[str], None] = lambda iterator: None):
        self._client = client
        self.stream_arn = stream_arn
        self._iterators: dict[str, str] = {}
        self._used = used
        self._shard_of: dict[str, str] = {}  # sequence number -> shard, of records read and not yet asked for

    def shard_of(self, sequence: str) -> str:
        """The shard a record read by this reader came from (Lambda's records do not say)."""
        return self._shard_of.pop(sequence)

    def forget_shards_up_to(self, sequence: int) -> None:
        for read in [s for s in self._shard_of if int(s) <= sequence]:
            del self._shard_of[read]

    def _shards(self) -> list[str]:
        description = self._client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description.get("Shards", [])]

    def read(self, limit: int = BATCH_SIZE) -> list[dict[str, Any]]:
        if not self._iterators:
            for shard in self._shards():
                self._iterators[shard] = self._client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
        records: list[dict[str, Any]] = []
        for shard, iterator in list(self._iterators.items()):
            result = self._client.get_records(ShardIterator=iterator, Limit=limit - len(records))
            self._iterators[shard] = result["NextShardIterator"]
            self._used(iterator)
            read = [lambda_record(raw, self.stream_arn) for raw in result.get("Records", [])]
            self._shard_of.update((record["dynamodb"]["SequenceNumber"], shard) for record in read)
            records += read
            if len(records) >= limit:
                break
        return records


class RecordSource(Protocol):
    def read(self, limit: int = BATCH_SIZE) -> list[dict[str, Any]]: ...


def _first_failure(batch: list[dict[str, Any]], response: Any) -> int | None:
    """The index of the first record a partial batch response reports (None: all handled)."""
    failures = response.get("batchItemFailures", []) if isinstance(response, dict) else []
    reported = {str(failure.get("itemIdentifier")) for failure in failures}
    for index, record in enumerate(batch):
        if record["dynamodb"]["SequenceNumber"] in reported:
            return index
    return None if not failures else 0  # an identifier that names no record: retry all, as Lambda does


class StreamPoller:
    """`delivered_up_to(sequence number)` is told after each handled batch."""

    def __init__(
        self,
        reader: RecordSource,
        deliver: Deliver,
        retry_pause_s: float = RETRY_PAUSE_S,
        delivered_up_to: Callable[[int], None] = lambda sequence: None,
        dead_letter: DeadLetter = lambda record, deliveries: None,
        wake: threading.Event | None = None,
    ):
        self._reader = reader
        self._wake = wake
        self._deliver = deliver
        self._retry_pause_s = retry_pause_s
        self._delivered_up_to = delivered_up_to
        self._dead_letter = dead_letter
        self._pending: list[dict[str, Any]] = []
        self._attempts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self.delivered = 0  # records handled, for tests and the log

    def poll_once(self) -> bool:
        """Deliver one batch (reading one when none is pending); whether there was one."""
        if not self._pending:
            self._pending = self._reader.read()
        if not self._pending:
            return False
        batch = self._pending[:BATCH_SIZE]
        try:
            failed = _first_failure(batch, self._deliver({"Records": batch}))
        except Exception:
            log.exception("the stream consumer raised: its whole batch is retried")
            failed = 0
        if failed is None:
            self._pending = self._pending[len(batch) :]
            self.delivered += len(batch)
            self._attempts = 0
            self._delivered_up_to(int(batch[-1]["dynamodb"]["SequenceNumber"]))
            return True
        self.delivered += failed
        self._pending = self._pending[failed:]
        self._attempts += 1
        if self._attempts > MAX_RETRIES:
            skipped = self._pending.pop(0)
            log.error(
                "stream record dead-lettered after %d retries (sequence number %s): `make replay-dlq` replays it",
                MAX_RETRIES,
                skipped["dynamodb"]["SequenceNumber"],
            )
            self._attempts = 0
            try:
                self._dead_letter(skipped, MAX_RETRIES + 1)
            except Exception:
                log.exception("the dead-letter queue did not take the record's position")
        else:
            self._stop.wait(self._retry_pause_s)
        return True

    def drain(self, max_batches: int = 1000) -> None:
        """Deliver until nothing is pending or readable (tests)."""
        for _ in range(max_batches):
            if not self.poll_once():
                return
        raise RuntimeError("the stream did not drain")

    def _run(self) -> None:
        poll_until_stopped(self.poll_once, self._stop, self._wake, POLL_INTERVAL_S, IDLE_READ_S, log)

    def start(self) -> StreamPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._wake is not None:
            self._wake.set()
        self._thread.join(timeout=STOP_TIMEOUT_S)


def _iso(epoch_seconds: Any) -> str:
    return datetime.fromtimestamp(float(epoch_seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dead_letter_message(
    record: dict[str, Any], shard_id: str, deliveries: int, function_arn: str, now: datetime | None = None
) -> dict[str, Any]:
    """What Lambda sends the on-failure destination of a DynamoDB stream mapping for a batch it gave
    up on, here of one record (the deployed mapping bisects a failing batch down to it too)."""
    arrival = _iso(record["dynamodb"]["ApproximateCreationDateTime"])
    sequence = str(record["dynamodb"]["SequenceNumber"])
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": deliveries,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "version": "1.0",
        "timestamp": (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": sequence,
            "endSequenceNumber": sequence,
            "approximateArrivalOfFirstRecord": arrival,
            "approximateArrivalOfLastRecord": arrival,
            "batchSize": 1,
            "streamArn": record["eventSourceARN"],
        },
    }


class DeadLetterQueue:
    """The local stack's on-failure destination: the emulator's SQS queue `make replay-dlq` reads."""

    def __init__(self, client: Any, queue_url: str, reader: StreamReader, function_arn: str):
        self._client, self.queue_url, self._reader, self._function_arn = client, queue_url, reader, function_arn

    def __call__(self, record: dict[str, Any], deliveries: int) -> None:
        shard = self._reader.shard_of(str(record["dynamodb"]["SequenceNumber"]))
        message = dead_letter_message(record, shard, deliveries, self._function_arn)
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))


def dynamodb_handler(app: Any) -> Deliver:
    """The handler the app declares with @app.on_dynamodb_record, called as Lambda calls it."""
    from chalice.app import DynamoDBEventConfig  # type: ignore[attr-defined]
    from chalice.local import LambdaContext

    (source,) = [s for s in app.event_sources if isinstance(s, DynamoDBEventConfig)]
    module, _, name = source.handler_string.rpartition(".")
    handler = getattr(importlib.import_module(module), name)
    return lambda event: handler(event, LambdaContext(source.name, memory_size=256))


class EmulatorStream:
    """The in-process emulator's side of the local stack's stream: what it must not keep forever.
    Changed under the emulator's request lock (devstack/motoserver.py), so no request sees it
    half-done and a transaction's rollback (devstack/moto_patches.py) never meets a trim."""

    def __init__(self, moto: Any, region: str, table_name: str):
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        self._lock = moto.app._lock  # the one lock every emulator request holds
        shard = emulator_table(region, table_name).stream_shard
        assert shard is not None, "the users table has a stream (chalicelib/adapters/table_schema.py)"
        self._shard = shard
        self._iterators = dynamodbstreams_backends[DEFAULT_ACCOUNT_ID][region].shard_iterators

    def wake_on_record(self) -> threading.Event:
        """An event the emulator sets whenever it adds a record to the stream (a write of the table)."""
        return woken_by(self._shard, "add")

    def forget(self, iterator: str) -> None:
        with self._lock:
            self._iterators.pop(iterator, None)

    def trim(self, delivered_up_to: int, keep: int = KEEP_DELIVERED) -> None:
        """Drop delivered records but the last `keep`. The shard's starting number moves with them,
        so every sequence number (moto's are the starting number plus the index) stays the same."""
        with self._lock:
            drop = min(delivered_up_to + 1 - keep - self._shard.starting_sequence_number, len(self._shard.items))
            if drop > 0:
                del self._shard.items[:drop]
                self._shard.starting_sequence_number += drop


def stream_arn(client: Any, table_name: str) -> str:
    return str(client.describe_table(TableName=table_name)["Table"]["LatestStreamArn"])


def start(
    app: Any,
    moto: Any,
    region: str,
    stage_env: dict[str, str],
    events_file: Path,
    clients: Clients | None = None,
) -> StreamPoller:
    """Create the audit table, the bus and the dead-letter queue on the emulator (`moto`, a
    devstack.motoserver.MotoServer in this process), and deliver the users table's stream to the
    app's consumer; every published event is also appended to `events_file`. `clients`: the
    emulator's clients to do it with (devstack.resources.emulator_clients)."""
    from devstack import resources

    endpoint, table = moto.url, stage_env["TABLE_NAME"]
    clients = clients or resources.emulator_clients(endpoint, region)
    queue_url = resources.create_change_resources(
        endpoint, region, stage_env["AUDIT_TABLE_NAME"], stage_env["EVENT_BUS_NAME"], LOCAL_DEAD_LETTER_QUEUE, clients
    )
    os.environ["EVENTS_FILE"] = str(events_file)
    emulator = EmulatorStream(moto, region, table)
    reader = StreamReader(clients("dynamodbstreams"), stream_arn(clients("dynamodb"), table), used=emulator.forget)
    consumer_arn = f"arn:aws:lambda:{region}:000000000000:function:{LOCAL_CONSUMER}"
    dead_letters = DeadLetterQueue(clients("sqs"), queue_url, reader, consumer_arn)

    def delivered_up_to(sequence: int) -> None:
        emulator.trim(sequence)
        reader.forget_shards_up_to(sequence)

    wake = emulator.wake_on_record()
    return StreamPoller(
        reader, dynamodb_handler(app), delivered_up_to=delivered_up_to, dead_letter=dead_letters, wake=wake
    ).start()
