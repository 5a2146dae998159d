"""The bulk jobs queue on SQS: messages to the worker (app.py's `bulk_jobs`).

A send of several messages is one SendMessageBatch per 10 messages (and at most 200 KiB, inside
SQS's 256 KiB per request); entries SQS refuses are sent once more, then ServiceUnavailable, so
the caller retries the whole send. Sending a message twice is harmless: every kind of work a
message asks for is safe to repeat (chalicelib/domain/import_rows.py, exports.py).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters import aws
from chalicelib.config import ConfigurationError
from chalicelib.domain.errors import ServiceUnavailable

MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 200 * 1024


def _groups(bodies: list[str]) -> list[list[str]]:
    groups: list[list[str]] = []
    size = 0
    for body in bodies:
        length = len(body.encode())
        if not groups or len(groups[-1]) >= MAX_ENTRIES or size + length > MAX_REQUEST_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(body)
        size += length
    return groups


class SqsJobQueue(aws.ClientHolder):
    service = "sqs"

    def __init__(self, queue_url: str, client: Any | None = None):
        if not queue_url:
            raise ConfigurationError("environment variable JOBS_QUEUE_URL is required for bulk jobs")
        super().__init__(client)
        self._url = queue_url

    def send(self, messages: list[dict[str, Any]], delay_s: int = 0) -> None:
        bodies = [json.dumps(message, ensure_ascii=False, separators=(",", ":")) for message in messages]
        for group in _groups(bodies):
            entries: list[dict[str, Any]] = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(group)]
            if delay_s:
                entries = [{**entry, "DelaySeconds": delay_s} for entry in entries]
            for _ in range(2):
                result = self._call("send_message_batch", QueueUrl=self._url, Entries=entries)
                failed = {str(failure["Id"]) for failure in result.get("Failed", [])}
                entries = [entry for entry in entries if entry["Id"] in failed]
                if not entries:
                    break
            else:
                raise ServiceUnavailable()
