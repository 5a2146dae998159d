"""The avatar store against a stubbed S3 client (no network), and the content-type parser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import CredentialRetrievalError
from botocore.stub import Stubber

from chalicelib.adapters import aws
from chalicelib.adapters.avatars import AvatarStore, avatar_key
from chalicelib.config import ConfigurationError
from chalicelib.domain.avatars import CONTENT_TYPES, DOWNLOAD_EXPIRES_S, MAX_BYTES, UPLOAD_EXPIRES_S
from chalicelib.domain.errors import AvatarNotFound, ServiceUnavailable, ValidationError
from chalicelib.web.inputs import parse_avatar_content_type
from tests.support.presigned import exact_conditions, list_conditions, policy_expiry, post_policy, query

BUCKET = "users-api-unit-avatars"
USER = "4f1c2a9e-0000-4000-8000-000000000001"


# One session for every client here: a new one loads S3's service model again (a tenth of a second).
_SESSION = boto3.session.Session()


def s3_client(monkeypatch: pytest.MonkeyPatch, endpoint: str | None = None) -> Any:
    """A client configured as chalicelib.adapters.aws configures it, with fixed fake credentials."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    else:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return _SESSION.client(
        "s3",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url=endpoint,
        config=Config(**aws._options("s3")),
    )


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Any:
    return s3_client(monkeypatch)


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


# --- content type ---------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_each_image_type_is_accepted(content_type: str) -> None:
    assert parse_avatar_content_type({"contentType": content_type}) == content_type


@pytest.mark.parametrize(
    "value",
    ["image/gif", "image/svg+xml", "text/html", "IMAGE/PNG", "image/png ", "image/png; charset=x", "", 1, None, []],
)
def test_other_content_types_are_refused_with_details(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_avatar_content_type({"contentType": value})
    assert caught.value.details == [{"field": "contentType", "message": "must be one of " + ", ".join(CONTENT_TYPES)}]


def test_missing_content_type_and_unknown_fields_are_all_reported() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_avatar_content_type({"key": "avatars/other/avatar", "size": 1})
    assert caught.value.details == [
        {"field": "key", "message": "unknown field"},
        {"field": "size", "message": "unknown field"},
        {"field": "contentType", "message": "is required"},
    ]


def test_an_unknown_field_beside_a_valid_type_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_avatar_content_type({"contentType": "image/png", "acl": "public-read"})
    assert caught.value.details == [{"field": "acl", "message": "unknown field"}]


# --- client configuration -------------------------------------------------------------------


def test_presigned_urls_are_sigv4_on_the_buckets_regional_virtual_host(client: Any) -> None:
    upload = AvatarStore(BUCKET, client).presigned_upload(USER, "image/png")
    assert upload.url == f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/"
    assert upload.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert upload.fields["x-amz-credential"].endswith("/eu-west-1/s3/aws4_request")


def test_an_emulator_endpoint_gets_path_style_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    client = s3_client(monkeypatch, "http://127.0.0.1:5000")
    assert AvatarStore(BUCKET, client).presigned_upload(USER, "image/png").url == f"http://127.0.0.1:5000/{BUCKET}"


def test_s3_options_apply_to_s3_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    assert aws._options("dynamodb") == {}
    assert aws._options("s3") == {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
    }
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://localhost:4566")
    assert aws._options("s3")["s3"]["addressing_style"] == "path"


def test_a_bucket_is_required_where_avatars_are_used() -> None:
    store = AvatarStore("", client=object())  # wiring it needs none: routes without avatars never do
    for use in (lambda: store.presigned_upload("u1", "image/png"), lambda: store.download_url("u1")):
        with pytest.raises(ConfigurationError, match="AVATAR_BUCKET"):
            use()
    with pytest.raises(ConfigurationError, match="AVATAR_BUCKET"):
        store.delete("u1")


# --- upload form ----------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_the_upload_policy_pins_type_size_key_and_expiry(client: Any, content_type: str) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    upload = AvatarStore(BUCKET, client).presigned_upload(USER, content_type)
    policy = post_policy(upload.fields)
    assert upload.key == avatar_key(USER) == f"avatars/{USER}/avatar"
    assert upload.fields["key"] == upload.key
    assert upload.fields["Content-Type"] == content_type
    exact = exact_conditions(policy)
    assert exact["bucket"] == BUCKET
    assert exact["key"] == upload.key
    assert exact["Content-Type"] == content_type
    assert list_conditions(policy)["content-length-range"] == [1, MAX_BYTES] == [1, 5 * 1024 * 1024]
    assert "starts-with" not in list_conditions(policy)  # no field may vary
    expiry = policy_expiry(policy)
    assert before + timedelta(seconds=UPLOAD_EXPIRES_S) <= expiry <= datetime.now(UTC) + timedelta(minutes=15)


def test_a_presign_whose_credentials_cannot_be_fetched_is_unavailable(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_credentials(**_: Any) -> Any:
        raise CredentialRetrievalError(provider="container-role", error_msg="timeout")

    monkeypatch.setattr(client, "generate_presigned_post", no_credentials)
    with pytest.raises(ServiceUnavailable):
        AvatarStore(BUCKET, client).presigned_upload(USER, "image/png")


# --- download URL ---------------------------------------------------------------------------


def test_download_url_after_one_head_object(client: Any, stub: Stubber) -> None:
    stub.add_response(
        "head_object", {"ContentLength": 3, "ContentType": "image/png"}, {"Bucket": BUCKET, "Key": avatar_key(USER)}
    )
    url = AvatarStore(BUCKET, client).download_url(USER)
    assert url.startswith(f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/avatars/{USER}/avatar?")
    params = query(url)
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Expires"] == str(DOWNLOAD_EXPIRES_S) == "300"


@pytest.mark.parametrize(("code", "status"), [("404", 404), ("NoSuchKey", 404), ("403", 403)])
def test_no_object_is_avatar_not_found(client: Any, stub: Stubber, code: str, status: int) -> None:
    """403 too: without s3:ListBucket (the role has none) S3 answers 403 for a missing key."""
    stub.add_client_error("head_object", service_error_code=code, http_status_code=status)
    with pytest.raises(AvatarNotFound):
        AvatarStore(BUCKET, client).download_url(USER)


@pytest.mark.parametrize(("code", "status"), [("503", 503), ("SlowDown", 503), ("500", 500), ("InternalError", 500)])
def test_transient_s3_errors_are_unavailable(client: Any, stub: Stubber, code: str, status: int) -> None:
    stub.add_client_error("head_object", service_error_code=code, http_status_code=status)
    with pytest.raises(ServiceUnavailable):
        AvatarStore(BUCKET, client).download_url(USER)


def test_other_s3_errors_propagate_to_the_generic_500(client: Any, stub: Stubber) -> None:
    from botocore.exceptions import ClientError

    stub.add_client_error("head_object", service_error_code="400", http_status_code=400)
    with pytest.raises(ClientError):
        AvatarStore(BUCKET, client).download_url(USER)


# --- delete ---------------------------------------------------------------------------------


def test_delete_is_one_delete_object_of_the_users_key(client: Any, stub: Stubber) -> None:
    stub.add_response("delete_object", {}, {"Bucket": BUCKET, "Key": avatar_key(USER)})
    AvatarStore(BUCKET, client).delete(USER)


def test_delete_when_s3_is_down_is_unavailable(client: Any, stub: Stubber) -> None:
    stub.add_client_error("delete_object", service_error_code="SlowDown", http_status_code=503)
    with pytest.raises(ServiceUnavailable):
        AvatarStore(BUCKET, client).delete(USER)


def test_the_client_is_created_on_first_use_not_before(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    created: list[str] = []

    def fake_client(service: str) -> Any:
        created.append(service)
        return client

    monkeypatch.setattr(aws, "client", fake_client)
    store = AvatarStore(BUCKET)
    assert created == []
    store.presigned_upload(USER, "image/webp")
    store.presigned_upload(USER, "image/webp")
    assert created == ["s3"]
