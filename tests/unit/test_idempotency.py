"""Idempotency-Key handling around a write: replay, mismatch, in flight, release, expiry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice import Response  # type: ignore[attr-defined]

from chalicelib.domain.errors import EmailAlreadyExists, ServiceUnavailable, ValidationError
from chalicelib.web import idempotency
from chalicelib.web.errors import IdempotencyKeyReused, IdempotentRequestInFlight, error_response
from tests.unit.fakes import FakeClock, FakeIdempotencyStore

BODY = {"name": "Ann", "email": "ann@example.com"}


class Producer:
    """A write that counts its runs and the write tokens it was given, and answers 201, or
    raises what it is told to."""

    def __init__(self) -> None:
        self.runs = 0
        self.tokens: list[str] = []
        self.error: Exception | None = None

    def __call__(self, token: str) -> Response:
        self.runs += 1
        self.tokens.append(token)
        if self.error is not None:
            raise self.error
        return Response(
            body={"user": {"userId": f"u{self.runs}"}},
            status_code=201,
            headers={"Content-Type": "application/json", "Location": f"/users/u{self.runs}", "ETag": '"1-x"'},
        )


@pytest.fixture
def store() -> FakeIdempotencyStore:
    return FakeIdempotencyStore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_700_000_000)


def run(
    store: FakeIdempotencyStore,
    produce: Producer,
    clock: FakeClock,
    key: str = "k1",
    body: dict[str, Any] | None = None,
    scope: str = "caller-1",
    operation: str = "createUser",
) -> Response:
    return idempotency.run_once(store, scope, key, operation, body or BODY, produce, clock)


def test_a_retry_gets_the_original_response_and_nothing_runs_again(store, clock) -> None:
    produce = Producer()
    first = run(store, produce, clock)
    again = run(store, produce, clock, body=dict(reversed(list(BODY.items()))))  # key order is irrelevant
    assert produce.runs == 1
    assert again.status_code == first.status_code == 201
    assert json.loads(again.body) == first.body
    assert again.headers["Location"] == first.headers["Location"] == "/users/u1"
    assert again.headers["ETag"] == '"1-x"'
    assert again.headers[idempotency.REPLAYED_HEADER] == "true"
    assert idempotency.REPLAYED_HEADER not in first.headers


def test_the_same_key_with_another_body_or_operation_is_refused(store, clock) -> None:
    produce = Producer()
    run(store, produce, clock)
    with pytest.raises(IdempotencyKeyReused):
        run(store, produce, clock, body={**BODY, "name": "Bob"})
    with pytest.raises(IdempotencyKeyReused):
        run(store, produce, clock, operation="putProfile")
    assert produce.runs == 1


def test_keys_are_scoped_to_the_caller(store, clock) -> None:
    produce = Producer()
    run(store, produce, clock, scope="caller-1")
    other = run(store, produce, clock, scope="caller-2")
    assert produce.runs == 2
    assert idempotency.REPLAYED_HEADER not in other.headers


def test_a_duplicate_while_the_first_is_in_flight_is_409(store, clock) -> None:
    inner = Producer()
    seen: list[Exception] = []

    def produce(token: str) -> Response:
        try:
            run(store, inner, clock)  # the same key arrives while this one runs
        except IdempotentRequestInFlight as exc:
            seen.append(exc)
        return inner(token)

    idempotency.run_once(store, "caller-1", "k1", "createUser", BODY, produce, clock)
    assert len(seen) == 1
    assert inner.runs == 1


def test_a_lock_left_by_a_dead_request_is_taken_over_after_it_expires_with_its_write_token(store, clock) -> None:
    rid = idempotency.record_id("caller-1", "k1")
    store.claim(rid, idempotency.fingerprint("createUser", BODY), "dead", "dead-write-token", int(clock()))
    produce = Producer()
    with pytest.raises(IdempotentRequestInFlight):
        run(store, produce, clock)
    clock.advance(idempotency.LOCK_S + 1)
    assert run(store, produce, clock).status_code == 201
    # The dead request may have written: its successor writes with its token, so it finds that write.
    assert produce.tokens == ["dead-write-token"]


@pytest.mark.parametrize("error", [EmailAlreadyExists(), ValidationError()])
def test_after_a_refusal_the_key_is_released_so_a_retry_runs_afresh(store, clock, error) -> None:
    produce = Producer()
    produce.error = error
    with pytest.raises(type(error)):
        run(store, produce, clock)
    assert store.records == {}
    produce.error = None
    assert run(store, produce, clock, body={**BODY, "name": "Bob"}).status_code == 201  # even with another body
    assert produce.runs == 2
    assert produce.tokens[0] != produce.tokens[1]


@pytest.mark.parametrize("error", [ServiceUnavailable(), RuntimeError("boom")])
def test_after_an_unknown_outcome_a_retry_runs_at_once_with_the_same_write_token(store, clock, error) -> None:
    produce = Producer()
    produce.error = error
    with pytest.raises(type(error)):
        run(store, produce, clock)
    assert len(store.records) == 1  # kept, unlocked: it knows the token the write may have used
    produce.error = None
    retry = run(store, produce, clock)  # at once: no wait for the lock to expire
    assert retry.status_code == 201 and idempotency.REPLAYED_HEADER not in retry.headers
    assert produce.runs == 2 and produce.tokens[0] == produce.tokens[1]
    assert run(store, produce, clock).headers[idempotency.REPLAYED_HEADER] == "true"
    with pytest.raises(IdempotencyKeyReused):
        run(store, produce, clock, body={**BODY, "name": "Bob"})


def test_an_unlock_that_failed_leaves_a_409_that_says_when_the_lock_expires(store, clock, monkeypatch) -> None:
    """After a 503 whose unlock failed too (DynamoDB was what failed), the key stays locked until
    its lock expires: every 409 meanwhile says how long, counted down from the stored lock."""

    def broken(*args: Any) -> None:
        raise ServiceUnavailable()

    monkeypatch.setattr(store, "unlock", broken)
    produce = Producer()
    produce.error = ServiceUnavailable()
    with pytest.raises(ServiceUnavailable):
        run(store, produce, clock)
    produce.error = None
    waits = []
    for step in (0, 10, idempotency.LOCK_S - 10):
        clock.advance(step)
        with pytest.raises(IdempotentRequestInFlight) as refused:
            run(store, produce, clock)
        waits.append(refused.value.retry_after_s)
    assert waits == [idempotency.LOCK_S + 1, idempotency.LOCK_S - 9, 1]
    clock.advance(1)
    assert run(store, produce, clock).status_code == 201
    assert produce.runs == 2 and produce.tokens[0] == produce.tokens[1]


@pytest.mark.parametrize(("wait", "said"), [(31, "31 seconds"), (1, "1 second")])
def test_the_409_of_a_locked_key_carries_retry_after_and_its_body_says_when(wait: int, said: str) -> None:
    response = error_response(IdempotentRequestInFlight(wait))
    assert response.status_code == 409
    assert response.headers["Retry-After"] == str(wait)
    body = json.loads(response.body) if isinstance(response.body, str) else response.body
    assert body["error"] == f"A request with this Idempotency-Key is still in progress; retry in {said}"


@pytest.mark.parametrize("wait", [0, -5])
def test_retry_after_is_at_least_one_second(wait: int) -> None:
    assert IdempotentRequestInFlight(wait).retry_after_s == 1
    assert error_response(IdempotentRequestInFlight(wait)).headers["Retry-After"] == "1"


def test_a_resent_claim_is_recognised_as_ours(store, clock) -> None:
    rid, fp = idempotency.record_id("caller-1", "k1"), idempotency.fingerprint("createUser", BODY)
    first = store.claim(rid, fp, "lock-1", "write-1", int(clock()))
    assert store.claim(rid, fp, "lock-1", "write-ignored", int(clock())) == first == idempotency.Claimed("write-1")


def test_without_a_key_every_request_gets_a_fresh_token(store, clock) -> None:
    produce = Producer()
    run(store, produce, clock, key="a")
    run(store, produce, clock, key="b")
    assert len(set(produce.tokens)) == 2 and all(len(token) == 22 for token in produce.tokens)


def test_records_expire_after_the_ttl(store, clock) -> None:
    produce = Producer()
    run(store, produce, clock)
    clock.advance(idempotency.RECORD_TTL_S - 1)
    assert run(store, produce, clock).headers[idempotency.REPLAYED_HEADER] == "true"
    clock.advance(2)
    fresh = run(store, produce, clock, body={**BODY, "name": "Bob"})  # even another body: the key is free
    assert produce.runs == 2
    assert idempotency.REPLAYED_HEADER not in fresh.headers


def test_a_failure_to_store_the_response_still_answers_the_client(store, clock, monkeypatch) -> None:
    def broken(*args: Any) -> None:
        raise ServiceUnavailable()

    monkeypatch.setattr(store, "complete", broken)
    produce = Producer()
    assert run(store, produce, clock).status_code == 201
    # A retry waits for the lock, then runs again with the same token (and so finds its own write).
    with pytest.raises(IdempotentRequestInFlight):
        run(store, produce, clock)
    clock.advance(idempotency.LOCK_S + 1)
    monkeypatch.undo()
    assert run(store, produce, clock).status_code == 201
    assert produce.tokens[0] == produce.tokens[1]


@pytest.mark.parametrize("key", ["", " ", "a b", "x" * 256, "é", "tab\there"])
def test_invalid_keys_are_400(key: str) -> None:
    with pytest.raises(ValidationError):
        idempotency.parse_key({"idempotency-key": key})


def test_valid_keys() -> None:
    assert idempotency.parse_key({}) is None
    assert idempotency.parse_key({"idempotency-key": "x" * 255}) == "x" * 255
    assert idempotency.parse_key({"idempotency-key": "9f1c-…"[:5]}) == "9f1c-"


def test_neither_key_nor_caller_is_stored_in_clear() -> None:
    rid = idempotency.record_id("caller-1", "my-key")
    assert "caller-1" not in rid and "my-key" not in rid
    assert rid != idempotency.record_id("caller-2", "my-key")
