"""GET /users/{userId}/history: who changed what and when, from the audit trail the stream
consumer writes (delivered here as Lambda would), with the list route's access rules and cursors."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.conftest import Api
from tests.functional.test_users_api import assert_error, create
from tests.support import tokens

ADMIN, ADMIN_SUB = tokens.ADMIN, tokens.ADMIN_SUB
MEMBER_SUB = str(uuid.uuid4())
MEMBER = tokens.token(sub=MEMBER_SUB, email="member@example.com")


Deliver = Callable[[], None]


@pytest.fixture(autouse=True)
def member_sign_in(sign_in: Callable[..., str]) -> None:
    """The member's sign-in, made outside the API: their first PUT /users/me takes its email."""
    sign_in(MEMBER_SUB, "member@example.com")


def history(api: Api, user_id: str, token: str = ADMIN, query: str = "") -> Any:
    return api.request("GET", f"/users/{user_id}/history{query}", token)


def test_an_admin_reads_every_change_oldest_first_even_after_the_delete(api: Api, deliver_changes: Deliver) -> None:
    ada = create(api)
    assert (
        api.request("PUT", f"/users/{ada['userId']}", ADMIN, {"name": "Ada K", "phone": "+14155550100"}).status_code
        == 200
    )
    assert api.request("DELETE", f"/users/{ada['userId']}", ADMIN).status_code == 200
    deliver_changes()
    response = history(api, ada["userId"])
    assert response.status_code == 200
    body = response.json_body
    assert set(body) == {"events", "count", "nextCursor"}
    assert body["count"] == 3 and body["nextCursor"] is None
    assert [(e["type"], e["actor"], e["changed"]) for e in body["events"]] == [
        ("UserCreated", ADMIN_SUB, ["name", "email", "role", "enabled"]),
        ("UserUpdated", ADMIN_SUB, ["name", "phone"]),
        ("UserDeleted", ADMIN_SUB, ["name", "email", "phone", "role", "enabled"]),
    ]
    for event in body["events"]:
        assert set(event) == {"eventId", "type", "at", "actor", "changed"}
    assert body["events"][0]["at"] == ada["createdAt"]
    assert "no-store" in response.headers["Cache-Control"]


def test_a_member_reads_their_own_history_and_no_one_elses(api: Api, deliver_changes: Deliver) -> None:
    assert api.request("PUT", "/users/me", MEMBER, {"name": "Mia"}).status_code == 201
    ada = create(api)
    deliver_changes()
    own = history(api, MEMBER_SUB, MEMBER).json_body
    assert [(e["type"], e["actor"]) for e in own["events"]] == [("UserCreated", MEMBER_SUB)]
    assert_error(history(api, ada["userId"], MEMBER), 403)
    assert_error(history(api, str(uuid.uuid4()), MEMBER), 403)  # whether or not it exists


def test_no_token_is_401(api: Api) -> None:
    response = api.request("GET", f"/users/{MEMBER_SUB}/history")
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_user_without_changes_has_an_empty_history(api: Api) -> None:
    assert history(api, str(uuid.uuid4())).json_body == {"events": [], "count": 0, "nextCursor": None}


def test_pages_follow_signed_cursors_and_refuse_others(api: Api, deliver_changes: Deliver) -> None:
    ada = create(api)
    for n in range(4):
        api.request("PUT", f"/users/{ada['userId']}", ADMIN, {"name": f"Ada {n}"})
    deliver_changes()
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = history(api, ada["userId"], query="?limit=2" + (f"&cursor={cursor}" if cursor else "")).json_body
        assert page["count"] == len(page["events"]) <= 2
        seen += page["events"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and len({e["eventId"] for e in seen}) == 5
    assert [e["type"] for e in seen] == ["UserCreated"] + ["UserUpdated"] * 4
    create(api, "other@example.com", "Other")
    list_cursor = api.request("GET", "/users?limit=1", ADMIN).json_body["nextCursor"]
    assert list_cursor is not None
    for bad in (list_cursor, "abc.def", "x" * 600):
        assert_error(history(api, ada["userId"], query=f"?cursor={bad}"), 400)
    for limit in ("0", "101", "x"):
        assert_error(history(api, ada["userId"], query=f"?limit={limit}"), 400)


def test_failed_writes_and_a_redelivery_add_nothing(api: Api, deliver_changes: Deliver) -> None:
    ada, other = create(api), create(api, "other@example.com", "Other")
    deliver_changes()
    before = history(api, ada["userId"]).json_body
    assert_error(api.request("PUT", f"/users/{ada['userId']}", ADMIN, {"email": other["email"]}), 409)
    assert_error(
        api.request("PUT", f"/users/{ada['userId']}", ADMIN, {"name": "x"}, headers={"If-Match": '"nope"'}), 412
    )
    assert_error(api.request("PUT", f"/users/{ada['userId']}", ADMIN, {"name": ""}), 400)
    deliver_changes()
    assert history(api, ada["userId"]).json_body == before
    assert before["count"] == 1


def test_an_unknown_id_shape_is_404(api: Api) -> None:
    assert_error(history(api, "EMAIL%23ada@example.com"), 404)
