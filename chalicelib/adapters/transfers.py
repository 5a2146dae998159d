"""Import and export files in S3: the avatars' bucket, under prefixes of their own.

- `imports/<jobId>.<csv|jsonl>`: a file to import, put by the API (a body of up to MAX_BODY_BYTES)
  or by the admin's client with a presigned POST whose policy pins that key, the file's media
  type and its size. Its arrival notifies the job queue (both templates), which starts the job.
  The worker deletes it once its rows are queued; the bucket expires what is left after a day.
- `exports/<jobId>.<csv|jsonl>`: an export, written as a multipart upload, read through a
  presigned GET; the bucket expires it JOB_RETENTION_DAYS after it was written, with its job.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.config import ConfigurationError
from chalicelib.domain.jobs import FileGone, Part, UploadForm

CHUNK_BYTES = 256 * 1024
# Answers of S3 for a key that is not there (without s3:ListBucket it says 403, not 404).
_ABSENT = frozenset({"NoSuchKey", "404", "403", "AccessDenied"})


class S3Transfers(aws.ClientHolder):
    service = "s3"

    def __init__(self, bucket: str, max_upload_bytes: int = 0, client: Any | None = None):
        if not bucket:
            raise ConfigurationError("environment variable AVATAR_BUCKET is required for bulk jobs")
        super().__init__(client)
        self._bucket = bucket
        self._max_upload_bytes = max_upload_bytes

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._call("put_object", Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    def import_form(self, key: str, content_type: str, expires_in: int) -> UploadForm:
        import time

        post = self._call(
            "generate_presigned_post",
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            # boto3 adds the bucket and exact-key conditions itself.
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, self._max_upload_bytes]],
            ExpiresIn=expires_in,
        )
        return UploadForm(
            url=str(post["url"]),
            fields=dict(post["fields"]),
            key=key,
            expires_at=int(time.time()) + expires_in,
            max_bytes=self._max_upload_bytes,
            content_type=content_type,
        )

    def read(self, key: str, offset: int = 0) -> Iterator[bytes]:
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if offset:
            kwargs["Range"] = f"bytes={offset}-"
        try:
            result = self._call("get_object", **kwargs)
        except ClientError as exc:
            code = aws.error_code(exc)
            if code == "InvalidRange":
                return iter(())  # the offset is the end of the file: nothing is left
            if code in _ABSENT:
                raise FileGone() from exc
            raise
        body = result["Body"]
        return iter(lambda: body.read(CHUNK_BYTES), b"")

    def delete(self, key: str) -> None:
        self._call("delete_object", Bucket=self._bucket, Key=key)

    def start_upload(self, key: str, content_type: str) -> str:
        result = self._call("create_multipart_upload", Bucket=self._bucket, Key=key, ContentType=content_type)
        return str(result["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        result = self._call(
            "upload_part", Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return str(result["ETag"])

    def complete_upload(self, key: str, upload_id: str, parts: tuple[Part, ...]) -> None:
        try:
            self._call(
                "complete_multipart_upload",
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]},
            )
        except ClientError as exc:
            # Completed already by a run whose answer was lost: the file is there.
            if aws.error_code(exc) != "NoSuchUpload" or not self._exists(key):
                raise

    def _exists(self, key: str) -> bool:
        try:
            self._call("head_object", Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if aws.error_code(exc) in _ABSENT:
                return False
            raise
        return True

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._call("abort_multipart_upload", Bucket=self._bucket, Key=key, UploadId=upload_id)

    def download_url(self, key: str, filename: str, expires_in: int) -> str:
        params = {
            "Bucket": self._bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        }
        return str(self._call("generate_presigned_url", ClientMethod="get_object", Params=params, ExpiresIn=expires_in))
