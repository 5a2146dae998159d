"""The bulk jobs' rules: the states a job moves through, the tokens and ids derived for retries,
the backoff, the file keys, the pacing, and what the worker reads from a queue message."""

from __future__ import annotations

import json
import re

import pytest

from chalicelib.domain import jobs
from chalicelib.domain.job_worker import read_message
from chalicelib.domain.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    FINAL,
    QUEUED,
    RUNNING,
    STATUSES,
    backoff_s,
    can_move,
    import_key,
    is_job_id,
    new_job_id,
    parse_import_key,
    row_token,
)
from chalicelib.domain.pacing import Pacer
from infra.stages import load_limits
from tests.unit.fakes import FakeClock


def test_a_job_moves_forward_only_and_its_final_states_are_final() -> None:
    allowed = {(old, new) for old in STATUSES for new in STATUSES if can_move(old, new)}
    assert allowed == {
        (QUEUED, RUNNING),
        (QUEUED, FAILED),
        (QUEUED, CANCELLED),
        (RUNNING, DONE),
        (RUNNING, FAILED),
        (RUNNING, CANCELLED),
    }
    assert FINAL == {DONE, FAILED, CANCELLED}
    assert not any(can_move(final, other) for final in FINAL for other in STATUSES)


def test_a_jobs_id_follows_the_write_token_so_a_keyed_retry_names_the_same_job() -> None:
    assert new_job_id("token-a") == new_job_id("token-a") != new_job_id("token-b")
    assert is_job_id(new_job_id("token-a"))
    assert re.fullmatch(jobs.JOB_ID_PATTERN, new_job_id("x"))
    assert not is_job_id("../x") and not is_job_id(new_job_id("x").upper())


def test_a_rows_write_token_is_the_same_for_every_delivery_and_unique_to_job_and_row() -> None:
    assert row_token("job-1", 7) == row_token("job-1", 7)
    tokens = {row_token(job, row) for job in ("job-1", "job-2") for row in range(1, 500)}
    assert len(tokens) == 998
    assert all(len(token) == 22 for token in tokens)  # as short as the API's own write tokens


def test_backoff_doubles_up_to_sqs_delay_limit_and_all_attempts_last_over_an_hour() -> None:
    delays = [backoff_s(attempt) for attempt in range(1, jobs.MAX_BATCH_ATTEMPTS)]
    assert delays == sorted(delays) and delays[0] == 2 and max(delays) == jobs.MAX_DELAY_S == 900
    assert sum(delays) > 3600


def test_import_keys_name_a_job_and_a_format_and_nothing_else_is_one() -> None:
    job_id = new_job_id("t")
    assert parse_import_key(import_key(job_id, "csv")) == (job_id, "csv")
    assert parse_import_key(import_key(job_id, "jsonl")) == (job_id, "jsonl")
    for key in (f"imports/{job_id}.txt", f"exports/{job_id}.csv", "imports/x.csv", f"imports/{job_id}", "avatars/a"):
        assert parse_import_key(key) is None


def test_the_redrive_policy_hands_a_message_over_as_often_as_the_worker_expects() -> None:
    bulk = load_limits()["bulk_jobs"]
    assert bulk["max_receive_count"] == jobs.MAX_RECEIVES


def test_the_pacer_spreads_units_over_time_and_a_big_cost_is_paid_by_waiting() -> None:
    clock = FakeClock(0.0)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    pacer = Pacer(rate=8.0, burst=1.0, clock=clock, sleep=sleep)
    for _ in range(17):
        pacer.take()
    assert clock.now == pytest.approx(2.0)  # 16 after the first, at 8 a second
    reads = Pacer(rate=100.0, burst=50.0, clock=clock, sleep=sleep)
    start = clock.now
    reads.take(250.0)  # a page of 250 read units: 2 s at 100 a second, less the burst of 50
    assert clock.now - start == pytest.approx(2.0)
    assert Pacer(rate=0).take(1_000_000) == 0.0


def _s3_event(key: str, event: str = "ObjectCreated:Post") -> str:
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": event, "s3": {"object": {"key": key}}}]})


def test_the_worker_reads_what_each_message_asks_and_drops_anything_else() -> None:
    job_id = new_job_id("t")
    assert read_message(_s3_event(import_key(job_id, "csv"))) == [("plan", {"kind": "plan", "job": job_id})]
    # S3 URL-encodes keys in its events.
    assert read_message(_s3_event(import_key(job_id, "csv").replace("/", "%2F"))) == [
        ("plan", {"kind": "plan", "job": job_id})
    ]
    rows = {"kind": "rows", "job": job_id, "attempt": 0, "rows": []}
    assert read_message(json.dumps(rows)) == [("rows", rows)]
    for dropped in (
        json.dumps({"Event": "s3:TestEvent"}),
        _s3_event(import_key(job_id, "csv"), "ObjectRemoved:Delete"),
        _s3_event("avatars/x/avatar"),
        json.dumps({"kind": "rows", "job": "../../x"}),
        json.dumps({"kind": "other", "job": job_id}),
        "not json",
        "[]",
    ):
        assert read_message(dropped) == []
