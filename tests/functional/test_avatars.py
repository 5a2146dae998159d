"""Avatar routes through the app's middleware and Chalice's test client, with DynamoDB and S3 on moto.

moto's S3 does not enforce POST policy conditions, so the policy each form carries is decoded
and asserted here; real S3 refuses an upload that breaks any of them.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse

from chalicelib.adapters import aws
from chalicelib.adapters.avatars import MAX_BYTES
from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.domain.models import AVATAR_CONTENT_TYPES
from tests.functional.conftest import BUCKET, Api
from tests.functional.test_users_api import ADMIN, MEMBER, MEMBER_SUB, OTHER, assert_error, create
from tests.support import tokens
from tests.support.presigned import exact_conditions, list_conditions, policy_expiry, post_policy, query, tiny_png

PNG = {"contentType": "image/png"}


@pytest.fixture(autouse=True)
def member_sign_in(sign_in: Callable[..., str]) -> None:
    """The member's sign-in, made outside the API: their first PUT /users/me takes its email."""
    sign_in(MEMBER_SUB, "member@example.com")


def avatar(user_id: str) -> str:
    return f"/users/{user_id}/avatar"


def key_of(user_id: str) -> str:
    return f"avatars/{user_id}/avatar"


@pytest.fixture
def member(api: Api) -> str:
    """The member's own record (PUT /users/me), so their avatar routes have a user."""
    assert api.request("PUT", "/users/me", MEMBER, {"name": "Mia"}).status_code == 201
    return MEMBER_SUB


@contextmanager
def calls() -> Iterator[Counter[str]]:
    """Every DynamoDB and S3 API call the app makes meanwhile (presigning is no call)."""
    seen: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    clients = [aws.client("dynamodb"), aws.client("s3")]
    for client in clients:
        client.meta.events.register("before-call", count)
    try:
        yield seen
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", count)


def put_object(user_id: str, body: bytes = b"\x89PNG...", content_type: str = "image/png") -> None:
    boto3.client("s3", region_name=tokens.REGION).put_object(
        Bucket=BUCKET, Key=key_of(user_id), Body=body, ContentType=content_type
    )


# --- upload form ----------------------------------------------------------------------------


def test_the_owner_gets_an_upload_form_for_their_own_key(api: Api, member: str) -> None:
    response = api.request("POST", avatar(member), MEMBER, PNG)
    assert response.status_code == 200, response.body
    body = response.json_body
    assert set(body) == {"uploadUrl", "fields", "fileKey"}
    assert body["fileKey"] == key_of(member)
    assert body["uploadUrl"] == f"https://{BUCKET}.s3.{tokens.REGION}.amazonaws.com/"
    assert body["fields"]["key"] == key_of(member)
    assert body["fields"]["Content-Type"] == "image/png"
    assert body["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert response.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("content_type", AVATAR_CONTENT_TYPES)
def test_the_policy_limits_type_size_key_and_lifetime(api: Api, member: str, content_type: str) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    fields = api.request("POST", avatar(member), MEMBER, {"contentType": content_type}).json_body["fields"]
    after = datetime.now(UTC)
    policy = post_policy(fields)
    exact = exact_conditions(policy)
    assert exact["bucket"] == BUCKET
    assert exact["key"] == key_of(member)  # exactly this key: no starts-with anywhere
    assert exact["Content-Type"] == content_type
    ranges = list_conditions(policy)
    assert ranges["content-length-range"] == [1, 5 * 1024 * 1024] == [1, MAX_BYTES]
    assert "starts-with" not in ranges
    assert before + timedelta(minutes=15) <= policy_expiry(policy) <= after + timedelta(minutes=15)


def test_an_admin_gets_a_form_for_any_user(api: Api) -> None:
    user = create(api)
    response = api.request("POST", avatar(user["userId"]), ADMIN, {"contentType": "image/webp"})
    assert response.status_code == 200
    assert response.json_body["fileKey"] == key_of(user["userId"])
    assert exact_conditions(post_policy(response.json_body["fields"]))["Content-Type"] == "image/webp"


def test_a_form_for_a_missing_user_is_404_after_one_get_item(api: Api) -> None:
    with calls() as seen:
        assert_error(api.request("POST", avatar(str(uuid.uuid4())), ADMIN, PNG), 404)
    assert seen == {"GetItem": 1}


def test_a_form_for_an_existing_user_is_one_get_item_and_no_s3_call(api: Api, member: str) -> None:
    with calls() as seen:
        assert api.request("POST", avatar(member), MEMBER, PNG).status_code == 200
    assert seen == {"GetItem": 1}


@pytest.mark.parametrize(
    "body",
    [
        {"contentType": "image/gif"},
        {"contentType": "image/svg+xml"},
        {"contentType": "text/html"},
        {"contentType": "IMAGE/PNG"},
        {"contentType": 1},
        {"contentType": None},
        {},
        {"contentType": "image/png", "key": "avatars/someone-else/avatar"},
        {"contentType": "image/png", "contentLength": 10**9},
    ],
)
def test_bad_content_types_and_unknown_fields_get_400_with_details(api: Api, member: str, body: Any) -> None:
    with calls() as seen:
        error = assert_error(api.request("POST", avatar(member), MEMBER, body), 400)
    assert error["details"] and all(set(d) == {"field", "message"} for d in error["details"])
    assert seen == {}  # refused before any read


def test_upload_request_bodies_follow_the_json_rules(api: Api, member: str) -> None:
    assert_error(api.request("POST", avatar(member), MEMBER), 400)
    assert_error(
        api.request("POST", avatar(member), MEMBER, raw="{", headers={"Content-Type": "application/json"}), 400
    )
    assert_error(
        api.request(
            "POST", avatar(member), MEMBER, raw="contentType=image/png", headers={"Content-Type": "text/plain"}
        ),
        415,
    )


# --- access ---------------------------------------------------------------------------------


def test_a_member_gets_403_for_anyone_elses_avatar_whether_or_not_they_exist(api: Api) -> None:
    user = create(api)
    put_object(user["userId"])
    api.request("GET", "/users/me", MEMBER)  # a warm caller: its revocation check is cached
    with calls() as seen:
        for user_id in (user["userId"], str(uuid.uuid4()), "not a valid id"):
            assert_error(api.request("POST", avatar(user_id), MEMBER, PNG), 403)
            assert_error(api.request("GET", avatar(user_id), MEMBER), 403)
    assert seen == {}  # decided from the token alone


def test_malformed_ids_are_404_for_admins(api: Api) -> None:
    for user_id in ("bad_id", "x" * 65):
        assert_error(api.request("POST", avatar(user_id), ADMIN, PNG), 404)
        assert_error(api.request("GET", avatar(user_id), ADMIN), 404)


def test_no_token_is_401(api: Api, member: str) -> None:
    assert_error(api.request("POST", avatar(member), None, PNG), 401)
    assert_error(api.request("GET", avatar(member), None), 401)
    assert_error(api.request("GET", avatar(member), OTHER + "x"), 401)


# --- download -------------------------------------------------------------------------------


def test_get_is_404_until_an_avatar_exists_then_a_short_lived_url(api: Api, member: str) -> None:
    with calls() as seen:
        error = assert_error(api.request("GET", avatar(member), MEMBER), 404)
    assert error["error"] == "No avatar uploaded for this user"
    assert seen == {"GetItem": 1, "HeadObject": 1}  # the user must exist, then its avatar
    put_object(member, b"image bytes")
    with calls() as seen:
        response = api.request("GET", avatar(member), MEMBER)
    assert seen == {"GetItem": 1, "HeadObject": 1}
    assert response.status_code == 200
    assert set(response.json_body) == {"downloadUrl"}
    url = response.json_body["downloadUrl"]
    assert url.startswith(f"https://{BUCKET}.s3.{tokens.REGION}.amazonaws.com/{key_of(member)}?")
    params = query(url)
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Expires"] == "300"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert requests.get(url, timeout=10).content == b"image bytes"


def test_an_upload_after_its_user_was_deleted_is_never_handed_out(api: Api) -> None:
    """A form outlives the user it was issued for (15 minutes): the avatar must not."""
    user = create(api)
    form = api.request("POST", avatar(user["userId"]), ADMIN, PNG).json_body
    assert api.request("DELETE", f"/users/{user['userId']}", ADMIN).status_code == 200
    upload = requests.post(form["uploadUrl"], data=form["fields"], files={"file": ("a.png", tiny_png())}, timeout=10)
    assert upload.status_code in (200, 204)  # S3 (here moto) takes it: the form is still valid
    error = assert_error(api.request("GET", avatar(user["userId"]), ADMIN), 404)
    assert error["error"] == "User not found"


def test_an_admin_reads_any_users_avatar(api: Api) -> None:
    user = create(api)
    assert_error(api.request("GET", avatar(user["userId"]), ADMIN), 404)
    put_object(user["userId"])
    assert api.request("GET", avatar(user["userId"]), ADMIN).status_code == 200


def test_upload_through_the_form_then_download_the_same_bytes(api: Api, member: str) -> None:
    form = api.request("POST", avatar(member), MEMBER, PNG).json_body
    posted = requests.post(
        form["uploadUrl"], data=form["fields"], files={"file": ("me.png", tiny_png(), "image/png")}, timeout=10
    )
    assert posted.status_code == 204
    url = api.request("GET", avatar(member), MEMBER).json_body["downloadUrl"]
    assert requests.get(url, timeout=10).content == tiny_png()


def test_s3_outage_is_a_clean_503(api: Api, member: str) -> None:
    def unavailable(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, 503, {}, _Empty())

    client = aws.client("s3")
    client.meta.events.register("before-send.s3.HeadObject", unavailable)
    try:
        response = api.request("GET", avatar(member), MEMBER)
    finally:
        client.meta.events.unregister("before-send.s3.HeadObject", unavailable)
    body = assert_error(response, 503)
    assert body == {"error": ServiceUnavailable.message}
    assert response.headers["Retry-After"]
    for leak in ("s3", "amazon", "slowdown", "bucket"):
        assert leak not in response.body.decode().lower()


class _Empty:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""
