"""The local stack's event source mapping (devstack/streams.py) honours partial batch responses
as Lambda does: from the reported record on, again, a bounded number of times, then skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from devstack.streams import MAX_RETRIES, StreamPoller, dead_letter_message, lambda_record
from tests.support.stream_records import STREAM_ARN, record, user
from tests.support.waiting import wait_until


class Reader:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def read(self, limit: int = 100) -> list[dict[str, Any]]:
        out, self.records = self.records[:limit], self.records[limit:]
        return out


def sequences(batch: list[dict[str, Any]]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in batch]


def test_a_reported_record_and_those_after_it_are_delivered_again_until_handled() -> None:
    records = [record("INSERT", new=user(user_id=f"u-{n}")) for n in range(3)]
    calls: list[list[str]] = []

    def deliver(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(sequences(event["Records"]))
        failed = [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}] if len(calls) == 1 else []
        return {"batchItemFailures": failed}

    poller = StreamPoller(Reader(list(records)), deliver, retry_pause_s=0)
    poller.drain()
    assert calls == [sequences(records), sequences(records[1:])]
    assert poller.delivered == 3


def test_a_record_that_keeps_failing_is_skipped_after_the_retries() -> None:
    records = [record("INSERT", new=user(user_id=f"u-{n}")) for n in range(2)]
    calls: list[list[str]] = []

    def deliver(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(sequences(event["Records"]))
        first = event["Records"][0]
        failing = first is records[0] or first["dynamodb"] == records[0]["dynamodb"]
        return {"batchItemFailures": [{"itemIdentifier": sequences([first])[0]}] if failing else []}

    dead: list[tuple[dict[str, Any], int]] = []
    poller = StreamPoller(Reader(list(records)), deliver, retry_pause_s=0, dead_letter=lambda r, n: dead.append((r, n)))
    poller.drain()
    assert calls == [sequences(records)] * (MAX_RETRIES + 1) + [sequences(records[1:])]
    # Its place goes to the dead-letter queue, as the deployed mapping sends it (make replay-dlq).
    assert dead == [(records[0], MAX_RETRIES + 1)]


def test_the_dead_letter_message_is_lambdas_on_failure_record_for_one_record() -> None:
    shaped = lambda_record(record("INSERT", new=user()), STREAM_ARN)
    sequence = shaped["dynamodb"]["SequenceNumber"]
    message = dead_letter_message(shaped, "shardId-1", 4, "arn:aws:lambda:us-east-1:000000000000:function:f")
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 4
    assert message["DDBStreamBatchInfo"] == {
        "shardId": "shardId-1",
        "startSequenceNumber": sequence,
        "endSequenceNumber": sequence,
        "approximateArrivalOfFirstRecord": message["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"],
        "approximateArrivalOfLastRecord": message["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"],
        "batchSize": 1,
        "streamArn": STREAM_ARN,
    }


def test_a_raising_handler_gets_the_whole_batch_again() -> None:
    records = [record("INSERT", new=user())]
    calls = []

    def deliver(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return {"batchItemFailures": []}

    StreamPoller(Reader(list(records)), deliver, retry_pause_s=0).drain()
    assert len(calls) == 2


def test_records_take_lambdas_shape() -> None:
    raw = record("INSERT", new=user())
    del raw["eventSourceARN"]
    raw["dynamodb"]["ApproximateCreationDateTime"] = datetime(2025, 1, 1, tzinfo=UTC)
    shaped = lambda_record(raw, STREAM_ARN)
    assert shaped["eventSourceARN"] == STREAM_ARN
    assert shaped["dynamodb"]["ApproximateCreationDateTime"] == 1735689600.0


class CountingReader(Reader):
    def __init__(self) -> None:
        super().__init__([])
        self.reads = 0

    def read(self, limit: int = 100) -> list[dict[str, Any]]:
        self.reads += 1
        return super().read(limit)


def test_with_a_wake_up_an_idle_poller_reads_only_when_woken_or_after_its_long_interval() -> None:
    """An idle local stack reads its stream every IDLE_READ_S, not five times a second; a record the
    wake-up announces is delivered at once."""
    import threading

    from devstack.streams import IDLE_READ_S, POLL_INTERVAL_S

    reader, delivered, wake = CountingReader(), threading.Event(), threading.Event()

    def deliver(event: dict[str, Any]) -> dict[str, Any]:
        delivered.set()
        return {"batchItemFailures": []}

    def reads_reach(count: int) -> bool:  # the poller's thread may start late on a busy machine
        wait_until(lambda: reader.reads >= count, IDLE_READ_S / 2, interval_s=0.01)
        return reader.reads == count

    poller = StreamPoller(reader, deliver, wake=wake).start()
    try:
        assert reads_reach(1)
        threading.Event().wait(4 * POLL_INTERVAL_S)  # four polls' worth of idleness
        assert reader.reads == 1  # the first read only: nothing woke it, IDLE_READ_S has not passed
        reader.records.append(record("INSERT", new=user(user_id="u-1")))
        wake.set()
        assert delivered.wait(IDLE_READ_S / 2)
        assert reads_reach(3)  # the read that found it, one that found nothing more
        threading.Event().wait(4 * POLL_INTERVAL_S)
        assert reader.reads == 3  # then idle again
    finally:
        poller.stop()
