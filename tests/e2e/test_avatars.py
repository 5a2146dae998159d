"""Avatars over real HTTP: the API hands out presigned URLs, and the file goes straight to the
embedded S3 and back, as a browser would send and fetch it.

The emulator's S3 does not enforce the POST policy (type, size, key, expiry); real S3 does, and
tests/functional/test_avatars.py asserts what each policy says.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from chalicelib.config import cors_allow_origins
from tests.e2e.conftest import Stack
from tests.support.local_api import call
from tests.support.presigned import tiny_png

TIMEOUT = 15


def new_user(stack: Stack, admin: str) -> str:
    response = call(stack, "POST", "/users", admin, {"name": "Ava", "email": f"{uuid.uuid4().hex[:10]}@example.com"})
    assert response.status_code == 201, response.text
    return str(response.json()["user"]["userId"])


def upload(form: dict[str, Any], body: bytes, content_type: str = "image/png") -> requests.Response:
    # multipart/form-data: every policy field first, the file last (S3 ignores fields after it).
    files = {"file": ("avatar.png", body, content_type)}
    return requests.post(form["uploadUrl"], data=form["fields"], files=files, timeout=TIMEOUT)


def test_upload_through_the_presigned_post_then_download_the_same_bytes(stack: Stack) -> None:
    admin = stack.token()
    user_id = new_user(stack, admin)
    assert call(stack, "GET", f"/users/{user_id}/avatar", admin).status_code == 404

    response = call(stack, "POST", f"/users/{user_id}/avatar", admin, {"contentType": "image/png"})
    assert response.status_code == 200, response.text
    form = response.json()
    assert form["fileKey"] == f"avatars/{user_id}/avatar"
    assert form["uploadUrl"] == f"{stack.info['aws_endpoint_url'].rstrip('/')}/{stack.info['bucket_name']}"
    png = tiny_png()
    posted = upload(form, png)
    assert posted.status_code == 204, posted.text

    download = call(stack, "GET", f"/users/{user_id}/avatar", admin)
    assert download.status_code == 200, download.text
    fetched = requests.get(download.json()["downloadUrl"], timeout=TIMEOUT)
    assert fetched.status_code == 200
    assert fetched.content == png
    assert fetched.headers["Content-Type"] == "image/png"


def test_a_member_uploads_their_own_avatar_but_cannot_touch_anyone_elses(stack: Stack) -> None:
    run = uuid.uuid4().hex[:8]
    mia = stack.add_user(f"mia-{run}@example.com", "Sup3r-secret-pass!")
    assert call(stack, "PUT", "/users/me", mia, {"name": "Mia"}).status_code == 200  # make user made it
    mia_id = call(stack, "GET", "/users/me", mia).json()["userId"]
    form = call(stack, "POST", f"/users/{mia_id}/avatar", mia, {"contentType": "image/webp"})
    assert form.status_code == 200, form.text
    assert upload(form.json(), b"RIFF-webp-ish", "image/webp").status_code == 204

    other_id = new_user(stack, stack.token())
    for path in (f"/users/{other_id}/avatar", f"/users/{uuid.uuid4()}/avatar"):
        assert call(stack, "POST", path, mia, {"contentType": "image/png"}).status_code == 403
        assert call(stack, "GET", path, mia).status_code == 403
    assert call(stack, "POST", f"/users/{mia_id}/avatar", mia, {"contentType": "image/gif"}).status_code == 400


def test_deleting_the_user_deletes_the_avatar(stack: Stack) -> None:
    """Needs UserService.delete_user to delete the avatar (the store's idempotent delete)."""
    admin = stack.token()
    user_id = new_user(stack, admin)
    form = call(stack, "POST", f"/users/{user_id}/avatar", admin, {"contentType": "image/png"}).json()
    assert upload(form, tiny_png()).status_code == 204
    bucket, key = stack.info["bucket_name"], form["fileKey"]
    assert stack.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] == len(tiny_png())

    assert call(stack, "DELETE", f"/users/{user_id}", admin).status_code == 200
    with pytest.raises(ClientError) as gone:
        stack.client("s3").head_object(Bucket=bucket, Key=key)
    assert gone.value.response["Error"]["Code"] == "404"
    assert call(stack, "GET", f"/users/{user_id}/avatar", admin).status_code == 404


def test_a_form_issued_before_the_delete_uploads_but_the_avatar_is_never_read_again(stack: Stack) -> None:
    """Form, delete, upload, read: the form outlives its user (15 minutes), the avatar must not."""
    admin = stack.token()
    user_id = new_user(stack, admin)
    form = call(stack, "POST", f"/users/{user_id}/avatar", admin, {"contentType": "image/png"}).json()
    assert call(stack, "DELETE", f"/users/{user_id}", admin).status_code == 200
    assert upload(form, tiny_png()).status_code == 204  # S3 still takes it: the form is valid
    read = call(stack, "GET", f"/users/{user_id}/avatar", admin)
    assert read.status_code == 404 and read.json() == {"error": "User not found"}
    assert "downloadUrl" not in read.text


def test_the_local_bucket_lets_the_app_origin_upload_from_a_browser(stack: Stack) -> None:
    (rule,) = stack.client("s3").get_bucket_cors(Bucket=stack.info["bucket_name"])["CORSRules"]
    assert rule["AllowedOrigins"] == list(cors_allow_origins({}))  # make run's origins: the default list
    assert sorted(rule["AllowedMethods"]) == ["GET", "POST"]
