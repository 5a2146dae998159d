"""User avatars in S3 through presigned URLs: browsers upload and download directly, so no image
passes through API Gateway or Lambda (their payload limits, their cost).

Each user has one fixed key, `avatars/<userId>/avatar`, and the upload policy names it exactly:
a new upload replaces the old one, so nothing accumulates under a user; reading and deleting need
no listing (the role has no s3:ListBucket); and a form can write nowhere else, whatever its holder
does with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.adapters import aws
from chalicelib.config import ConfigurationError
from chalicelib.domain.avatars import DOWNLOAD_EXPIRES_S, MAX_BYTES, MIN_BYTES, UPLOAD_EXPIRES_S
from chalicelib.domain.errors import AvatarNotFound

KEY_PREFIX = "avatars/"

# HeadObject answers without a body, so its code is the bare status. Without s3:ListBucket (which
# the role does not have) S3 answers 403, not 404, for a key that does not exist.
_ABSENT_CODES = frozenset({"404", "NoSuchKey", "403", "AccessDenied"})


@dataclass(frozen=True)
class AvatarUpload:
    """A presigned POST: the form fields go first, the file last, to `url`."""

    url: str
    fields: dict[str, str]
    key: str


def avatar_key(user_id: str) -> str:
    return f"{KEY_PREFIX}{user_id}/avatar"


class AvatarStore(aws.ClientHolder):
    service = "s3"

    def __init__(self, bucket: str, client: Any | None = None):
        super().__init__(client)
        self._bucket_name = bucket

    @property
    def _bucket(self) -> str:
        # Checked where avatars are used, so that a stage or tool without avatars never needs the setting.
        if not self._bucket_name:
            raise ConfigurationError("environment variable AVATAR_BUCKET is required for avatars")
        return self._bucket_name

    def presigned_upload(self, user_id: str, content_type: str) -> AvatarUpload:
        """A form that can store one image of exactly `content_type`, 1 byte to 5 MiB, at the user's key."""
        key = avatar_key(user_id)
        post = self._call(
            "generate_presigned_post",
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            # boto3 adds the bucket and exact-key conditions itself.
            Conditions=[{"Content-Type": content_type}, ["content-length-range", MIN_BYTES, MAX_BYTES]],
            ExpiresIn=UPLOAD_EXPIRES_S,
        )
        return AvatarUpload(url=str(post["url"]), fields=dict(post["fields"]), key=key)

    def download_url(self, user_id: str) -> str:
        """A short-lived GET URL for the user's avatar; AvatarNotFound when none was uploaded."""
        from botocore.exceptions import ClientError

        key = avatar_key(user_id)
        try:
            self._call("head_object", Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if aws.error_code(exc) in _ABSENT_CODES:
                raise AvatarNotFound() from exc
            raise
        params = {"Bucket": self._bucket, "Key": key}
        return str(
            self._call("generate_presigned_url", ClientMethod="get_object", Params=params, ExpiresIn=DOWNLOAD_EXPIRES_S)
        )

    def delete(self, user_id: str) -> None:
        """Remove the user's avatar; no error when there is none (S3 deletes of a missing key succeed)."""
        self._call("delete_object", Bucket=self._bucket, Key=avatar_key(user_id))
