"""Input the API must refuse before anything is written: strings that are not Unicode, names
with nothing visible or with invisible format and text-direction characters, and email addresses
that are not one unambiguous ASCII address."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.conftest import TABLE, Api
from tests.functional.test_users_api import ADMIN, MEMBER, MEMBER_SUB, all_users, assert_error, create
from tests.support.routes import concrete, declared

LONE_SURROGATE = '"\\ud800"'  # JSON text: an escaped lone UTF-16 surrogate, no Unicode character


@pytest.fixture(autouse=True)
def member_sign_in(sign_in: Callable[..., str]) -> None:
    """The member's sign-in, made outside the API: their first PUT /users/me takes its email."""
    sign_in(MEMBER_SUB, "member@example.com")


def table(ddb: Any) -> list[str]:
    return sorted(map(str, ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]))


def bodies_with_a_lone_surrogate(path: str) -> list[str]:
    """Raw JSON bodies for a route, the surrogate in each field it reads and in a key."""
    fields = {
        "/users": ["name", "email", "phone"],
        "/users/me": ["name", "phone"],
        "/users/{userId}": ["name", "email", "phone"],
        "/users/{userId}/avatar": ["contentType"],
        "/users/me/email-verification": ["code"],
    }.get(path, ["name"])  # the sign-in actions take no body: any is refused
    valid = {
        "name": '"Ada"',
        "email": '"ada@example.com"',
        "phone": '"+14155550123"',
        "contentType": '"image/png"',
        "code": '"123456"',
    }
    out = []
    for field in fields:
        parts = [f'"{name}": {LONE_SURROGATE if name == field else valid[name]}' for name in fields]
        out.append("{" + ", ".join(parts) + "}")
    out.append('{"name": "Ada", ' + LONE_SURROGATE + ': "x"}')
    return out


# Every route that reads a JSON body (DELETE and the GETs read none).
WITH_BODY = [(path, method) for path, method in declared(protected=True) if method in {"POST", "PUT"}]


def test_every_route_with_a_body_is_covered() -> None:
    assert {path for path, _ in WITH_BODY} == {
        "/users",
        "/users/me",
        "/users/{userId}",
        "/users/{userId}/avatar",
        "/users/imports",
        "/users/exports",
        "/users/me/email-verification",
        "/users/{userId}/invitation",
        "/users/{userId}/password-reset",
        "/users/{userId}/sign-out",
    }


@pytest.mark.parametrize(("path", "method"), WITH_BODY)
@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "idempotency-key"])
def test_a_lone_surrogate_anywhere_is_400_and_changes_nothing(
    api: Api, ddb: Any, path: str, method: str, keyed: bool
) -> None:
    user = create(api)
    assert api.request("PUT", "/users/me", MEMBER, {"name": "Mia"}).status_code == 201
    before = table(ddb)
    target = concrete(path, user["userId"])
    for number, raw in enumerate(bodies_with_a_lone_surrogate(path)):
        headers = {"Content-Type": "application/json"}
        if keyed:
            headers["Idempotency-Key"] = f"surrogate-{number}"
        response = api.request(method, target, ADMIN, raw=raw, headers=headers)
        body = assert_error(response, 400)
        assert "not valid Unicode" in body["error"]
    assert table(ddb) == before


def test_a_lone_surrogate_in_a_profile_body_is_400(api: Api, ddb: Any) -> None:
    before = table(ddb)
    response = api.request(
        "PUT", "/users/me", MEMBER, raw='{"name": ' + LONE_SURROGATE + "}", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400)
    assert table(ddb) == before
    assert_error(api.request("GET", "/users/me", MEMBER), 404)
    assert MEMBER_SUB not in {u["userId"] for u in all_users(api)}


def test_a_surrogate_pair_is_a_character_and_is_accepted(api: Api) -> None:
    response = api.request(
        "POST",
        "/users",
        ADMIN,
        raw='{"name": "Ada \\ud83d\\ude00", "email": "ada@example.com"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert response.json_body["user"]["name"] == "Ada \U0001f600"


@pytest.mark.parametrize(
    "email",
    ["<img/src=x/onerror=alert(1)>@example.com", '"quoted"@example.com', "a b@example.com", "ann,bob@example.com"],
)
def test_an_address_with_rfc_5322_specials_is_refused_and_nothing_is_stored(api: Api, ddb: Any, email: str) -> None:
    before = table(ddb)
    body = assert_error(api.request("POST", "/users", ADMIN, {"name": "X", "email": email}), 400)
    assert body["details"] == [{"field": "email", "message": "must be a valid email address"}]
    assert table(ddb) == before


def test_nfc_and_nfd_spellings_of_one_address_are_one_answer(api: Api) -> None:
    for spelling in ("jos\u00e9@example.com", "jose\u0301@example.com"):
        body = assert_error(api.request("POST", "/users", ADMIN, {"name": "J", "email": spelling}), 400)
        assert body["details"][0]["message"].startswith("must be ASCII")


def test_the_kelvin_sign_cannot_reserve_or_block_another_address(api: Api) -> None:
    kate = create(api, email="kate@example.com")
    # Written with the Kelvin sign, it is Kate's own address: refused as taken, and stored nowhere.
    assert_error(api.request("POST", "/users", ADMIN, {"name": "K", "email": "\u212aATE@example.com"}), 409)
    assert [u["email"] for u in all_users(api)] == [kate["email"]]


# The invisible names: only format characters, or a bidi embedding, override or isolate
# inside. The rule itself, over generated strings: tests/unit/test_name_rule.py.
INVISIBLE_NAMES = ["\u200b", "\u2060", "\ufeff", "\u200b\u2060\ufeff"] + [
    f"Ada{chr(code)}Lovelace" for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
]


@pytest.mark.parametrize(
    ("method", "path", "token", "field"),
    [
        ("POST", "/users", ADMIN, "name"),
        ("PUT", "/users/{userId}", ADMIN, "name"),
        ("PUT", "/users/me", MEMBER, "name"),
        ("POST", "/users", ADMIN, "email"),
        ("PUT", "/users/{userId}", ADMIN, "email"),
        ("POST", "/users", ADMIN, "phone"),
        ("PUT", "/users/me", MEMBER, "phone"),
    ],
)
def test_invisible_and_direction_characters_are_a_400_naming_the_field_on_every_route_and_change_nothing(
    api: Api, ddb: Any, method: str, path: str, token: str, field: str
) -> None:
    user = create(api)
    assert api.request("PUT", "/users/me", MEMBER, {"name": "Mia"}).status_code == 201
    before = table(ddb)
    valid = {"name": "Ada", "email": "ada@example.com", "phone": "+14155550123"}
    values = INVISIBLE_NAMES if field == "name" else [valid[field][:3] + "\u202e" + valid[field][3:], "\u200b"]
    for value in values:
        body = {"email": "new@example.com", "name": "Ada"} if path == "/users" else {}
        response = api.request(method, concrete(path, user["userId"]), token, {**body, field: value})
        details = assert_error(response, 400)["details"]
        assert [detail["field"] for detail in details] == [field], (value, details)
        assert "invisible" in details[0]["message"] or "visible character" in details[0]["message"]
    assert table(ddb) == before
