"""Six narrow patches to moto 5.2.5: two keep the local stack's cost flat as its table grows, four
cut what moto spends on every DynamoDB answer, on every user pool, on every request and on a
process's first stream record.

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
3. moto writes every answer by walking the operation's output shape in botocore's model and, for
   each member of each structure, trying several spellings of its name on the result. A DynamoDB
   item is a map of AttributeValue structures of ten members each, so a page of users cost more to
   write than to find: a third of the in-process tests' moto time went there. A DynamoDB (or
   DynamoDB Streams) result that is already what that walk would write (plain JSON: each key a
   member of its structure, no None, strings, booleans, integers and floats where the shape has
   them, no blob and no timestamp) is written with json.dumps; any other result, and every error,
   still takes moto's serializer. The answer parses to the same value either way (the member order
   of the JSON text may differ); tests/integration/test_moto_patches.py compares the two.
4. Every user pool imports moto's one bundled signing key from its JWK, recovering the RSA primes
   each time: about 0.1 s of CPU per pool, for the same key. It is imported once and shared (a key
   is only read, to sign tokens).
5. On every request, moto looks up two things that cannot change while a process runs: its
   dispatcher (`BaseResponse.call_action`) runs `inspect.getmembers` over the service's response
   class to see whether the action is one of its methods, and its server lists moto's package
   folder (174 entries, a stat each) to see whether the Host header names a service. Together they
   were about 15% of the CPU a GetItem costs through the local stack's emulator, client included
   (median of five alternating runs of 1,000). Both are answered from the first lookup (per class).
6. A table's stream (`StreamShard.add`) imports moto's Lambda with every record it takes, to hand
   it to the table's Lambda mappings, even when there is none: the first record of a process then
   imports moto's Lambda, ECR, Kinesis, Logs and IAM models, about 0.12 s of CPU in each start of
   the local stack. A record no mapping takes is appended as moto appends it, without the import;
   a table with a mapping still takes moto's own method.

The replacement is a copy of moto's code, so it is only valid for the version it was copied from:
`check_version` refuses any other.
"""

from __future__ import annotations

import copy
import functools
import json
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from botocore.model import Shape
from joserfc import jwk
from moto import backends, settings
from moto.cognitoidp import models as cognito_models
from moto.core import responses as moto_responses
from moto.core import utils as moto_utils
from moto.core.common_types import TYPE_RESPONSE
from moto.core.responses import ActionContext, ActionResult
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
from moto.dynamodb.models.table import StreamRecord, StreamShard, Table

PINNED_MOTO_VERSION = "5.2.5"
TRANSACT_WRITE_ITEMS = "dynamodb.transact_write_items"
WEAK_INSTANCE_TRACKING = "dynamodb.instances_tracked"
PLAIN_JSON_ANSWERS = "dynamodb.plain_json_answers"
ONE_SIGNING_KEY = "cognitoidp.one_signing_key"
FIXED_LOOKUPS_ONCE = "core.fixed_lookups_once"
NO_LAMBDA_FOR_UNMAPPED_STREAMS = "dynamodb.no_lambda_for_unmapped_streams"
ALL_PATCHES = (
    TRANSACT_WRITE_ITEMS,
    WEAK_INSTANCE_TRACKING,
    PLAIN_JSON_ANSWERS,
    ONE_SIGNING_KEY,
    FIXED_LOOKUPS_ONCE,
    NO_LAMBDA_FOR_UNMAPPED_STREAMS,
)


class MotoVersionMismatch(RuntimeError):
    """The installed moto is not the one the patches were written against."""


def check_version(installed: str | None = None) -> None:
    found = version("moto") if installed is None else installed
    if found != PINNED_MOTO_VERSION:
        raise MotoVersionMismatch(
            f"devstack/moto_patches.py patches moto {PINNED_MOTO_VERSION}, but moto {found} is installed. "
            f"Reinstall the pinned requirements (rm .venv/.installed && make run), or, when upgrading "
            f"moto on purpose, compare the new DynamoDBBackend.transact_write_items, BaseModel.__new__, "
            f"ActionResult.execute_result, CognitoIdpUserPool.__init__, BaseResponse.call_action, "
            f"DomainDispatcherApplication.get_backend_for_host and StreamShard.add "
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


# --- 3. DynamoDB answers that are plain JSON written directly -----------------------------------------

PLAIN_JSON_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})
_SCALARS: dict[str, type] = {
    "string": str,
    "boolean": bool,
    "integer": int,
    "long": int,
    "double": float,
    "float": float,
}


def is_plain(value: Any, shape: Shape) -> bool:
    """True when moto's JSON serializer would write `value` under `shape` as it is: the shape walk
    keeps each key (a member of its structure, under its own name), drops nothing (no None) and
    converts nothing (exact scalar types; no blob, timestamp or document)."""
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        if shape.is_document_type or not isinstance(value, dict):  # type: ignore[attr-defined]
            return False
        for key, member_value in value.items():
            member = members.get(key)
            if member is None or member_value is None or member.serialization.get("name", key) != key:
                return False
            if not is_plain(member_value, member):
                return False
        return True
    if kind == "list":
        item_shape = shape.member  # type: ignore[attr-defined]
        return (
            isinstance(value, list)
            and "name" not in item_shape.serialization
            and all(item is not None and is_plain(item, item_shape) for item in value)
        )
    if kind == "map":
        value_shape = shape.value  # type: ignore[attr-defined]
        return (
            isinstance(value, dict)
            and "name" not in value_shape.serialization
            and all(type(k) is str and v is not None and is_plain(v, value_shape) for k, v in value.items())
        )
    scalar = _SCALARS.get(kind)
    return scalar is not None and type(value) is scalar


def written_directly(result: ActionResult, context: ActionContext) -> bool:
    """Whether `execute_result` writes this answer with json.dumps rather than moto's serializer."""
    operation = context.operation_model
    output = operation.output_shape
    return (
        context.service_model.service_name in PLAIN_JSON_SERVICES
        and context.service_model.protocol == "json"
        and output is not None
        and not operation.has_event_stream_output
        and not getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
        and is_plain(result.result, output)
    )


def execute_result(self: ActionResult, context: ActionContext) -> TYPE_RESPONSE:
    """moto's ActionResult.execute_result, with plain DynamoDB results written by json.dumps."""
    if not written_directly(self, context):
        return _ORIGINAL_EXECUTE_RESULT(self, context)
    version = context.service_model.metadata.get("jsonVersion", "1.0")
    body = json.dumps(self.result, indent=4 if settings.PRETTIFY_RESPONSES else None)
    status = int(context.operation_model.http.get("responseCode", 200))
    return status, {"Content-Type": f"application/x-amz-json-{version}"}, body


# --- 4. One import of the signing key every user pool uses ------------------------------------------


class OnceImportedKeys:
    """Stands in for joserfc's `jwk` module where moto's user pool imports its key (the only use of
    `jwk` in moto.cognitoidp.models): the same JWK gives the same key object, imported once."""

    def __init__(self) -> None:
        self._keys: dict[str, jwk.RSAKey] = {}
        self.RSAKey = self  # moto calls jwk.RSAKey.import_key(...)

    def import_key(self, data: dict[str, Any]) -> jwk.RSAKey:
        found = json.dumps(data, sort_keys=True)
        if found not in self._keys:
            self._keys[found] = jwk.RSAKey.import_key(data)
        return self._keys[found]


_ONCE_IMPORTED_KEYS = OnceImportedKeys()
_KEY_MODULE = "jwk"  # the name moto.cognitoidp.models imported joserfc's jwk under


# --- 5. Lookups whose answer is fixed for the process, made once --------------------------------------

_ORIGINAL_LIST_OF_MOTO_MODULES = backends.list_of_moto_modules
_ORIGINAL_METHOD_NAMES = moto_utils.method_names_from_class
# moto.core.responses imported it by name from moto.core.utils; call_action looks it up there.
_NAMES_IN_RESPONSES = "method_names_from_class"


@functools.cache
def list_of_moto_modules() -> tuple[str, ...]:
    """moto's service folders, listed once: installed packages do not change under a running process."""
    return tuple(_ORIGINAL_LIST_OF_MOTO_MODULES())


@functools.cache
def method_names_from_class(clazz: object) -> frozenset[str]:
    """A response class's method names, found once per class (call_action only asks `action in ...`)."""
    return frozenset(_ORIGINAL_METHOD_NAMES(clazz))


# --- 6. A stream record no Lambda mapping takes imports no Lambda ------------------------------------

_ORIGINAL_STREAM_ADD: Callable[[StreamShard, Item | None, Item | None], None] = StreamShard.add


def stream_shard_add(self: StreamShard, old: Item | None, new: Item | None) -> None:
    """moto 5.2.5's `StreamShard.add` for a table no Lambda mapping reads: the record appended as
    moto appends it. moto's loop over the mappings (and its import of moto.awslambda) is all the
    rest of that method, and with no mapping it does nothing."""
    if self.table.lambda_event_source_mappings:
        _ORIGINAL_STREAM_ADD(self, old, new)
        return
    view_type = self.table.stream_specification["StreamViewType"]  # type: ignore[index]
    event_name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    sequence = len(self.items) + self.starting_sequence_number
    self.items.append(StreamRecord(self.table, view_type, event_name, old, new, sequence))


# --- applying and removing ---------------------------------------------------------------------------

_ORIGINAL_TRANSACT_WRITE_ITEMS: Callable[..., None] = DynamoDBBackend.transact_write_items
_ORIGINAL_EXECUTE_RESULT: Callable[[ActionResult, ActionContext], TYPE_RESPONSE] = ActionResult.execute_result


def apply() -> list[str]:
    """Check the moto version, then patch (idempotent). Returns the names of the active patches."""
    check_version()
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    ActionResult.execute_result = execute_result  # type: ignore[method-assign,assignment]
    setattr(cognito_models, _KEY_MODULE, _ONCE_IMPORTED_KEYS)
    backends.list_of_moto_modules = list_of_moto_modules
    setattr(moto_responses, _NAMES_IN_RESPONSES, method_names_from_class)
    StreamShard.add = stream_shard_add  # type: ignore[method-assign]
    for cls in _dynamodb_model_classes():
        if not isinstance(cls.instances_tracked, WeakInstances):
            cls.instances_tracked = WeakInstances(list(cls.instances_tracked))
    return active()


def remove() -> None:
    """Back to moto as released (for tests that apply the patches in a fixture)."""
    DynamoDBBackend.transact_write_items = _ORIGINAL_TRANSACT_WRITE_ITEMS  # type: ignore[method-assign]
    ActionResult.execute_result = _ORIGINAL_EXECUTE_RESULT  # type: ignore[method-assign,assignment]
    setattr(cognito_models, _KEY_MODULE, jwk)
    backends.list_of_moto_modules = _ORIGINAL_LIST_OF_MOTO_MODULES
    setattr(moto_responses, _NAMES_IN_RESPONSES, _ORIGINAL_METHOD_NAMES)
    StreamShard.add = _ORIGINAL_STREAM_ADD  # type: ignore[method-assign,assignment]
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
    if ActionResult.execute_result is execute_result:
        names.append(PLAIN_JSON_ANSWERS)
    if getattr(cognito_models, _KEY_MODULE) is _ONCE_IMPORTED_KEYS:
        names.append(ONE_SIGNING_KEY)
    if (
        backends.list_of_moto_modules is list_of_moto_modules
        and getattr(moto_responses, _NAMES_IN_RESPONSES) is method_names_from_class
    ):
        names.append(FIXED_LOOKUPS_ONCE)
    if StreamShard.add is stream_shard_add:
        names.append(NO_LAMBDA_FOR_UNMAPPED_STREAMS)
    return names
