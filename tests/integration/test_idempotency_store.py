"""Idempotency records on DynamoDB (moto): claim, complete, release, expiry and TTL."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.idempotency_store import DynamoIdempotencyStore
from chalicelib.adapters.table_schema import IDEMPOTENCY_KEY_PREFIX, SEARCH_INDEXES, TTL_ATTRIBUTE
from chalicelib.web.errors import IdempotencyKeyReused, IdempotentRequestInFlight
from chalicelib.web.idempotency import LOCK_S, RECORD_TTL_S, Claimed, StoredResponse
from tests.integration.conftest import TABLE
from tests.support.counting import counting

NOW = 1_700_000_000
RESPONSE = StoredResponse(201, '{"user": {"userId": "u-1"}}', {"Location": "/users/u-1", "ETag": '"1-x"'})


@pytest.fixture
def store(ddb: Any) -> DynamoIdempotencyStore:
    return DynamoIdempotencyStore(TABLE, client=ddb)


def item(ddb: Any, rid: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = ddb.get_item(
        TableName=TABLE, Key={"userId": {"S": IDEMPOTENCY_KEY_PREFIX + rid}}
    ).get("Item")
    return found


def test_claim_complete_replay(store: DynamoIdempotencyStore, ddb: Any) -> None:
    with counting(ddb) as calls:
        assert store.claim("r1", "fp", "t1", "w-t1", NOW) == Claimed("w-t1")
        store.complete("r1", "t1", RESPONSE, NOW + 1)
    assert calls.total == 2
    assert store.claim("r1", "fp", "t2", "w-t2", NOW + 2) == RESPONSE
    stored = item(ddb, "r1")
    assert stored is not None
    assert int(stored[TTL_ATTRIBUTE]["N"]) == NOW + RECORD_TTL_S
    assert "lockedUntil" not in stored


def test_in_flight_and_mismatch(store: DynamoIdempotencyStore) -> None:
    store.claim("r1", "fp", "t1", "w-t1", NOW)
    with pytest.raises(IdempotentRequestInFlight):
        store.claim("r1", "fp", "t2", "w-t2", NOW + 1)
    with pytest.raises(IdempotencyKeyReused):
        store.claim("r1", "other", "t2", "w-t2", NOW + 1)


def test_a_dead_lock_is_taken_over_only_by_the_same_request(store: DynamoIdempotencyStore) -> None:
    store.claim("r1", "fp", "t1", "w-t1", NOW)
    with pytest.raises(IdempotencyKeyReused):
        store.claim("r1", "other", "t2", "w-t2", NOW + LOCK_S + 1)
    # The dead request may have written: its successor keeps its write token to find that write.
    assert store.claim("r1", "fp", "t2", "w-t2", NOW + LOCK_S + 1) == Claimed("w-t1")
    store.complete("r1", "t1", StoredResponse(200, "{}", {}), NOW + LOCK_S + 2)  # the old holder: ignored
    store.complete("r1", "t2", RESPONSE, NOW + LOCK_S + 2)
    assert store.claim("r1", "fp", "t3", "w-t3", NOW + LOCK_S + 3) == RESPONSE


def test_release_frees_the_key_but_only_for_its_holder(store: DynamoIdempotencyStore, ddb: Any) -> None:
    store.claim("r1", "fp", "t1", "w-t1", NOW)
    store.release("r1", "someone-else")
    assert item(ddb, "r1") is not None
    store.release("r1", "t1")
    assert item(ddb, "r1") is None
    assert store.claim("r1", "other", "t2", "w-t2", NOW) == Claimed("w-t2")


def test_an_expired_record_is_free_before_dynamodb_deletes_it(store: DynamoIdempotencyStore) -> None:
    store.claim("r1", "fp", "t1", "w-t1", NOW)
    store.complete("r1", "t1", RESPONSE, NOW)
    assert store.claim("r1", "other", "t2", "w-t2", NOW + RECORD_TTL_S + 1) == Claimed("w-t2")


def test_records_never_show_up_in_the_search_indexes(store: DynamoIdempotencyStore, ddb: Any) -> None:
    store.claim("r1", "fp", "t1", "w-t1", NOW)
    store.complete("r1", "t1", RESPONSE, NOW)
    for index in SEARCH_INDEXES:
        assert ddb.scan(TableName=TABLE, IndexName=index)["Items"] == []


def test_an_unlocked_record_is_taken_over_at_once_with_its_write_token(store: DynamoIdempotencyStore, ddb: Any) -> None:
    store.claim("r1", "fp", "t1", "w-t1", NOW)
    store.unlock("r1", "someone-else")  # only the holder unlocks
    with pytest.raises(IdempotentRequestInFlight):
        store.claim("r1", "fp", "t2", "w-t2", NOW + 1)
    store.unlock("r1", "t1")
    with pytest.raises(IdempotencyKeyReused):
        store.claim("r1", "other", "t2", "w-t2", NOW + 1)
    with counting(ddb) as calls:
        assert store.claim("r1", "fp", "t2", "w-t2", NOW + 1) == Claimed("w-t1")
    assert calls.total == 2  # the failed put that finds the record, and the take-over
    with pytest.raises(IdempotentRequestInFlight):  # now locked by t2
        store.claim("r1", "fp", "t3", "w-t3", NOW + 2)
    store.complete("r1", "t2", RESPONSE, NOW + 2)
    assert store.claim("r1", "fp", "t3", "w-t3", NOW + 3) == RESPONSE


def test_resent_writes_of_the_store_are_recognised(store: DynamoIdempotencyStore, ddb: Any) -> None:
    """botocore resends a request whose answer came late: each step must accept its own resend."""
    assert store.claim("r1", "fp", "t1", "w-t1", NOW) == Claimed("w-t1")
    assert store.claim("r1", "fp", "t1", "w-other", NOW) == Claimed("w-t1")  # the claim, resent
    store.complete("r1", "t1", RESPONSE, NOW + 1)
    store.complete("r1", "t1", RESPONSE, NOW + 1)  # resent: no error, same record
    assert store.claim("r1", "fp", "t9", "w-t9", NOW + 2) == RESPONSE
    store.claim("r2", "fp", "t1", "w-t1", NOW)
    store.release("r2", "t1")
    store.release("r2", "t1")  # resent after the delete: the missing record is no error
    assert item(ddb, "r2") is None


def test_a_live_lock_says_how_long_it_has_left_in_whole_seconds(store: DynamoIdempotencyStore) -> None:
    """A claim at `lockedUntil + 1` takes a lock over: until then it is refused with the wait."""
    store.claim("r1", "fp", "t1", "w-t1", NOW)
    waits = {}
    for later in (0, 1, 10, LOCK_S):
        with pytest.raises(IdempotentRequestInFlight) as refused:
            store.claim("r1", "fp", f"t-{later}", "w", NOW + later)
        waits[later] = refused.value.retry_after_s
    assert waits == {0: LOCK_S + 1, 1: LOCK_S, 10: LOCK_S - 9, LOCK_S: 1}
    assert store.claim("r1", "fp", "t2", "w-t2", NOW + LOCK_S + 1) == Claimed("w-t1")


def test_a_take_over_lost_to_another_retry_says_how_long_the_winner_holds_it(
    store: DynamoIdempotencyStore, ddb: Any
) -> None:
    store.claim("r1", "fp", "t1", "w-t1", NOW)
    store.unlock("r1", "t1")
    later = NOW + 5

    def another_retry_first(**_: Any) -> None:
        ddb.meta.events.unregister("before-call.dynamodb.UpdateItem", another_retry_first)
        assert store.claim("r1", "fp", "t2", "w-t2", later) == Claimed("w-t1")

    ddb.meta.events.register("before-call.dynamodb.UpdateItem", another_retry_first)
    with pytest.raises(IdempotentRequestInFlight) as refused:
        store.claim("r1", "fp", "t3", "w-t3", later)
    assert refused.value.retry_after_s == LOCK_S + 1
