"""The local stack's bulk jobs: the job queue on the emulator, delivered to the app's worker as
Lambda's event source mapping would deliver it.

`chalice local` runs no event sources, so threads of the local stack (as many as the deployed
mapping's MaximumConcurrency) receive the queue's messages and call the very handler
`@app.on_sqs_message` declares, one message per call with Lambda's record shape (messageId,
receiptHandle, body, attributes with ApproximateReceiveCount, eventSourceARN). A handled message is
deleted; one whose handler raised is made visible again after RETRY_AFTER_S, and after
MAX_RECEIVES deliveries the queue's redrive policy moves it to the dead-letter queue, as deployed.

The bucket notifies the queue of every new object under imports/ (moto sends S3 event
notifications to SQS as S3 does), so an import starts when its file lands, as deployed.
`python -m devstack worker` runs the same threads in a process of their own (the bulk bench kills
one mid-import).
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.job_store import create_jobs_table_kwargs
from chalicelib.adapters.table_schema import time_to_live_kwargs
from chalicelib.domain.jobs import IMPORT_PREFIX, MAX_RECEIVES
from chalicelib.domain.pacing import WORKER_MAX_CONCURRENCY
from devstack.polling import poll_until_stopped, woken_by

if TYPE_CHECKING:
    from devstack.resources import Clients

log = logging.getLogger("devstack.jobs")

POLL_INTERVAL_S = 0.2
# With a wake-up (the local stack: the emulator sets it as the queue takes a message), an idle
# worker asks this often instead (devstack/polling.py): a message delayed or handed back
# (RETRY_AFTER_S) becomes visible without a send, so it waits at most this long.
IDLE_RECEIVE_S = 1.0
# Longer than the worker's timeout (120 s), so a message being handled is never handed to a second
# worker; one that failed is retried after RETRY_AFTER_S instead of waiting it out.
VISIBILITY_TIMEOUT_S = 130
RETRY_AFTER_S = 2
MAX_RUNTIME_MS = 120_000
STOP_TIMEOUT_S = 2.0
EMULATOR_ACCOUNT = "123456789012"

Handler = Callable[[dict[str, Any], Any], Any]


def queue_arn(region: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{EMULATOR_ACCOUNT}:{name}"


def create_job_resources(
    endpoint: str,
    region: str,
    jobs_table: str,
    queue_name: str,
    bucket: str,
    clients: Clients | None = None,
) -> tuple[str, str]:
    """The jobs table (TTL on), the queue with its dead-letter queue and redrive policy, and the
    bucket's notification of new import files to the queue; (queue URL, dead-letter queue URL).
    `clients`: the emulator's clients to do it with (devstack.resources.emulator_clients)."""
    from devstack.resources import emulator_clients

    clients = clients or emulator_clients(endpoint, region)
    dynamodb = clients("dynamodb")
    dynamodb.create_table(**create_jobs_table_kwargs(jobs_table))
    dynamodb.update_time_to_live(**time_to_live_kwargs(jobs_table))
    sqs = clients("sqs")
    dead_letters = sqs.create_queue(QueueName=f"{queue_name}-dlq")["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(region, f"{queue_name}-dlq"), "maxReceiveCount": str(MAX_RECEIVES)}
    url = sqs.create_queue(
        QueueName=queue_name,
        Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    notification = {
        "QueueConfigurations": [
            {
                "Id": "import-files",
                "QueueArn": queue_arn(region, queue_name),
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": IMPORT_PREFIX}]}},
            }
        ]
    }
    clients("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notification)
    return str(url), str(dead_letters)


def sqs_handler(app: Any) -> tuple[Handler, str, int]:
    """The handler the app declares with @app.on_sqs_message (its name and memory too)."""
    from chalice.app import SQSEventConfig  # type: ignore[attr-defined]

    (source,) = [s for s in app.event_sources if isinstance(s, SQSEventConfig)]
    module, _, name = source.handler_string.rpartition(".")
    return getattr(importlib.import_module(module), name), source.name, 512


def lambda_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    """A ReceiveMessage message as Lambda's SQS event source mapping passes it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


class JobPoller:
    """Threads that each take one message at a time and hand it to `handler`."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        arn: str,
        region: str,
        handler: Handler,
        workers: int = 1,
        wake: threading.Event | None = None,
    ):
        self._client = client
        self._wake = wake
        self._url = queue_url
        self._arn = arn
        self._region = region
        self._handler = handler
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"job-worker-{n}", daemon=True) for n in range(workers)
        ]
        self.handled = 0
        self.failed = 0
        self._lock = threading.Lock()

    def poll_once(self) -> bool:
        """Handle one message if there is one; whether there was."""
        from chalice.local import LambdaContext

        found = self._client.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=1, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not found:
            return False
        message = found[0]
        context = LambdaContext("bulk_jobs", memory_size=512, max_runtime_ms=MAX_RUNTIME_MS)
        try:
            self._handler({"Records": [lambda_record(message, self._arn, self._region)]}, context)
        except Exception:
            log.exception("the bulk jobs worker raised: the message is handed over again in %d s", RETRY_AFTER_S)
            with self._lock:
                self.failed += 1
            self._client.change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=RETRY_AFTER_S
            )
            return True
        self._client.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        with self._lock:
            self.handled += 1
        return True

    def _run(self) -> None:
        poll_until_stopped(self.poll_once, self._stop, self._wake, POLL_INTERVAL_S, IDLE_RECEIVE_S, log)

    def start(self) -> JobPoller:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._wake is not None:
            self._wake.set()
        for thread in self._threads:
            thread.join(timeout=STOP_TIMEOUT_S)


def poller(
    app: Any,
    endpoint: str,
    region: str,
    queue_url: str,
    queue_name: str,
    workers: int,
    wake: threading.Event | None = None,
    clients: Clients | None = None,
) -> JobPoller:
    """`wake`: set when the queue takes a message (`wake_on_message`, when the emulator runs in this
    process); without it the workers ask every POLL_INTERVAL_S. `clients`: as create_job_resources."""
    from devstack.resources import emulator_clients

    handler, _, _ = sqs_handler(app)
    client = (clients or emulator_clients(endpoint, region))("sqs")
    return JobPoller(client, queue_url, queue_arn(region, queue_name), region, handler, workers, wake)


def wake_on_message(region: str, queue_name: str) -> threading.Event:
    """An event the emulator running in this process sets whenever the queue takes a message."""
    from moto.sqs.models import sqs_backends

    return woken_by(sqs_backends[EMULATOR_ACCOUNT][region].queues[queue_name], "add_message")


def start(
    app: Any,
    endpoint: str,
    region: str,
    stage_env: dict[str, str],
    bucket: str,
    run_worker: bool,
    clients: Clients | None = None,
) -> Any:
    """Create the jobs' resources, tell the app where its queue is, and (unless the worker runs in
    a process of its own) start WORKER_MAX_CONCURRENCY worker threads; the poller or None.
    `clients`: as create_job_resources."""
    import os

    from devstack.resources import emulator_clients

    clients = clients or emulator_clients(endpoint, region)
    queue_name = stage_env["JOBS_QUEUE"]
    url, dead_letters = create_job_resources(
        endpoint, region, stage_env["JOBS_TABLE_NAME"], queue_name, bucket, clients
    )
    os.environ["JOBS_QUEUE_URL"] = url
    os.environ["JOBS_DEAD_LETTER_QUEUE_URL"] = dead_letters
    if not run_worker:
        return None
    wake = wake_on_message(region, queue_name)  # the emulator runs in this process (devstack/__main__.py)
    return poller(app, endpoint, region, url, queue_name, WORKER_MAX_CONCURRENCY, wake, clients).start()
