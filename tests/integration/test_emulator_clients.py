"""The clients a local stack sets itself up and polls with (devstack.resources.emulator_clients):
one per service, made on first use, so that a start makes seven clients instead of 25."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from devstack import jobs, resources
from devstack.motoserver import MotoServer

REGION = "us-east-1"


def test_a_maker_gives_one_client_per_service_and_another_maker_clients_of_its_own() -> None:
    clients = resources.emulator_clients("http://127.0.0.1:9", REGION)  # making a client connects to nothing
    assert clients("dynamodb") is clients("dynamodb")
    assert clients("sqs") is not clients("dynamodb")
    assert clients("sqs").meta.service_model.service_name == "sqs"
    assert clients("dynamodb").meta.endpoint_url == "http://127.0.0.1:9"
    # A caller that hooks into its client (counting its calls, failing them) hooks into its own.
    assert resources.emulator_clients("http://127.0.0.1:9", REGION)("dynamodb") is not clients("dynamodb")


def test_the_stacks_setup_makes_each_services_client_once(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: Counter[str] = Counter()
    real = resources.emulator_client

    def counted(service: str, endpoint: str, region: str, **config: Any) -> Any:
        made[service] += 1
        return real(service, endpoint, region, **config)

    monkeypatch.setattr(resources, "emulator_client", counted)
    clients = resources.emulator_clients(moto_server.url, REGION)
    tag = uuid.uuid4().hex[:8]  # moto's backends outlive the test: names of its own
    bucket = f"avatars-{tag}"
    clients("s3").create_bucket(Bucket=bucket)
    resources.create_change_resources(moto_server.url, REGION, f"audit-{tag}", f"bus-{tag}", f"dlq-{tag}", clients)
    queue_url, _ = jobs.create_job_resources(moto_server.url, REGION, f"jobs-{tag}", f"queue-{tag}", bucket, clients)
    assert clients("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert made == {"s3": 1, "dynamodb": 1, "events": 1, "sqs": 1}
