"""GET /users through the app: filters, sorts and their errors, admins only, and cursors that work
only for the route, the caller and the query they were issued for (issue 20, item 8)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.functional.conftest import Api
from tests.functional.test_users_api import assert_error, create
from tests.support import tokens

ADMIN = tokens.ADMIN
OTHER_ADMIN = tokens.admin_token(str(uuid.uuid4()), "second.admin@example.com")
MEMBER = tokens.token(sub=str(uuid.uuid4()), email="member@example.com")
Deliver = Callable[[], None]


def find(api: Api, query: str, token: str = ADMIN) -> Any:
    return api.request("GET", f"/users?{query}", token)


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.body
    body = response.json_body
    assert body["count"] == len(body["users"])
    return [user["name"] for user in body["users"]]


def fields(response: Any, status: int = 400) -> dict[str, str]:
    body = assert_error(response, status)
    return {detail["field"]: detail["message"] for detail in body.get("details", [])}


@pytest.fixture
def directory(api: Api) -> dict[str, dict[str, Any]]:
    """Five users, created in this order (so newest first is the reverse); two admins (one of them
    disabled: the other stays the enabled admin every table must keep)."""
    made = {
        "ada": create(api, "ada@example.com", "Ada Lovelace", role="admin"),
        "strasse": create(api, "strasse@example.com", "Straße"),
        "zoe": create(api, "Zoe@Example.com", "Zoë", role="admin"),
        "emile": create(api, "emile@example.com", "Émile"),
        "bob": create(api, "ada.bob@example.com", "Bob"),
    }
    for key in ("strasse", "zoe"):
        user_id = made[key]["userId"]
        assert api.request("PUT", f"/users/{user_id}", ADMIN, {"enabled": False}).status_code == 200
    return made


# --- filters and sorts -------------------------------------------------------------------------------


def test_the_default_is_everyone_newest_first(api: Api, directory: Any) -> None:
    assert names(find(api, "")) == ["Bob", "Émile", "Zoë", "Straße", "Ada Lovelace"]
    assert names(find(api, "sort=-createdAt")) == names(find(api, ""))
    assert names(find(api, "sort=createdAt")) == ["Ada Lovelace", "Straße", "Zoë", "Émile", "Bob"]


def test_by_name_regardless_of_case_in_code_point_order(api: Api, directory: Any) -> None:
    assert names(find(api, "sort=name")) == ["Ada Lovelace", "Bob", "Straße", "Zoë", "Émile"]


def test_role_and_state_alone_and_together(api: Api, directory: Any) -> None:
    assert names(find(api, "role=admin")) == ["Zoë", "Ada Lovelace"]
    assert names(find(api, "enabled=false&sort=name")) == ["Straße", "Zoë"]
    assert names(find(api, "role=member&enabled=true")) == ["Bob", "Émile"]
    assert names(find(api, "role=admin&enabled=true")) == ["Ada Lovelace"]
    assert names(find(api, "role=member&enabled=false")) == ["Straße"]


def test_q_finds_name_or_email_prefixes_regardless_of_case_each_user_once(api: Api, directory: Any) -> None:
    # "ada": Ada Lovelace by name (and by email, listed once), Bob by his email ada.bob@...
    assert names(find(api, "q=ADA")) == ["Ada Lovelace", "Bob"]
    assert names(find(api, "q=strasse")) == ["Straße"]  # folded: ß is ss
    assert names(find(api, f"q={quote('STRAß')}")) == ["Straße"]
    assert names(find(api, f"q={quote('e' + chr(0x301) + 'mi')}")) == ["Émile"]  # NFD is NFC here
    assert names(find(api, "q=emi")) == ["Émile"]  # by its email: accents are not folded away
    assert names(find(api, "q=zo&enabled=false")) == ["Zoë"]
    assert names(find(api, "q=zo&role=member")) == []
    assert names(find(api, f"q={quote('  ad  ')}")) == ["Ada Lovelace", "Bob"]  # spaces around are trimmed


def test_email_finds_exactly_one_user_regardless_of_case(api: Api, directory: Any) -> None:
    assert names(find(api, "email=ZOE@example.COM")) == ["Zoë"]
    body = find(api, "email=zoe@example.com").json_body
    assert body["nextCursor"] is None and body["users"][0]["email"] == "Zoe@Example.com"
    # Normalised as on write: the Kelvin sign is the letter K.
    kate = create(api, "kate@example.com", "Kate")
    assert [u["userId"] for u in find(api, f"email={quote(chr(0x212A) + 'ate@example.com')}").json_body["users"]] == [
        kate["userId"]
    ]
    assert names(find(api, "email=zoe@example.com&role=admin&enabled=false")) == ["Zoë"]
    assert names(find(api, "email=zoe@example.com&role=member")) == []
    assert names(find(api, "email=nobody@example.com")) == []


def test_a_deleted_user_is_found_by_nothing(api: Api, directory: Any) -> None:
    assert api.request("DELETE", f"/users/{directory['bob']['userId']}", ADMIN).status_code == 200
    assert "Bob" not in names(find(api, "")) + names(find(api, "q=ada")) + names(find(api, "sort=name"))
    assert names(find(api, "email=ada.bob@example.com")) == []


def test_pages_of_a_filter_follow_its_cursor(api: Api, directory: Any) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = find(api, "sort=name&limit=2" + (f"&cursor={cursor}" if cursor else "")).json_body
        seen += [user["name"] for user in page["users"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ["Ada Lovelace", "Bob", "Straße", "Zoë", "Émile"]


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=email", "sort"),
        ("sort=", "sort"),
        ("role=owner", "role"),
        ("role=", "role"),
        ("enabled=yes", "enabled"),
        ("enabled=True", "enabled"),
        ("q=a", "q"),
        ("q=%20a%20", "q"),
        ("q=", "q"),
        ("q=ab%07", "q"),
        ("q=" + "a" * 255, "q"),
        ("email=not-an-email", "email"),
        ("email=jos%C3%A9@example.com", "email"),
        ("email=", "email"),
        ("name=Ada", "name"),
        ("filter=role", "filter"),
        ("q=ada&email=ada@example.com", "q"),
        ("q=ada&sort=name", "sort"),
        ("email=ada@example.com&sort=createdAt", "sort"),
    ],
)
def test_a_bad_parameter_gets_400_naming_it_and_reads_nothing(api: Api, query: str, field: str, ddb: Any) -> None:
    seen: list[str] = []
    ddb.meta.events.register("before-call.dynamodb", lambda model, **_: seen.append(model.name))
    assert field in fields(find(api, query))
    assert [name for name in seen if name != "GetItem"] == []  # the revocation check aside


def test_every_bad_parameter_is_named_at_once(api: Api) -> None:
    assert set(fields(find(api, "sort=x&role=y&enabled=z&q=a&colour=red"))) == {
        "sort",
        "role",
        "enabled",
        "q",
        "colour",
    }


def test_members_may_not_find_users(api: Api, directory: Any) -> None:
    for query in ("", "email=ada@example.com", "q=ad", "role=admin"):
        assert_error(find(api, query, MEMBER), 403)
    assert_error(api.request("GET", "/users?q=ad"), 401)


# --- cursors: this route, this caller, this query ---------------------------------------------------


def cursor_of(api: Api, query: str, token: str = ADMIN) -> str:
    cursor = find(api, query, token).json_body["nextCursor"]
    assert cursor is not None
    return str(cursor)


def test_a_cursor_of_another_query_gets_400(api: Api, directory: Any) -> None:
    cursor = cursor_of(api, "limit=1&sort=name")
    for other in ("sort=createdAt", "", "sort=name&role=member", "sort=name&enabled=true", "q=ad"):
        message = fields(find(api, f"{other}&limit=1&cursor={cursor}"))["cursor"]
        assert message.startswith("was issued for another query or another caller"), other
    # The same query in other words (the default sort named, a limit changed) keeps it.
    assert find(api, f"sort=name&limit=3&cursor={cursor}").status_code == 200
    q_cursor = cursor_of(api, "limit=1&q=ada")
    assert find(api, f"limit=1&q=ADA&cursor={q_cursor}").status_code == 200  # q is case-insensitive


def test_a_cursor_of_another_caller_gets_400(api: Api, directory: Any) -> None:
    cursor = cursor_of(api, "limit=1")
    assert fields(find(api, f"limit=1&cursor={cursor}", OTHER_ADMIN))["cursor"].startswith("was issued for another")
    assert find(api, f"limit=1&cursor={cursor}", ADMIN).status_code == 200


def test_history_and_list_cursors_do_not_cross(api: Api, directory: Any, deliver_changes: Deliver) -> None:
    ada = directory["ada"]
    for n in range(3):
        api.request("PUT", f"/users/{ada['userId']}", ADMIN, {"name": f"Ada {n}"})
    deliver_changes()
    history_cursor = api.request("GET", f"/users/{ada['userId']}/history?limit=1", ADMIN).json_body["nextCursor"]
    list_cursor = cursor_of(api, "limit=1")
    assert history_cursor is not None
    assert fields(find(api, f"cursor={history_cursor}"))["cursor"] == "was issued for another route"
    response = api.request("GET", f"/users/{ada['userId']}/history?cursor={list_cursor}", ADMIN)
    assert fields(response)["cursor"] == "was issued for another route"
    # A history cursor pages that user's history only, for that caller only.
    other = directory["bob"]["userId"]
    on_other = api.request("GET", f"/users/{other}/history?cursor={history_cursor}", ADMIN)
    assert fields(on_other)["cursor"].startswith("was issued for another query or another caller")
    by_other = api.request("GET", f"/users/{ada['userId']}/history?cursor={history_cursor}", OTHER_ADMIN)
    assert fields(by_other)["cursor"].startswith("was issued for another query or another caller")
    assert api.request("GET", f"/users/{ada['userId']}/history?cursor={history_cursor}", ADMIN).status_code == 200


def test_a_cursor_of_the_previous_release_gets_400(api: Api, directory: Any) -> None:
    """Version 1 cursors ({"v": 1, "after": <userId>}), signed with the stage's key, are refused:
    the client starts again without one."""
    secret = os.environ["CURSOR_SECRET"].encode()  # the test stage's key (tests/support/app_env.py)
    payload = json.dumps({"v": 1, "after": directory["ada"]["userId"]}, separators=(",", ":")).encode()
    signature = hmac.new(secret, payload, hashlib.sha256).digest()[:16]

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    message = fields(find(api, f"cursor={b64(payload)}.{b64(signature)}"))["cursor"]
    assert "earlier version" in message
