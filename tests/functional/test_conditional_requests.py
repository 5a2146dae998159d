"""ETag, If-None-Match (304) and If-Match (412) through the whole pipeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.conftest import Api
from tests.functional.test_users_api import ADMIN, MEMBER, MEMBER_SUB, assert_error, create
from tests.support.counting import counting


@pytest.fixture(autouse=True)
def member_sign_in(sign_in: Callable[..., str]) -> None:
    """The member's sign-in, made outside the API: their first PUT /users/me takes its email."""
    sign_in(MEMBER_SUB, "member@example.com")


def etag_of(user: dict[str, Any]) -> str:
    return f'"{user["version"]}-{user["createdAt"]}"'


def test_reads_and_writes_carry_the_etag_of_the_version_they_return(api: Api) -> None:
    created = api.request("POST", "/users", ADMIN, {"name": "Ada", "email": "ada@example.com"})
    user = created.json_body["user"]
    assert created.headers["ETag"] == etag_of(user)
    read = api.request("GET", f"/users/{user['userId']}", ADMIN)
    assert read.headers["ETag"] == etag_of(user)
    updated = api.request("PUT", f"/users/{user['userId']}", ADMIN, {"name": "Bo"})
    assert updated.headers["ETag"] == etag_of(updated.json_body["user"]) != etag_of(user)
    profile = api.request("PUT", "/users/me", MEMBER, {"name": "Mo"})
    assert profile.status_code == 201
    assert profile.headers["ETag"] == etag_of(profile.json_body["user"])
    assert api.request("GET", "/users/me", MEMBER).headers["ETag"] == profile.headers["ETag"]


@pytest.mark.parametrize("path", ["/users/{id}", "/users/me"])
def test_if_none_match_with_the_current_etag_is_304_without_a_body(api: Api, path: str) -> None:
    api.request("PUT", "/users/me", MEMBER, {"name": "Mo"})
    url = path.format(id=MEMBER_SUB)
    tag = api.request("GET", url, MEMBER).headers["ETag"]
    response = api.request("GET", url, MEMBER, headers={"If-None-Match": tag})
    assert response.status_code == 304
    assert response.body == b""
    assert response.headers["ETag"] == tag
    assert response.headers["Cache-Control"] == "private, no-store"
    api.request("PUT", "/users/me", MEMBER, {"name": "Changed"})
    again = api.request("GET", url, MEMBER, headers={"If-None-Match": tag})
    assert again.status_code == 200
    assert again.json_body["name"] == "Changed"


def test_if_none_match_never_bypasses_access_rules(api: Api) -> None:
    user = create(api)
    response = api.request("GET", f"/users/{user['userId']}", MEMBER, headers={"If-None-Match": "*"})
    assert_error(response, 403)


def test_put_with_the_current_if_match_applies_and_a_stale_one_is_412(api: Api) -> None:
    user = create(api)
    url = f"/users/{user['userId']}"
    first = api.request("PUT", url, ADMIN, {"name": "Bo"}, headers={"If-Match": etag_of(user)})
    assert first.status_code == 200, first.body
    stale = api.request("PUT", url, ADMIN, {"name": "Cy"}, headers={"If-Match": etag_of(user)})
    assert_error(stale, 412)
    assert api.request("GET", url, ADMIN).json_body["name"] == "Bo"


def test_a_stale_email_change_is_412_and_reserves_nothing(api: Api) -> None:
    user = create(api)
    url = f"/users/{user['userId']}"
    api.request("PUT", url, ADMIN, {"name": "Bo"})
    stale = api.request("PUT", url, ADMIN, {"email": "new@example.com"}, headers={"If-Match": etag_of(user)})
    assert_error(stale, 412)
    assert create(api, email="new@example.com")["email"] == "new@example.com"  # still free


def test_delete_with_a_stale_if_match_is_412_and_a_current_one_deletes(api: Api) -> None:
    user = create(api)
    url = f"/users/{user['userId']}"
    current = api.request("PUT", url, ADMIN, {"name": "Bo"}).json_body["user"]
    assert_error(api.request("DELETE", url, ADMIN, headers={"If-Match": etag_of(user)}), 412)
    assert api.request("GET", url, ADMIN).status_code == 200
    assert api.request("DELETE", url, ADMIN, headers={"If-Match": etag_of(current)}).status_code == 200
    assert_error(api.request("GET", url, ADMIN), 404)


def test_a_stale_if_match_costs_one_request_and_no_read(api: Api, ddb: Any) -> None:
    user = create(api)
    api.request("PUT", f"/users/{user['userId']}", ADMIN, {"name": "Bo"})
    with counting(ddb) as calls:
        response = api.request(
            "PUT", f"/users/{user['userId']}", ADMIN, {"name": "Cy"}, headers={"If-Match": etag_of(user)}
        )
    assert_error(response, 412)
    assert dict(calls.calls) == {"UpdateItem": 1}


def test_profile_put_with_if_match_never_creates(api: Api) -> None:
    response = api.request("PUT", "/users/me", MEMBER, {"name": "Mo"}, headers={"If-Match": '"1-2024"'})
    assert_error(response, 412)
    assert_error(api.request("GET", "/users/me", MEMBER), 404)


@pytest.mark.parametrize(("header", "status"), [("*", 200), ('W/"1-x"', 412), ("not-a-tag", 400)])
def test_if_match_star_weak_and_malformed(api: Api, header: str, status: int) -> None:
    user = create(api)
    response = api.request("PUT", f"/users/{user['userId']}", ADMIN, {"name": "Bo"}, headers={"If-Match": header})
    assert response.status_code == status, response.body


# --- RFC 9110: If-Match: * and If-None-Match on writes ----------------------------------------


def test_profile_put_with_if_match_star_never_creates(api: Api, ddb: Any) -> None:
    response = api.request("PUT", "/users/me", MEMBER, {"name": "Mo"}, headers={"If-Match": "*"})
    assert_error(response, 412)
    assert_error(api.request("GET", "/users/me", MEMBER), 404)
    # Once the profile exists, `*` matches it.
    assert api.request("PUT", "/users/me", MEMBER, {"name": "Mo"}).status_code == 201
    assert api.request("PUT", "/users/me", MEMBER, {"name": "Mo B."}, headers={"If-Match": "*"}).status_code == 200


def test_profile_put_with_if_none_match_star_only_creates(api: Api) -> None:
    first = api.request("PUT", "/users/me", MEMBER, {"name": "Mo"}, headers={"If-None-Match": "*"})
    assert first.status_code == 201, first.body
    again = api.request("PUT", "/users/me", MEMBER, {"name": "Changed"}, headers={"If-None-Match": "*"})
    assert_error(again, 412)
    assert api.request("GET", "/users/me", MEMBER).json_body["name"] == "Mo"


@pytest.mark.parametrize("path", ["/users/{id}", "/users/me"])
def test_put_with_if_none_match_naming_the_current_etag_is_412_and_changes_nothing(api: Api, path: str) -> None:
    if path == "/users/me":
        user = api.request("PUT", "/users/me", MEMBER, {"name": "Mo"}).json_body["user"]
        token, target = MEMBER, "/users/me"
    else:
        user, token = create(api), ADMIN
        target = f"/users/{user['userId']}"
    current = etag_of(user)
    for header in (current, f"W/{current}", f'"9-x", {current}'):
        assert_error(api.request("PUT", target, token, {"name": "Bo"}, headers={"If-None-Match": header}), 412)
    assert api.request("GET", target, token).json_body["version"] == 1
    # A tag of another version does not match: the write applies.
    stale = api.request("PUT", target, token, {"name": "Bo"}, headers={"If-None-Match": '"9-x"'})
    assert stale.status_code == 200 and stale.json_body["user"]["version"] == 2


def test_put_with_if_none_match_star_is_412_for_an_existing_user_and_404_for_a_missing_one(api: Api) -> None:
    user = create(api)
    assert_error(
        api.request("PUT", f"/users/{user['userId']}", ADMIN, {"name": "Bo"}, headers={"If-None-Match": "*"}), 412
    )
    missing = "00000000-0000-4000-8000-000000000000"
    assert_error(api.request("PUT", f"/users/{missing}", ADMIN, {"name": "Bo"}, headers={"If-None-Match": "*"}), 404)


def test_delete_honours_if_none_match(api: Api) -> None:
    user = create(api)
    target = f"/users/{user['userId']}"
    for header in (etag_of(user), "*"):
        assert_error(api.request("DELETE", target, ADMIN, headers={"If-None-Match": header}), 412)
    assert api.request("GET", target, ADMIN).status_code == 200
    assert api.request("DELETE", target, ADMIN, headers={"If-None-Match": '"7-x"'}).status_code == 200
    assert_error(api.request("GET", target, ADMIN), 404)


def test_a_malformed_if_none_match_on_a_write_is_400(api: Api) -> None:
    user = create(api)
    body = assert_error(
        api.request("PUT", f"/users/{user['userId']}", ADMIN, {"name": "Bo"}, headers={"If-None-Match": "nope"}), 400
    )
    assert body["details"][0]["field"] == "If-None-Match"
