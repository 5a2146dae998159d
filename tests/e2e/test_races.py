"""Concurrent requests over HTTP against the embedded stack: DynamoDB's conditions decide.

The local server runs requests concurrently (one thread per connection, the app's request
state per thread), so these interleave the way requests on separate Lambda environments do.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.adapters.table_schema import EMAIL_KEY_PREFIX
from tests.e2e.conftest import Stack
from tests.support.local_api import call

CLIENTS = 20


def together(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Run `action(i)` on n threads released at the same moment."""
    start = threading.Barrier(n)

    def run(i: int) -> Any:
        start.wait()
        return action(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def table_items(stack: Stack) -> list[dict[str, Any]]:
    info = stack.info
    client = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": info["table_name"], "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def assert_reservations_consistent(stack: Stack, emails: set[str]) -> None:
    """For these emails: a reservation exists exactly when a user has the email, and names it."""
    items = table_items(stack)
    users = {i["emailKey"]["S"]: i["userId"]["S"] for i in items if "listingId" in i and i["emailKey"]["S"] in emails}
    reservations = {
        i["userId"]["S"].removeprefix(EMAIL_KEY_PREFIX): i["ownerId"]["S"]
        for i in items
        if i["userId"]["S"].removeprefix(EMAIL_KEY_PREFIX) in emails and "ownerId" in i
    }
    assert reservations == users


def test_concurrent_creates_with_one_email_give_exactly_one_201(stack: Stack) -> None:
    admin = stack.token()
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"

    def attempt(i: int) -> int:
        body = {"name": f"Racer {i}", "email": email.upper() if i % 2 else email}
        return int(call(stack, "POST", "/users", admin, body).status_code)

    statuses = together(CLIENTS, attempt)
    assert statuses.count(201) == 1
    assert statuses.count(409) == CLIENTS - 1
    assert_reservations_consistent(stack, {email})


def test_concurrent_updates_with_one_if_match_give_exactly_one_200(stack: Stack) -> None:
    admin = stack.token()
    created = call(stack, "POST", "/users", admin, {"name": "Ada", "email": f"im-{uuid.uuid4().hex[:8]}@example.com"})
    tag, user_id = created.headers["ETag"], created.json()["user"]["userId"]

    def attempt(i: int) -> Any:
        return call(stack, "PUT", f"/users/{user_id}", admin, {"name": f"Writer {i}"}, headers={"If-Match": tag})

    responses = together(CLIENTS, attempt)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1
    assert statuses.count(412) == CLIENTS - 1
    (winner,) = [r.json()["user"] for r in responses if r.status_code == 200]
    stored = call(stack, "GET", f"/users/{user_id}", admin).json()
    assert stored == winner
    assert stored["version"] == 2


def test_concurrent_email_changes_with_one_if_match_move_the_reservation_once(stack: Stack) -> None:
    admin = stack.token()
    run = uuid.uuid4().hex[:8]
    old = f"move-{run}@example.com"
    created = call(stack, "POST", "/users", admin, {"name": "Ada", "email": old})
    tag, user_id = created.headers["ETag"], created.json()["user"]["userId"]
    targets = [f"move-{run}-{i}@example.com" for i in range(CLIENTS)]

    def attempt(i: int) -> int:
        response = call(stack, "PUT", f"/users/{user_id}", admin, {"email": targets[i]}, headers={"If-Match": tag})
        return int(response.status_code)

    statuses = together(CLIENTS, attempt)
    assert statuses.count(200) == 1
    assert statuses.count(412) == CLIENTS - 1
    assert_reservations_consistent(stack, {old, *targets})


def test_create_racing_delete_leaves_no_orphaned_reservation(stack: Stack) -> None:
    admin = stack.token()
    run = uuid.uuid4().hex[:8]
    emails: set[str] = set()
    for round_ in range(8):
        email = f"cd-{run}-{round_}@example.com"
        emails.add(email)
        first = call(stack, "POST", "/users", admin, {"name": "First", "email": email}).json()["user"]

        def act(i: int, user_id: str = first["userId"], email: str = email) -> int:
            if i == 0:
                return int(call(stack, "DELETE", f"/users/{user_id}", admin).status_code)
            return int(call(stack, "POST", "/users", admin, {"name": f"Second {i}", "email": email}).status_code)

        statuses = together(4, act)
        assert statuses[0] == 200
        assert set(statuses[1:]) <= {201, 409}
        assert statuses[1:].count(201) <= 1
    assert_reservations_consistent(stack, emails)


def test_first_profile_put_racing_its_delete_leaves_no_orphaned_reservation(stack: Stack) -> None:
    admin = stack.token()
    run = uuid.uuid4().hex[:8]
    emails: set[str] = set()
    for round_ in range(6):
        email = f"pd-{run}-{round_}@example.com"
        emails.add(email)
        member = stack.add_user(email, "Correct-Horse-9-battery")
        sub = call(stack, "PUT", "/users/me", member, {"name": "Mo"}).json()["user"]["userId"]

        def act(i: int, member: str = member, sub: str = sub) -> int:
            if i % 2:
                return int(call(stack, "DELETE", f"/users/{sub}", admin).status_code)
            return int(call(stack, "PUT", "/users/me", member, {"name": f"Mo {i}"}).status_code)

        statuses = together(4, act)
        # A PUT that lands after the delete finds the token revoked (401), or, in the instant its
        # cached check still let it in, the user gone (404): a deleted user is never made again.
        assert set(statuses) <= {200, 401, 404, 409}, statuses
        assert statuses[1::2].count(200) <= 1, statuses  # one delete at most did it
    assert_reservations_consistent(stack, emails)
