"""The load test's own checks: it refuses remote targets, and its table comparison finds each kind of damage."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.dynamodb import inventory_of
from loadtest.__main__ import main
from loadtest.runner import Client, NotLoopback, percentile, require_loopback, run_load, verify

TAG = "lt-run1-"


def user(user_id: str, n: int, version: int = 1, phone: str | None = None) -> dict[str, Any]:
    return {
        "userId": user_id,
        "name": f"Load {n}",
        "email": f"{TAG}0-{n}@load.example",
        "phone": phone,
        "createdAt": "2024-01-01T00:00:00.000Z",
        "updatedAt": "2024-01-01T00:00:00.000Z",
        "version": version,
    }


def user_item(record: dict[str, Any]) -> dict[str, Any]:
    item = {
        "userId": {"S": record["userId"]},
        "listingId": {"S": record["userId"]},
        "name": {"S": record["name"]},
        "email": {"S": record["email"]},
        "emailKey": {"S": record["email"].lower()},
        "createdAt": {"S": record["createdAt"]},
        "updatedAt": {"S": record["updatedAt"]},
        "version": {"N": str(record["version"])},
    }
    if record["phone"] is not None:
        item["phone"] = {"S": record["phone"]}
    return item


def reservation(record: dict[str, Any], owner: str | None = None) -> dict[str, Any]:
    return {"userId": {"S": "EMAIL#" + record["email"].lower()}, "ownerId": {"S": owner or record["userId"]}}


def client(present: tuple[dict[str, Any], ...] = (), deleted: tuple[str, ...] = ()) -> Client:
    c = Client(0, "http://127.0.0.1:1", "token", TAG, 1, threading.Event())
    c.present = {record["userId"]: record for record in present}
    c.deleted = list(deleted)
    return c


def test_a_table_that_matches_the_beliefs_passes() -> None:
    a, b = user("a", 1, phone="+14155550123"), user("b", 2, version=3)
    other_run = {**user("x", 9), "email": "lt-other-0-9@load.example"}
    items = [user_item(a), reservation(a), user_item(b), reservation(b), user_item(other_run), reservation(other_run)]

    check = verify(inventory_of(items), TAG, [client((a, b), deleted=("c",))])

    assert (check.lost, check.phantom, check.missing_reservations, check.orphaned_reservations) == ([], [], [], [])
    assert (check.table_users, check.table_reservations, check.believed_present, check.believed_deleted) == (2, 2, 2, 1)


def test_a_missing_or_different_user_is_lost() -> None:
    a, b = user("a", 1), user("b", 2, version=2)
    stale_b = {**b, "version": 1}

    check = verify(inventory_of([user_item(stale_b), reservation(b)]), TAG, [client((a, b))])

    assert len(check.lost) == 2
    assert "missing" in check.lost[0] and "version: 2 != 1" in check.lost[1]


def test_a_deleted_or_never_acknowledged_user_is_a_phantom() -> None:
    a, b = user("a", 1), user("b", 2)

    check = verify(
        inventory_of([user_item(a), reservation(a), user_item(b), reservation(b)]), TAG, [client(deleted=("a",))]
    )

    assert sorted(check.phantom) == ["a (lt-run1-0-1@load.example): believed deleted",
                                     "b (lt-run1-0-2@load.example): never acknowledged"]  # fmt: skip


def test_a_user_whose_create_had_an_unknown_outcome_is_not_a_phantom() -> None:
    a = user("a", 1)
    uncertain = client()
    uncertain.uncertain_emails.add(a["email"])

    assert verify(inventory_of([user_item(a), reservation(a)]), TAG, [uncertain]).phantom == []


def test_reservations_must_belong_to_a_live_user_with_that_email() -> None:
    a, b, gone = user("a", 1), user("b", 2), user("gone", 3)

    check = verify(
        inventory_of([user_item(a), user_item(b), reservation(b, owner="a"), reservation(gone)]), TAG, [client((a, b))]
    )

    assert len(check.missing_reservations) == 2  # a has none of its own, b's names another owner
    assert len(check.orphaned_reservations) == 2  # b's email held for a, and one for a deleted user


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:8000/", "http://[::1]:8000", "http://127.8.9.1"]
)
def test_loopback_targets_are_accepted(url: str) -> None:
    require_loopback(url)


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "https://api.example.com", "http://0.0.0.0:8000", "http://"])
def test_other_targets_are_refused(url: str) -> None:
    with pytest.raises(NotLoopback):
        require_loopback(url)


def test_a_remote_stack_is_refused_before_any_request(tmp_path: Path) -> None:
    info = {"api_url": "http://127.0.0.1:8000", "aws_endpoint_url": "https://dynamodb.us-east-1.amazonaws.com"}
    with pytest.raises(NotLoopback):
        run_load(info, clients=1, duration_s=1)
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps({**info, "api_url": "http://192.0.2.1:8000"}))
    with pytest.raises(SystemExit, match="non-loopback"):
        main(["--stack-file", str(stack_file)])


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    assert percentile([7.0], 99) == 7.0 and percentile([], 50) is None
