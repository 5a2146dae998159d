"""The local stack's moto patches (devstack/moto_patches.py): a transaction still rolls back exactly,
answers exactly as released moto does, and keeps nothing alive once it is over.

Each scenario runs twice, on moto as released and on the patched moto, and must end the same way:
same error, same cancellation reasons, same table contents, same stream records.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult, BaseResponse
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from devstack import moto_patches
from devstack.emulator_tables import emulator_table
from tests.support.class_tree import with_subclasses
from tests.support.moto_state import moto_as

REGION = "us-east-1"
TABLE = "patched"  # hash key pk, stream NEW_AND_OLD_IMAGES
RANGED = "patched-ranged"  # hash key pk, range key sk, no stream
SEED = {"a": 1, "b": 1, "c": 1, "untouched": 1}


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def aws(credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def patched(aws: None) -> Iterator[None]:
    with moto_as(patched=True):
        yield


def client() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def table(name: str = TABLE) -> Table:
    return emulator_table(REGION, name)


def create_tables(ddb: Any) -> None:
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    ddb.create_table(
        TableName=RANGED,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for pk, v in SEED.items():
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "v": {"N": str(v)}, "tags": {"SS": ["x", "y"]}})
    for pk, sk in (("x", "1"), ("x", "2"), ("y", "1")):
        ddb.put_item(TableName=RANGED, Item={"pk": {"S": pk}, "sk": {"S": sk}, "v": {"N": "1"}})


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def put(pk: str, v: int, condition: str | None = None, all_old: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": TABLE, "Item": {"pk": {"S": pk}, "v": {"N": str(v)}}}
    if condition:
        op["ConditionExpression"] = condition
    if all_old:
        op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Put": op}


def delete(pk: str) -> dict[str, Any]:
    return {"Delete": {"TableName": TABLE, "Key": key(pk)}}


def update(pk: str, expression: str = "SET v = v + :one", values: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": TABLE, "Key": key(pk), "UpdateExpression": expression}
    if values is None:
        values = {":one": {"N": "1"}}
    if values:
        op["ExpressionAttributeValues"] = values
    return {"Update": op}


def failing_check(pk: str = "untouched", all_old: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {
        "TableName": TABLE,
        "Key": key(pk),
        "ConditionExpression": "v = :never",
        "ExpressionAttributeValues": {":never": {"N": "99"}},
    }
    if all_old:
        op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"ConditionCheck": op}


def ranged(op: str, pk: str, sk: str, **extra: Any) -> dict[str, Any]:
    keys = {"pk": {"S": pk}, "sk": {"S": sk}}
    body: dict[str, Any] = {"TableName": RANGED, **extra}
    body["Item" if op == "Put" else "Key"] = {**keys, "v": {"N": "7"}} if op == "Put" else keys
    return {op: body}


# Each a transaction on the seeded tables; the comment says how it ends.
SCENARIOS: dict[str, list[dict[str, Any]]] = {
    # cancelled by the last action, after an overwrite, a new item, a delete and an update
    "every kind of write, then a failed condition": [
        put("a", 2),
        put("new", 1),
        delete("b"),
        update("c"),
        failing_check(),
    ],
    # cancelled by the first action; ALL_OLD puts the current item in its cancellation reason
    "a failed put condition with ALL_OLD, then a write": [
        put("a", 5, condition="attribute_not_exists(pk)", all_old=True),
        put("new", 1),
    ],
    "a failed condition without ALL_OLD in the middle": [put("new", 1), failing_check(all_old=False), update("a")],
    # an update of an absent item creates it; the cancellation must remove it again
    "an update that creates an item, then a failed condition": [update("absent"), failing_check()],
    # raised as ValidationException in the middle of the writes
    "an update with an undefined value": [put("new", 1), delete("b"), update("a", "SET v = :undefined", {})],
    "two actions on one item": [put("new", 1), put("a", 3), delete("a")],
    "a table that does not exist": [put("new", 1), {"Delete": {"TableName": "missing", "Key": key("a")}}],
    "a range-key table": [
        ranged("Put", "x", "3"),
        ranged("Update", "x", "2", UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "9"}}),
        ranged("Delete", "y", "1"),
        failing_check(),
    ],
    "too many actions": [put(f"n{i}", 1) for i in range(101)],
    # succeeds
    "every kind of write, all conditions met": [
        put("a", 2, condition="attribute_exists(pk)"),
        put("new", 1, condition="attribute_not_exists(pk)"),
        delete("b"),
        update("c"),
        {
            "ConditionCheck": {
                "TableName": TABLE,
                "Key": key("untouched"),
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ],
}
CANCELLED = [name for name in SCENARIOS if name != "every kind of write, all conditions met"]


def contents() -> dict[str, list[dict[str, Any]]]:
    ddb = client()
    return {name: sorted(ddb.scan(TableName=name, ConsistentRead=True)["Items"], key=repr) for name in (TABLE, RANGED)}


def stream_records() -> list[tuple[str, Any, Any, Any]]:
    shard = table().stream_shard
    assert shard is not None
    return [
        (r.record["eventName"], r.record["dynamodb"]["Keys"], r.record["dynamodb"].get("OldImage"),
         r.record["dynamodb"].get("NewImage"))
        for r in shard.items
    ]  # fmt: skip


def outcome(transaction: list[dict[str, Any]]) -> dict[str, Any]:
    """What a transaction answered and left behind: the error, the tables, the stream."""
    ddb = client()
    try:
        ddb.transact_write_items(TransactItems=transaction)
        error: dict[str, Any] = {}
    except ClientError as exc:
        error = {
            "code": exc.response["Error"]["Code"],
            "message": exc.response["Error"]["Message"],
            "reasons": exc.response.get("CancellationReasons"),
        }
    return {"error": error, "tables": contents(), "stream": stream_records()}


def run(transaction: list[dict[str, Any]], with_patch: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the state before, the outcome) of `transaction` on freshly seeded tables."""
    with mock_aws(), moto_as(patched=with_patch):
        create_tables(client())
        before = {"tables": contents(), "stream": stream_records()}
        return before, outcome(transaction)


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_patched_transaction_ends_exactly_as_released_moto_does(credentials: None, name: str) -> None:
    _, released = run(SCENARIOS[name], with_patch=False)
    _, patched = run(SCENARIOS[name], with_patch=True)
    assert patched == released


@pytest.mark.parametrize("name", CANCELLED)
def test_a_cancelled_transaction_leaves_the_tables_and_the_stream_as_they_were(credentials: None, name: str) -> None:
    before, after = run(SCENARIOS[name], with_patch=True)
    assert after["error"]["code"] in (
        "TransactionCanceledException",
        "ValidationException",
        "ResourceNotFoundException",
    )
    assert after["tables"] == before["tables"]
    assert after["stream"] == before["stream"]  # a failed write makes no stream record


def test_cancellation_reasons_carry_the_current_item_with_all_old(patched: None) -> None:
    create_tables(client())
    error = outcome(SCENARIOS["every kind of write, then a failed condition"])["error"]
    assert error["code"] == "TransactionCanceledException"
    assert [reason["Code"] for reason in error["reasons"]] == ["None"] * 4 + ["ConditionalCheckFailed"]
    assert error["reasons"][4]["Item"] == {"pk": {"S": "untouched"}, "v": {"N": "1"}, "tags": {"SS": ["x", "y"]}}


def test_a_successful_transaction_applies_everything_and_records_it_in_the_stream(patched: None) -> None:
    create_tables(client())
    seeded = len(stream_records())
    after = outcome(SCENARIOS["every kind of write, all conditions met"])
    assert after["error"] == {}
    values = {item["pk"]["S"]: item["v"]["N"] for item in after["tables"][TABLE]}
    assert values == {"a": "2", "new": "1", "c": "2", "untouched": "1"}
    events = [(event, keys["pk"]["S"]) for event, keys, _, _ in after["stream"][seeded:]]
    assert events == [("MODIFY", "a"), ("INSERT", "new"), ("REMOVE", "b"), ("MODIFY", "c")]


def test_a_cancelled_transaction_puts_back_only_what_it_touched(patched: None) -> None:
    ddb = client()
    create_tables(ddb)
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "untouched"}, "v": {"N": "5"}})  # a write before: it stays
    untouched = table().get_item(DynamoType({"S": "untouched"}))
    assert untouched is not None
    outcome([put("a", 2), update("c"), failing_check("b")])
    assert table().get_item(DynamoType({"S": "untouched"})) is untouched  # not replaced by a copy
    assert untouched.attrs["v"].value == "5"


def test_the_stream_goes_back_to_its_length_even_after_several_partial_writes(patched: None) -> None:
    ddb = client()
    create_tables(ddb)
    seeded = stream_records()
    outcome([put("a", 2), put("new", 1), delete("b"), update("c"), failing_check()])
    outcome([update("a"), failing_check()])
    assert stream_records() == seeded
    outcome([update("a")])
    assert [event for event, *_ in stream_records()[len(seeded) :]] == ["MODIFY"]


def live_items() -> int:
    gc.collect()
    return sum(isinstance(obj, Item) for obj in gc.get_objects())


def cancel_repeatedly(count: int) -> None:
    ddb = client()
    for _ in range(count):
        with pytest.raises(ClientError):
            ddb.transact_write_items(TransactItems=[put("a", 2), put("new", 1), failing_check()])


@pytest.mark.parametrize("with_patch", [False, True], ids=["released", "patched"])
def test_cancelled_transactions_keep_items_alive_only_without_the_patch(aws: None, with_patch: bool) -> None:
    """The leak: moto's instance tracker kept every item each transaction deep-copied."""
    ddb = client()
    create_tables(ddb)
    for n in range(50):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"filler-{n}"}, "v": {"N": "1"}})
    table_size = len(table())
    with moto_as(patched=with_patch):
        cancel_repeatedly(5)  # warm up whatever is cached once
        before = live_items()
        cancel_repeatedly(10)
        grown = live_items() - before
    if with_patch:
        assert grown == 0
    else:  # released moto: a copy of the whole table per action naming it, kept for good
        assert grown >= 10 * table_size


def _applies(action: Callable[[], Any]) -> list[str]:
    action()
    return moto_patches.active()


def test_apply_and_remove_are_checked_on_moto_itself(aws: None) -> None:
    with moto_as(patched=False):
        assert moto_patches.active() == []
        expected = list(moto_patches.ALL_PATCHES)
        assert _applies(moto_patches.apply) == expected
        assert _applies(moto_patches.apply) == expected  # idempotent
        assert _applies(moto_patches.remove) == []


def test_the_in_process_layers_run_the_patched_moto_the_local_stack_serves(aws: None) -> None:
    assert moto_patches.active() == list(moto_patches.ALL_PATCHES)


# --- 3. plain DynamoDB answers written directly ------------------------------------------------------

ODD_ITEM = {
    "pk": {"S": "odd"},
    "empty": {"S": ""},
    "n": {"N": "-12345678901234567890.5"},
    "b": {"B": b"\x00\xffbytes"},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "ns": {"NS": ["1", "2.5"]},
    "ss": {"SS": ["ä", "\u2028"]},
    "null": {"NULL": True},
    "no": {"BOOL": False},
    "nested": {"M": {"l": {"L": [{"S": "x"}, {"M": {}}, {"L": []}, {"N": "0"}]}, "yes": {"BOOL": True}}},
}


def _every_answer_both_ways(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, bool]]:
    """Each DynamoDB answer moto writes from here on: (operation, written directly, same as moto's own serializer)."""
    answers: list[tuple[str, bool, bool]] = []
    original = moto_patches._ORIGINAL_EXECUTE_RESULT

    def both(self: Any, context: Any) -> Any:
        answer = moto_patches.execute_result(self, context)
        if context.service_model.service_name in moto_patches.PLAIN_JSON_SERVICES:
            released = original(self, context)
            direct = moto_patches.written_directly(self, context)
            same = (answer[0], answer[1], json.loads(answer[2] or "null")) == (
                released[0],
                released[1],
                json.loads(released[2] or "null"),
            )
            answers.append((context.operation_model.name, direct, same))
        return answer

    monkeypatch.setattr(ActionResult, "execute_result", both)
    return answers


def test_a_plain_answer_parses_as_moto_writes_it_and_anything_else_takes_motos_serializer(
    patched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = _every_answer_both_ways(monkeypatch)
    ddb = client()
    create_tables(ddb)
    ddb.put_item(TableName=TABLE, Item=ODD_ITEM)
    ddb.put_item(TableName=TABLE, Item={**ODD_ITEM, "pk": {"S": "odd2"}}, ReturnValues="NONE")
    assert ddb.get_item(TableName=TABLE, Key=key("odd"))["Item"] == ODD_ITEM
    ddb.get_item(TableName=TABLE, Key=key("gone"), ReturnConsumedCapacity="TOTAL")
    ddb.update_item(
        TableName=TABLE,
        Key=key("odd"),
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "1"}},
        ReturnValues="ALL_NEW",
        ReturnConsumedCapacity="INDEXES",
    )
    ddb.update_item(
        TableName=TABLE,
        Key=key("a"),
        UpdateExpression="SET v = v + :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_OLD",
    )
    ddb.query(TableName=RANGED, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "x"}}, Limit=1)
    ddb.scan(TableName=TABLE, Select="COUNT")
    ddb.scan(TableName=TABLE, ProjectionExpression="nested.l[1], b")
    ddb.batch_get_item(RequestItems={TABLE: {"Keys": [key("odd"), key("a")]}})
    ddb.transact_get_items(TransactItems=[{"Get": {"TableName": TABLE, "Key": key("odd2")}}])
    ddb.transact_write_items(TransactItems=[update("a"), delete("b")])
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=[update("a"), failing_check()])
    with pytest.raises(ClientError):
        ddb.put_item(TableName=TABLE, Item=key("a"), ConditionExpression="attribute_not_exists(pk)")
    ddb.delete_item(TableName=TABLE, Key=key("odd2"), ReturnValues="ALL_OLD")
    ddb.describe_table(TableName=TABLE)
    streams = boto3.client("dynamodbstreams", region_name=REGION, config=Config(account_id_endpoint_mode="disabled"))
    arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    streams.get_records(ShardIterator=iterator["ShardIterator"])

    assert [(operation, same) for operation, _, same in answers if not same] == []
    direct = {operation for operation, written_directly, _ in answers if written_directly}
    # The requests a user service makes on every call take the direct way...
    assert {"PutItem", "GetItem", "UpdateItem", "Query", "Scan", "TransactWriteItems", "GetShardIterator"} <= direct
    # ...and what holds timestamps, blobs in a shape moto's walk converts, or keys outside the shape does not.
    assert {"CreateTable", "DescribeTable", "DescribeStream"} & direct == set()


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ({"Item": {"a": {"S": "x"}}}, True),
        ({"Item": {"a": {"S": "x"}}, "Unknown": 1}, False),  # moto's walk drops keys outside the shape
        ({"Item": {"a": {"S": None}}}, False),  # ...and None
        ({"Item": {"a": {"N": 1}}}, False),  # ...and writes str(1) for a string
        ({"ConsumedCapacity": {"CapacityUnits": 1}}, False),  # ...and float(1) for a double
        ({"ConsumedCapacity": {"CapacityUnits": 1.0}}, True),
        ({"Item": {"a": {"B": "eA=="}}}, False),  # ...and base64 of a blob
        ({"Item": {"a": {"BOOL": 1}}}, False),
    ],
)
def test_only_what_motos_walk_would_write_unchanged_is_plain(value: dict[str, Any], plain: bool) -> None:
    import botocore.session

    shape = botocore.session.get_session().get_service_model("dynamodb").operation_model("GetItem").output_shape
    assert moto_patches.is_plain(value, shape) is plain


# --- 4. one signing key ---------------------------------------------------------------------------


def test_every_user_pool_signs_with_the_key_moto_publishes_imported_once(patched: None) -> None:
    from moto.cognitoidp.models import cognitoidp_backends

    cognito = boto3.client("cognito-idp", region_name=REGION)
    pools = [cognito.create_user_pool(PoolName=f"p{n}")["UserPool"]["Id"] for n in range(2)]
    keys = [cognitoidp_backends[DEFAULT_ACCOUNT_ID][REGION].user_pools[pool].json_web_key for pool in pools]
    assert keys[0] is keys[1]
    with moto_as(patched=False):
        released = cognito.create_user_pool(PoolName="released")["UserPool"]["Id"]
        released_key = cognitoidp_backends[DEFAULT_ACCOUNT_ID][REGION].user_pools[released].json_web_key
    assert released_key is not keys[0]
    assert released_key.as_dict(private=True) == keys[0].as_dict(private=True)


# --- 5. lookups made once -------------------------------------------------------------------------


def test_the_lookups_made_once_answer_as_motos_own(patched: None) -> None:
    from moto import backends
    from moto.core import responses, utils

    boto3.client("cognito-idp", region_name=REGION).list_user_pools(MaxResults=1)  # loads another service's class
    classes = with_subclasses(BaseResponse)
    assert len(classes) > 3
    dispatchers_lookup: Any = vars(responses)["method_names_from_class"]  # what call_action calls: the patched one
    for cls in classes:
        assert dispatchers_lookup(cls) == frozenset(utils.method_names_from_class(cls)), cls
    assert dispatchers_lookup is moto_patches.method_names_from_class
    patched_folders = backends.list_of_moto_modules()
    with moto_as(patched=False):
        assert tuple(backends.list_of_moto_modules()) == patched_folders
    assert {"dynamodb", "cognitoidp", "s3", "sqs"} <= set(patched_folders)


def _call_an_action_dynamodb_lacks() -> str:
    """ListGlobalTables: in DynamoDB's API, not among moto's DynamoHandler methods."""
    with mock_aws():
        with pytest.raises(NotImplementedError) as refused:
            client().list_global_tables()
        assert client().list_tables()["TableNames"] == []  # an action it has is still answered
        return str(refused.value)


def test_an_action_a_service_lacks_is_still_refused_as_released_moto_refuses_it(credentials: None) -> None:
    with moto_as(patched=True):
        patched = _call_an_action_dynamodb_lacks()
    with moto_as(patched=False):
        released = _call_an_action_dynamodb_lacks()
    assert patched == released == "The list_global_tables action has not been implemented"


# --- 6. no Lambda for a stream no mapping reads ---------------------------------------------------


def _plain_writes_and_their_stream(with_patch: bool) -> list[dict[str, Any]]:
    """Every kind of single write (and a transaction) on the streamed table: its records, whole."""
    with mock_aws(), moto_as(patched=with_patch):
        ddb = client()
        create_tables(ddb)
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": "new"}, "v": {"N": "1"}})
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "v": {"N": "2"}})
        ddb.update_item(TableName=TABLE, Key=key("b"), UpdateExpression="SET v = :v", ExpressionAttributeValues={
            ":v": {"N": "3"}})  # fmt: skip
        ddb.delete_item(TableName=TABLE, Key=key("c"))
        ddb.delete_item(TableName=TABLE, Key=key("absent"))  # deletes nothing: no record
        ddb.transact_write_items(TransactItems=[put("t", 1), delete("untouched")])
        shard = table().stream_shard
        assert shard is not None
        # Each run's shard numbers from its own random start, and moto sizes a record by its JSON text,
        # random event id and time included: a record's place in the shard is what counts.
        first = shard.starting_sequence_number
        return [
            {
                **r.record,
                "eventID": None,
                "dynamodb": {
                    **r.record["dynamodb"],
                    "ApproximateCreationDateTime": None,
                    "SizeBytes": None,
                    "SequenceNumber": int(r.record["dynamodb"]["SequenceNumber"]) - first,
                },
            }
            for r in shard.items
        ]


def test_a_stream_no_mapping_reads_records_every_write_as_released_moto_does(credentials: None) -> None:
    released = _plain_writes_and_their_stream(with_patch=False)
    patched = _plain_writes_and_their_stream(with_patch=True)
    assert patched == released
    assert [r["eventName"] for r in patched[len(SEED) :]] == [
        "INSERT",
        "MODIFY",
        "MODIFY",
        "REMOVE",
        "INSERT",
        "REMOVE",
    ]
    assert [r["dynamodb"]["SequenceNumber"] for r in patched] == list(range(len(patched)))


def _imports_lambda_on_a_streamed_write(with_patch: bool) -> bool:
    """Whether the first write to a streamed table imports moto's Lambda, in a process of its own
    (this one has imported it already)."""
    script = f"""
import sys, boto3
from moto import mock_aws
from devstack import moto_patches
from tests.integration.test_moto_patches import REGION, TABLE, create_tables
if {with_patch}:
    moto_patches.apply()
with mock_aws():
    create_tables(boto3.client("dynamodb", region_name=REGION))
print("moto.awslambda" in sys.modules)
"""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_ENDPOINT_URL", None)
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    return found.stdout.strip() == "True"


def test_a_streamed_write_imports_motos_lambda_only_without_the_patch() -> None:
    assert _imports_lambda_on_a_streamed_write(with_patch=False)
    assert not _imports_lambda_on_a_streamed_write(with_patch=True)


def test_a_table_a_lambda_mapping_reads_still_takes_motos_own_method(
    patched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_tables(client())
    shard = table().stream_shard
    assert shard is not None
    handed: list[tuple[Any, Any]] = []
    monkeypatch.setattr(moto_patches, "_ORIGINAL_STREAM_ADD", lambda self, old, new: handed.append((old, new)))
    records = len(shard.items)
    client().put_item(TableName=TABLE, Item={"pk": {"S": "unmapped"}})
    assert handed == [] and len(shard.items) == records + 1
    monkeypatch.setitem(table().lambda_event_source_mappings, "arn:aws:lambda:mapping", object())
    client().put_item(TableName=TABLE, Item={"pk": {"S": "mapped"}})
    assert len(handed) == 1 and handed[0][0] is None and len(shard.items) == records + 1
