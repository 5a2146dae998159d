from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.config import default_user_config

from chalicelib.adapters.dynamodb import DynamoUserRepository
from chalicelib.adapters.table_schema import create_table_kwargs
from devstack.motoserver import MotoServer
from tests.support.moto_state import moto_as
from tests.support.moto_state import moto_as_make_run_serves_it as moto_as_make_run_serves_it  # the layer's moto

TABLE = "users-it"

# mock_aws drops boto3's default session at every start, so each test's first client of a service
# loaded and parsed its API model again (0.15-0.35 s a test, most of the layer's time); the
# emulated data is still reset per test. Clients here pass no credentials of their own that
# differ between tests, so one session serves them all.
default_user_config["core"]["reset_boto3_session"] = False


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
    with moto_as(patched=False):  # as a fresh `make run` process finds moto, so that the server's own patching shows
        running = MotoServer().start()
        try:
            yield running
        finally:
            running.stop()
