"""The avatar store on moto's S3, with the client chalicelib.adapters.aws builds: a browser-style upload
through the presigned POST, a download through the presigned GET, replacement and deletion.

moto does not enforce POST policy conditions (tests/unit and tests/functional decode the policy
instead); it does store what the form sends, which is what these tests read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from chalicelib.adapters import aws
from chalicelib.adapters.avatars import AvatarStore, avatar_key
from chalicelib.domain.errors import AvatarNotFound
from tests.support.presigned import tiny_png

BUCKET = "users-api-it-avatars"
USER = "0b8a61c2-4f4e-4a43-9d1b-7f0f7f3e2a10"
OTHER = "5d1e2c3b-1111-4222-8333-944455566677"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        aws.reset_clients()
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield aws.client("s3")
        aws.reset_clients()


@pytest.fixture
def store(s3: Any) -> AvatarStore:
    return AvatarStore(BUCKET, s3)


def upload(store: AvatarStore, user_id: str, body: bytes, content_type: str = "image/png") -> requests.Response:
    form = store.presigned_upload(user_id, content_type)
    # The fields first, the file last: S3 ignores fields after the file.
    return requests.post(form.url, data=form.fields, files={"file": ("avatar", body, content_type)}, timeout=10)


def test_upload_then_download_returns_the_same_bytes(store: AvatarStore, s3: Any) -> None:
    png = tiny_png()
    assert upload(store, USER, png).status_code == 204
    head = s3.head_object(Bucket=BUCKET, Key=avatar_key(USER))
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == len(png)
    downloaded = requests.get(store.download_url(USER), timeout=10)
    assert downloaded.status_code == 200
    assert downloaded.content == png


def test_no_avatar_is_avatar_not_found(store: AvatarStore) -> None:
    with pytest.raises(AvatarNotFound):
        store.download_url(USER)


def test_a_new_upload_replaces_the_old_one(store: AvatarStore, s3: Any) -> None:
    upload(store, USER, b"first")
    upload(store, USER, tiny_png(), "image/webp")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"avatars/{USER}/")["Contents"]
    assert [item["Key"] for item in listed] == [avatar_key(USER)]
    assert requests.get(store.download_url(USER), timeout=10).content == tiny_png()
    assert s3.head_object(Bucket=BUCKET, Key=avatar_key(USER))["ContentType"] == "image/webp"


def test_delete_removes_only_that_users_avatar_and_is_idempotent(store: AvatarStore, s3: Any) -> None:
    upload(store, USER, tiny_png())
    upload(store, OTHER, b"other")
    store.delete(USER)
    with pytest.raises(AvatarNotFound):
        store.download_url(USER)
    store.delete(USER)  # nothing left: still no error
    store.delete("never-uploaded")
    assert requests.get(store.download_url(OTHER), timeout=10).content == b"other"
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [avatar_key(OTHER)]
