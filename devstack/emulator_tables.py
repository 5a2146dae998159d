"""A table as the in-process emulator holds it: moto's DynamoDB backend, reached one way by the
local stack's stream and by the tests that look past the API (items, the stream's shard)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moto.dynamodb.models.table import Table


def emulator_table(region: str, name: str) -> Table:
    # Imported here, as the stream did before: tools import devstack.streams without an emulator
    # (ops/replay_dlq.py), and moto's DynamoDB models are heavy.
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table: Table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(name)
    return table
