"""Section "DynamoDB requests": the DynamoDB API calls each service operation makes, counted with a
botocore `before-call` hook on the real DynamoUserRepository and UserService, in-process on moto.

Sets in `context.measured`, for each key OP of OPERATIONS:
  "dynamodb.OP.requests"     API calls the operation made;
  "dynamodb.OP.read_units"   read request units DynamoDB on demand bills for them;
  "dynamodb.OP.write_units"  write request units, the table's and its indexes' (below);
  "dynamodb.OP.index_write_units"  the part of them the table's indexes cost;
and "dynamodb.user_item_bytes", the DynamoDB size of a typical user item.
The cost model prices these. Units follow DynamoDB's rules (see `request_units`), applied to the
requests as sent and, for a Query, to the items it returned; nothing here reaches AWS.

Index writes: DynamoDB bills every write of a table item again in each global secondary index
the item enters, leaves or changes in: one write (1 unit per KB of the index entry; with the
ALL projection the whole item) when the item enters, leaves or changes an attribute the index
projects, two when its key in that index changes (the old entry is deleted, the new one put).
Each operation's items are compared before and after it (`index_write_units`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from bench.context import Context
from bench.report import Figure

SECTION = "DynamoDB requests"
TABLE = "users-bench"
BUCKET = "users-bench-avatars"
REGION = "us-east-1"
# A cursor secret for the bench only (the codec wants at least 32 bytes).
CURSOR_SECRET = b"bench-cursor-secret-0123456789abcdef"


@dataclass(frozen=True)
class Operation:
    key: str
    name: str
    # The minimum the core issue sets; None for a figure shown for information.
    target: int | None
    what: str


OPERATIONS = (
    Operation("get", "get user", 1, "GET /users/{id}"),
    Operation("create", "create user", 1, "POST /users"),
    Operation("update", "update, email unchanged", 1, "PUT /users/{id} changing name and phone"),
    Operation("update_same_email", "update, same email in other case", 1, "PUT naming the stored email, re-cased"),
    Operation(
        "list_page", "list page", None, "GET /users, first page of the default size: one Query per role#enabled state"
    ),
    Operation("list_next_page", "list next page", None, "GET /users?cursor=..."),
    Operation("list_one_state", "list page, one state", 1, "GET /users?role=member&enabled=true: one partition"),
    Operation("find_by_email", "find by email", 2, "GET /users?email=...: the reservation, then its owner"),
    # The core issue set 2; issue 20 adds the read that confirms the sign-in followed the latest
    # record (chalicelib/domain/service.py, _follow), without which concurrent changes could leave
    # the sign-in on an older address.
    Operation("email_change", "update with email change", 3, "PUT /users/{id} with a new email"),
    Operation("delete", "delete user", 2, "DELETE /users/{id} (its avatar delete goes to S3, not counted)"),
    Operation("profile_create", "profile, first PUT", None, "PUT /users/me creating the caller's profile"),
    Operation("profile_update", "profile, later PUT", None, "PUT /users/me updating it"),
    Operation("idempotent_create", "create with Idempotency-Key", None, "POST /users, first time with a key"),
    Operation("idempotent_replay", "create replayed", None, "POST /users again with the same key and body"),
    # chalicelib/domain/revocation.py: every authenticated request checks its caller's record, cached per
    # container for under a minute.
    Operation("revocation_cold", "revocation check, new caller", 1, "a caller this container has not seen"),
    Operation("revocation_warm", "revocation check, warm caller", 0, "the same caller again within the minute"),
)


@dataclass(frozen=True)
class Call:
    """One DynamoDB API call as sent: what capacity it consumes depends on these."""

    operation: str  # the API name, e.g. GetItem
    items: int = 1  # items in a transaction
    consistent: bool = False
    limit: int | None = None  # Scan and Query page size
    returned: list[int] = field(default_factory=list)  # sizes of the items a Query or Scan returned

    @classmethod
    def of(cls, operation: str, body: Mapping[str, Any]) -> Call:
        items = len(body.get("TransactItems", [])) or 1
        limit = body.get("Limit")
        return cls(operation, items, bool(body.get("ConsistentRead", False)), int(limit) if limit else None)

    def describe(self) -> str:
        if self.items > 1:
            return f"{self.operation} ({self.items} items)"
        if self.limit is not None:
            return f"{self.operation} (Limit {self.limit})"
        return self.operation


# DynamoDB's accounting units: reads per 4 KB, writes per 1 KB (of the item's size).
READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024
_SINGLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})


def request_units(call: Call, item_bytes: int) -> tuple[float, float]:
    """(read units, write units) DynamoDB on demand bills for `call`, each item being `item_bytes`.

    A strongly consistent read is 1 unit per 4 KB, an eventually consistent one half that; a Scan
    or Query is billed on the total size of the items it read (those it returned: no filter
    expression here), rounded up to 4 KB, one unit at least; a write is 1 unit per 1 KB, whether or
    not its condition holds; a transaction costs twice per item.
    """
    reads = 1.0 if call.consistent else 0.5
    if call.operation == "GetItem":
        return math.ceil(item_bytes / READ_UNIT_BYTES) * reads, 0.0
    if call.operation in ("Scan", "Query"):
        return max(1, math.ceil(sum(call.returned) / READ_UNIT_BYTES)) * reads, 0.0
    if call.operation in _SINGLE_WRITES:
        return 0.0, float(math.ceil(item_bytes / WRITE_UNIT_BYTES))
    if call.operation == "TransactWriteItems":
        return 0.0, 2.0 * call.items * math.ceil(item_bytes / WRITE_UNIT_BYTES)
    if call.operation == "TransactGetItems":
        return 2.0 * call.items * math.ceil(item_bytes / READ_UNIT_BYTES), 0.0
    # A new kind of call in chalicelib/adapters/dynamodb.py must be priced here, not silently priced at 0.
    raise ValueError(f"no capacity rule for DynamoDB {call.operation}")


def item_bytes(item: Mapping[str, Mapping[str, Any]]) -> int:
    """The size DynamoDB bills an item at (chalicelib/adapters/user_index.py `item_size`)."""
    from chalicelib.adapters.user_index import item_size

    return item_size({name: dict(value) for name, value in item.items()})


def index_write_units(before: Mapping[str, Any], after: Mapping[str, Any]) -> float:
    """Write units the search indexes cost for a change of the table from `before` to `after`
    (userId -> item): per index, one write of the entry's size (1 unit per KB) when an item
    enters, leaves, or changes while in it; two when its key in the index changes."""
    from chalicelib.adapters.table_schema import GLOBAL_SECONDARY_INDEXES

    units = 0.0
    for key in set(before) | set(after):
        old: Any = before.get(key)
        new: Any = after.get(key)
        if old == new:
            continue
        for index in GLOBAL_SECONDARY_INDEXES:
            names = [k["AttributeName"] for k in index["KeySchema"]]

            def entry(item: Any, names: list[str] = names) -> Any:
                return (
                    tuple(json.dumps(item[n], sort_keys=True) for n in names)
                    if item and all(n in item for n in names)
                    else None
                )

            was, now = entry(old), entry(new)
            if was is None and now is None:
                continue
            if was is not None and now is not None and was != now:
                units += math.ceil(item_bytes(old) / WRITE_UNIT_BYTES) + math.ceil(item_bytes(new) / WRITE_UNIT_BYTES)
            else:
                units += math.ceil(item_bytes(new if now is not None else old) / WRITE_UNIT_BYTES)
    return units


class CallRecorder:
    """A `before-call.dynamodb` hook: fires once per API call (botocore's retries are inside it);
    its `returned` method, an `after-call.dynamodb` hook, notes the items a Query returned."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __call__(self, model: Any, params: Mapping[str, Any], **_: Any) -> None:
        # The serialized request: a JSON body for DynamoDB's protocol, exactly what is sent.
        body = json.loads(params.get("body") or b"{}")
        self.calls.append(Call.of(str(model.name), body))

    def returned(self, parsed: Mapping[str, Any], **_: Any) -> None:
        if self.calls and "Items" in parsed:
            # botocore hands back the parsed answer: plain DynamoDB JSON, as the wire carried it.
            self.calls[-1].returned.extend(item_bytes(item) for item in parsed["Items"])

    def take(self) -> list[Call]:
        taken, self.calls = self.calls, []
        return taken


@dataclass
class Measurement:
    calls: dict[str, list[Call]] = field(default_factory=dict)
    index_writes: dict[str, float] = field(default_factory=dict)
    user_item_bytes: int = 0
    largest_item_bytes: int = 0

    def units(self, key: str) -> tuple[float, float]:
        """(read units, write units) of an operation, its index writes included."""
        pairs = [request_units(call, self.user_item_bytes) for call in self.calls[key]]
        return sum(r for r, _ in pairs), sum(w for _, w in pairs) + self.index_writes.get(key, 0.0)


# Settings that would send the calls somewhere else than moto, or sign them with real credentials.
_REDIRECTING = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE")


@contextmanager
def emulated_aws() -> Iterator[tuple[Any, Any, Any]]:
    """(dynamodb, s3, cognito-idp clients) on moto with the users table and the avatar bucket; the
    environment is restored afterwards."""
    import boto3
    from moto import mock_aws

    from chalicelib.adapters.table_schema import create_table_kwargs

    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
    with mock.patch.dict(os.environ, fake):
        for name in (*_REDIRECTING, "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        with mock_aws():
            session = boto3.session.Session(region_name=REGION)
            dynamodb, s3 = session.client("dynamodb"), session.client("s3")
            dynamodb.create_table(**create_table_kwargs(TABLE))
            s3.create_bucket(Bucket=BUCKET)
            # Cognito as the local stack emulates it (its attribute writes and aliases as Cognito's).
            from devstack import cognito_emulation

            cognito_emulation.apply()
            yield dynamodb, s3, session.client("cognito-idp")


def _user_pool(cognito: Any) -> str:
    """A pool as deployed (email as username, the admins group), for creates that make sign-ins."""
    from chalicelib.domain.access import ADMIN_GROUP

    pool = cognito.create_user_pool(PoolName="bench", UsernameAttributes=["email"])["UserPool"]["Id"]
    cognito.create_group(UserPoolId=pool, GroupName=ADMIN_GROUP)
    return str(pool)


def _console_sign_in(cognito: Any, pool: str, email: str) -> str:
    """A sign-in made outside the API (the console), with a verified email; its sub."""
    attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
    made = cognito.admin_create_user(
        UserPoolId=pool, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
    )
    return next(str(a["Value"]) for a in made["User"]["Attributes"] if a["Name"] == "sub")


def measure() -> Measurement:
    """Run each operation once against moto and record the DynamoDB calls it makes."""
    from chalice import Response  # type: ignore[attr-defined]

    from chalicelib.bootstrap import wire
    from chalicelib.config import load_settings
    from chalicelib.domain.models import NewUser, UserChanges, public_user
    from chalicelib.domain.search import UserQuery
    from chalicelib.web import idempotency
    from chalicelib.web.inputs import PAGE_DEFAULT
    from chalicelib.web.responses import json_response

    result = Measurement()
    with emulated_aws() as (dynamodb, s3, cognito):
        pool = _user_pool(cognito)
        # Wired as the app wires itself, on the emulator's clients.
        environment = {
            "STAGE": "test",
            "TABLE_NAME": TABLE,
            "AVATAR_BUCKET": BUCKET,
            "USER_POOL_ID": pool,
            "USER_POOL_CLIENT_ID": "bench",
            "CURSOR_SECRET": CURSOR_SECRET.decode(),
        }
        clients = {"dynamodb": dynamodb, "s3": s3, "cognito-idp": cognito}
        wiring = wire(load_settings(environment), clients=clients.__getitem__)
        service, store = wiring.service, wiring.idempotency
        recorder = CallRecorder()

        def table() -> dict[str, Any]:
            items = dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
            return {item["userId"]["S"]: item for item in items}

        def counted(key: str, action: Callable[[], object]) -> None:
            dynamodb.meta.events.unregister("before-call.dynamodb", recorder)
            before = table()
            dynamodb.meta.events.register("before-call.dynamodb", recorder)
            recorder.take()
            action()
            result.calls[key] = recorder.take()
            dynamodb.meta.events.unregister("before-call.dynamodb", recorder)
            result.index_writes[key] = index_write_units(before, table())
            dynamodb.meta.events.register("before-call.dynamodb", recorder)

        dynamodb.meta.events.register("before-call.dynamodb", recorder)
        dynamodb.meta.events.register("after-call.dynamodb", recorder.returned)
        try:
            ada: list[Any] = []
            counted("create", lambda: ada.append(service.create_user(NewUser("Ada Lovelace", "ada@example.com"))))
            user_id = ada[0].user_id
            counted("get", lambda: service.get_user(user_id))
            counted("update", lambda: service.update_user(user_id, UserChanges(name="Ada King", phone="+14155550100")))
            counted("update_same_email", lambda: service.update_user(user_id, UserChanges(email="ADA@example.com")))
            counted("email_change", lambda: service.update_user(user_id, UserChanges(email="ada.king@example.com")))
            # More users than a default page, so the first page hands out a cursor.
            for n in range(PAGE_DEFAULT + 1):
                service.create_user(NewUser(f"User {n}", f"user{n}@example.com", "+14155550101"))
            pages: list[str | None] = []
            everyone = UserQuery()
            counted("list_page", lambda: pages.append(service.list_users(everyone, PAGE_DEFAULT, None, "bench")[1]))
            if pages[0] is None:
                raise RuntimeError("the first page of the listing handed out no cursor")
            counted("list_next_page", lambda: service.list_users(everyone, PAGE_DEFAULT, pages[0], "bench"))
            one_state = UserQuery(role="member", enabled=True)
            counted("list_one_state", lambda: service.list_users(one_state, PAGE_DEFAULT, None, "bench"))
            by_email = UserQuery(email="USER7@example.com")
            counted("find_by_email", lambda: service.list_users(by_email, PAGE_DEFAULT, None, "bench"))
            counted("delete", lambda: service.delete_user(user_id))

            # A sign-in made outside the API: its first PUT /users/me makes its record.
            sub = _console_sign_in(cognito, pool, "grace@example.com")
            counted("profile_create", lambda: service.put_profile(sub, UserChanges(name="Grace")))
            counted("profile_update", lambda: service.put_profile(sub, UserChanges(name="G.")))

            body = {"name": "Edsger", "email": "edsger@example.com"}

            def create(token: str) -> Response:
                user = service.create_user(NewUser(body["name"], body["email"]), token=token)
                return json_response(public_user(user), 201)

            def idempotent() -> Response:
                return idempotency.run_once(store, sub, "bench-key-1", "createUser", {"body": body}, create)

            counted("idempotent_create", idempotent)
            counted("idempotent_replay", idempotent)

            from chalicelib.domain.access import Identity

            check = wiring.standing
            check.clear()  # a container that has not served this caller yet
            caller = Identity(sub, frozenset(), issued_at=2_000_000_000)
            counted("revocation_cold", lambda: check.confirm(caller))
            counted("revocation_warm", lambda: [check.confirm(caller) for _ in range(10)])
        finally:
            dynamodb.meta.events.unregister("before-call.dynamodb", recorder)
            dynamodb.meta.events.unregister("after-call.dynamodb", recorder.returned)

        items = dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        users = [item_bytes(item) for item in items if "listingId" in item]
        result.user_item_bytes = max(users)
        result.largest_item_bytes = max(item_bytes(item) for item in items)
    return result


def _largest_possible_user_item() -> int:
    """A user item at the input limits, every name character taking 4 bytes in UTF-8 (an item past
    1 KB costs 2 write units, past 4 KB 2 read units)."""
    from chalicelib.adapters.dynamodb import user_to_item
    from chalicelib.domain.models import EMAIL_LOCAL_MAX, EMAIL_MAX, NAME_MAX, User, Write, new_write_token

    local = "a" * EMAIL_LOCAL_MAX  # emails are ASCII
    email = local + "@" + "e" * (EMAIL_MAX - EMAIL_LOCAL_MAX - 5) + ".com"
    stamp = "2025-01-01T00:00:00.000Z"
    user = User("f" * 36, "\U0001f600" * NAME_MAX, email, stamp, stamp, 999_999, "+123456789012345")
    # Every item also carries the tokens of the requests that created and last wrote it, and the writer's sub.
    return item_bytes(user_to_item(user, Write(new_write_token(), "f" * 36, stamp), created=True))


def store(measured: Measurement, into: dict[str, float]) -> None:
    """Put what the cost model prices into `into` (context.measured), under the keys documented above."""
    for op in OPERATIONS:
        reads, writes = measured.units(op.key)
        into[f"dynamodb.{op.key}.requests"] = len(measured.calls[op.key])
        into[f"dynamodb.{op.key}.read_units"] = reads
        into[f"dynamodb.{op.key}.write_units"] = writes
        into[f"dynamodb.{op.key}.index_write_units"] = measured.index_writes.get(op.key, 0.0)
    into["dynamodb.user_item_bytes"] = measured.user_item_bytes


def run(context: Context) -> list[Figure]:
    measured = measure()
    store(measured, context.measured)
    figures = []
    for op in OPERATIONS:
        calls = measured.calls[op.key]
        reads, writes = measured.units(op.key)
        index = measured.index_writes.get(op.key, 0.0)
        units = ", ".join(
            f"{n:g} {kind} unit{'' if n == 1 else 's'}" for n, kind in ((reads, "read"), (writes, "write")) if n
        )
        if index:
            units += f" ({index:g} of them in the indexes)"
        note = f"{op.what}: {' + '.join(call.describe() for call in calls)}; {units}"
        figures.append(
            Figure(
                section=SECTION,
                name=op.name,
                value=len(calls),
                unit="requests",
                target="" if op.target is None else f"= {op.target}",
                passed=None if op.target is None else len(calls) == op.target,
                note=note,
            )
        )
    largest = _largest_possible_user_item()
    figures.append(
        Figure(
            section=SECTION,
            name="user item size",
            value=measured.user_item_bytes,
            unit="bytes",
            note=(
                f"the DynamoDB size of the benchmark's users (largest item after the run: "
                f"{measured.largest_item_bytes} bytes). Units above: a strongly consistent GetItem is 1 read "
                f"unit up to 4 KB; a write 1 unit per KB, also when its condition fails; a transaction 2 units "
                f"per item, and each index an item enters, leaves or changes in 1 more per KB (2 when its key "
                f"there moves); "
                f"a listing page is eventually consistent Queries, 0.5 unit per 4 KB they return. "
                f"A user at the input limits with 4-byte characters in name and email is {largest} bytes, "
                f"so its writes would cost {math.ceil(largest / WRITE_UNIT_BYTES)} units per item."
            ),
        )
    )
    return figures
