"""Two narrow patches to moto 5.2.5 that keep the local stack's cost flat as its table grows.

Applied by the local stack (devstack.motoserver.MotoServer) and by the integration and functional
tests' `mock_aws` (their conftest.py), so that they run the moto `make run` serves;
tests/integration/test_moto_patches.py runs each of its scenarios on moto as released too and holds
the two to the same outcome.

1. `DynamoDBBackend.transact_write_items` deep-copies every table a transaction names (once per
   action naming it) before it starts, to roll back by swapping the copy in. At 10,000 users a
   create (two actions on a table of 20,000 items) copies 40,000 items. The replacement below is
   moto's method with that one part changed: it snapshots only the items the transaction writes
   (a deep copy of each item's prior state, or "absent") and the length of each written table's
   stream, and on rollback puts exactly those back.
2. Every moto model instance (`BaseModel.__new__`) is appended to a class-level `instances_tracked`
   list that only the moto dashboard reads and nothing ever trims. Each deep copy above, each item
   an overwrite or delete replaced and each scanned result copied stays reachable from it forever:
   that, not the copies themselves, is what grew the stack to gigabytes. The DynamoDB models get a
   list that holds its instances weakly, so the dashboard still lists the live ones. (moto's
   /moto-api/reset would put plain lists back; the local stack never calls it.)

The replacement is a copy of moto's code, so it is only valid for the version it was copied from:
`check_version` refuses any other.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamRecord, Table

PINNED_MOTO_VERSION = "5.2.5"
TRANSACT_WRITE_ITEMS = "dynamodb.transact_write_items"
WEAK_INSTANCE_TRACKING = "dynamodb.instances_tracked"


class MotoVersionMismatch(RuntimeError):
    """The installed moto is not the one the patches were written against."""


def check_version(installed: str | None = None) -> None:
    found = version("moto") if installed is None else installed
    if found != PINNED_MOTO_VERSION:
        raise MotoVersionMismatch(
            f"devstack/moto_patches.py patches moto {PINNED_MOTO_VERSION}, but moto {found} is installed. "
            f"Reinstall the pinned requirements (rm .venv/.installed && make run), or, when upgrading "
            f"moto on purpose, compare the new DynamoDBBackend.transact_write_items and BaseModel.__new__ "
            f"with this module, port the patches and set PINNED_MOTO_VERSION to {found}."
        )


# --- 1. TransactWriteItems: snapshot the written items, not the tables ------------------------------


@dataclass
class _Snapshot:
    """What a transaction's writes may change, as it was before the first of them."""

    # (table, hash key, range key, deep copy of the prior item or None for "absent"), in write order.
    items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = field(default_factory=list)
    # Per table written to (by id): its stream shard's record list and that list's length.
    streams: dict[int, tuple[Table, list[StreamRecord], int]] = field(default_factory=dict)

    def take(self, backend: DynamoDBBackend, table_name: str, key: dict[str, Any]) -> None:
        table = backend.get_table(table_name)
        hash_key, range_key = backend.get_keys_value(table, key)
        self.items.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        if table.stream_shard is not None and id(table) not in self.streams:
            self.streams[id(table)] = (table, table.stream_shard.items, len(table.stream_shard.items))

    def restore(self) -> None:
        # Newest first, so that if two entries name one item (by table name and by ARN) the oldest wins.
        for table, hash_key, range_key, prior in reversed(self.items):
            if range_key is None:
                if prior is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = prior  # type: ignore[assignment]  # moto types it for range keys only
            elif prior is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = prior
        for table, records, length in self.streams.values():
            # A failed write makes no stream record. The shard may have swapped its list for a new one
            # (after handing records to a Lambda mapping): moto's rollback restored the old list too.
            del records[length:]
            if table.stream_shard is not None:
                table.stream_shard.items = records


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's `DynamoDBBackend.transact_write_items`; the lines marked PATCH are the only change."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    snapshot = _Snapshot()  # PATCH: instead of a deep copy of every table named

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []  # [(Code, Message, Item), ..]
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        # Check transact writes are not performing multiple operations on the same item
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException

        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            current = self.get_item(table_name, key)
            if op_type != "ConditionCheck":  # PATCH: remember the item before this action writes it
                snapshot.take(self, table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression,
                    expression_attribute_names,
                    expression_attribute_values,
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type == "Put":
                attrs = op["Item"]
                self.put_item(
                    table_name,
                    attrs,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                update_expression = op["UpdateExpression"]
                self.update_item(
                    table_name,
                    key,
                    update_expression=update_expression,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            # Rollback to the original state, and reraise the error
            snapshot.restore()  # PATCH
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore[arg-type]
        except Exception as e:
            # For other exceptions, capture their details
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore[arg-type]

    if any(code is not None for code, _, _ in errors):
        # Rollback to the original state, and reraise the errors
        snapshot.restore()  # PATCH
        raise TransactionCanceledException(errors)


# --- 2. Model instances held weakly ------------------------------------------------------------------


class WeakInstances:
    """Stands in for a model class's `instances_tracked` list: `append` and iteration, held weakly.

    Keyed by id, since moto's Item defines __eq__ without __hash__ (a WeakSet needs hashing).
    """

    def __init__(self, instances: list[Any]) -> None:
        self._refs: dict[int, weakref.ref[Any]] = {}
        for instance in instances:
            self.append(instance)

    def append(self, instance: Any) -> None:
        key = id(instance)

        def forget(_ref: weakref.ref[Any]) -> None:
            # Runs as the instance is freed, before its id can be reused: never drops a newer entry.
            self._refs.pop(key, None)

        self._refs[key] = weakref.ref(instance, forget)

    def __iter__(self) -> Iterator[Any]:
        return iter([instance for ref in list(self._refs.values()) if (instance := ref()) is not None])

    def __len__(self) -> int:
        return len(self._refs)


def _dynamodb_model_classes() -> list[type[Any]]:
    from moto.core.model_instances import model_data

    return [cls for cls in model_data["dynamodb"].values() if isinstance(cls, type)]


# --- applying and removing ---------------------------------------------------------------------------

_ORIGINAL_TRANSACT_WRITE_ITEMS: Callable[..., None] = DynamoDBBackend.transact_write_items


def apply() -> list[str]:
    """Check the moto version, then patch (idempotent). Returns the names of the active patches."""
    check_version()
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for cls in _dynamodb_model_classes():
        if not isinstance(cls.instances_tracked, WeakInstances):
            cls.instances_tracked = WeakInstances(list(cls.instances_tracked))
    return active()


def remove() -> None:
    """Back to moto as released (for tests that apply the patches in a fixture)."""
    DynamoDBBackend.transact_write_items = _ORIGINAL_TRANSACT_WRITE_ITEMS  # type: ignore[method-assign]
    for cls in _dynamodb_model_classes():
        if isinstance(cls.instances_tracked, WeakInstances):
            cls.instances_tracked = list(cls.instances_tracked)


def active() -> list[str]:
    """The patches in effect now, checked on moto itself (not remembered from `apply`)."""
    names = []
    if DynamoDBBackend.transact_write_items is transact_write_items:
        names.append(TRANSACT_WRITE_ITEMS)
    classes = _dynamodb_model_classes()
    if classes and all(isinstance(cls.instances_tracked, WeakInstances) for cls in classes):
        names.append(WEAK_INSTANCE_TRACKING)
    return names
