from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.dynamodb import DynamoUserRepository
from chalicelib.adapters.table_schema import create_table_kwargs
from devstack import moto_patches
from devstack.motoserver import MotoServer

TABLE = "users-it"


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**create_table_kwargs(TABLE))
        yield client


@pytest.fixture
def repo(ddb: Any) -> DynamoUserRepository:
    return DynamoUserRepository(TABLE, client=ddb)


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """The emulator `make run` serves (devstack/motoserver.py), in this process, on a free port."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    running = MotoServer().start()
    try:
        yield running
    finally:
        running.stop()
        moto_patches.remove()  # MotoServer patches moto for its whole process; this one is pytest's
