"""The user repository on DynamoDB: every write is conditional, every operation one request
except those that must first read the email reservation key (email change, delete).

Every write is also safe to resend. botocore resends a request whose answer did not arrive
within the read timeout, and DynamoDB may have applied the first attempt. Each item records the
token of the API request that last wrote it (`writeToken`, and `createToken` for the one that
created it); every condition fails on an item our own token already wrote, and the failed
condition returns the stored item (`ReturnValuesOnConditionCheckFailure: ALL_OLD`), so a resend
recognises its own success and reports the stored result, at the cost of that one resent
request. Transactions also carry a `ClientRequestToken` derived from the same token, which
DynamoDB itself honours for ten minutes (the emulator ignores it, hence the tokens in the items).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.adapters.table_schema import (
    CREATED_ATTRIBUTE,
    DELETED_TTL_S,
    EMAIL_KEY_PREFIX,
    NAME_ATTRIBUTE,
    STATE_ATTRIBUTE,
    STATS_KEY_PREFIX,
    TTL_ATTRIBUTE,
)
from chalicelib.adapters.user_index import PageReader, search_attributes
from chalicelib.domain.errors import (
    ConcurrentModification,
    EmailAlreadyExists,
    LastAdmin,
    NoEmailChangePending,
    ServiceUnavailable,
    UserAlreadyExists,
    UserNotFound,
)
from chalicelib.domain.models import (
    MEMBER,
    NO_PRECONDITIONS,
    NO_RECORD,
    REMOVE,
    Preconditions,
    Revision,
    Standing,
    User,
    UserChanges,
    Write,
    apply_changes,
    email_key,
    epoch_seconds,
    later_than,
    tokens_valid_after,
)
from chalicelib.domain.repository import (
    ClockBehind,
    Deleted,
    EmailChangeRequired,
    PendingCode,
    StaleRecord,
    Stored,
    Unchanged,
    check_update,
)
from chalicelib.domain.search import SORT_CREATED, UserQuery, name_sort_key

Item = dict[str, dict[str, Any]]

logger = logging.getLogger("users_api.dynamodb")

# Cancellation reasons of a transaction that say "not now" rather than "condition failed".
_UNAVAILABLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
_FAILED = "ConditionalCheckFailed"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _reservation_key(key: str) -> Item:
    return {"userId": _s(EMAIL_KEY_PREFIX + key)}


def user_to_item(user: User, write: Write | None = None, created: bool = False) -> Item:
    """The item of `user`, stamped with the write that stores it (and, for a create, as its creator)."""
    item: Item = {
        "userId": _s(user.user_id),
        "listingId": _s(user.user_id),
        "name": _s(user.name),
        "email": _s(user.email),
        "emailKey": _s(email_key(user.email)),
        "createdAt": _s(user.created_at),
        "updatedAt": _s(user.updated_at),
        "version": _n(user.version),
    }
    if user.phone is not None:
        item["phone"] = _s(user.phone)
    item["role"] = _s(user.role)
    item["enabled"] = {"BOOL": user.enabled}
    # What the search indexes are keyed on (chalicelib/adapters/user_index.py).
    item.update({name: _s(value) for name, value in search_attributes(user).items()})
    if write is not None:
        item["writeToken"] = _s(write.token)
        item["writtenBy"] = _s(write.actor)
        if created:
            item["createToken"] = _s(write.token)
    return item


def item_to_user(item: Item) -> User | None:
    """The user an item holds, or None for anything else (a reservation, a deleted user's trace)."""
    if "listingId" not in item:
        return None
    return User(
        user_id=item["userId"]["S"],
        name=item["name"]["S"],
        email=item["email"]["S"],
        phone=item["phone"]["S"] if "phone" in item else None,
        created_at=item["createdAt"]["S"],
        updated_at=item["updatedAt"]["S"],
        version=int(item["version"]["N"]),
        # Records of earlier versions have neither: members, enabled.
        role=item.get("role", {}).get("S", MEMBER),
        enabled=item.get("enabled", {}).get("BOOL", True),
        pending_email=item[PENDING_EMAIL]["S"] if PENDING_EMAIL in item else None,
        pending_until=item[PENDING_UNTIL]["S"] if PENDING_UNTIL in item else None,
    )


def item_to_code(item: Item) -> PendingCode | None:
    if CODE_HASH not in item:
        return None
    return PendingCode(
        code_hash=item[CODE_HASH]["S"],
        salt=item.get(CODE_SALT, {}).get("S", ""),
        attempts=int(item.get(CODE_ATTEMPTS, {}).get("N", "0")),
        token=item.get(CODE_TOKEN, {}).get("S", ""),
    )


def item_to_standing(item: Item | None) -> Standing:
    if not item:
        return NO_RECORD
    if "listingId" not in item:
        return Standing(exists=True, deleted="deletedAt" in item, enabled=False)
    return Standing(
        exists=True,
        enabled=item.get("enabled", {}).get("BOOL", True),
        role=item.get("role", {}).get("S", MEMBER),
        tokens_valid_after=int(item.get(TOKENS_VALID_AFTER, {}).get("N", "0")),
    )


def item_to_deleted(item: Item) -> Deleted | None:
    if "deletedAt" not in item or "listingId" in item:
        return None
    return Deleted(
        user_id=item["userId"]["S"],
        token=item.get("writeToken", {}).get("S", ""),
        actor=item.get("writtenBy", {}).get("S", ""),
        at=item["deletedAt"]["S"],
    )


@dataclass
class Inventory:
    """Everything the table holds, decoded: what an operator's tool checks (ops/drift.py, the load
    test's audit). Read with a Scan, which the API's role may not make."""

    users: dict[str, User] = field(default_factory=dict)
    deleted: dict[str, Deleted] = field(default_factory=dict)
    reservations: dict[str, str] = field(default_factory=dict)  # email key -> the user id holding it
    admin_count: int = 0  # the stored count of enabled admins


def inventory_of(items: Iterable[Item]) -> Inventory:
    """The table's items, decoded; idempotency records hold no user data and are left out."""
    found = Inventory()
    for item in items:
        user_id = item["userId"]["S"]
        user, deleted = item_to_user(item), item_to_deleted(item)
        if user is not None:
            found.users[user.user_id] = user
        elif deleted is not None:
            found.deleted[deleted.user_id] = deleted
        elif user_id.startswith(EMAIL_KEY_PREFIX):
            found.reservations[user_id.removeprefix(EMAIL_KEY_PREFIX)] = item.get("ownerId", {}).get("S", "")
        elif item["userId"] == ADMIN_COUNT_KEY["userId"]:
            found.admin_count = int(item.get(ADMIN_COUNT, {}).get("N", "0"))
    return found


def _written_by(item: Item | None, token: str, attribute: str = "writeToken") -> bool:
    return bool(item) and item.get(attribute, {}).get("S") == token  # type: ignore[union-attr]


def _cancellation(exc: Exception) -> list[tuple[str, Item | None]]:
    """(code, item returned by the failed condition) per transaction item; re-raises anything
    that is not a cancelled transaction. A transaction throttled on one of its items is
    ServiceUnavailable, like a throttled call."""
    response = getattr(exc, "response", None) or {}
    reasons = [(str(r.get("Code", "None")), r.get("Item")) for r in response.get("CancellationReasons", [])]
    if aws.error_code(exc) != "TransactionCanceledException" or not reasons:
        raise exc
    if _UNAVAILABLE_REASONS.intersection(code for code, _ in reasons):
        raise ServiceUnavailable() from exc
    return reasons


class _Expression:
    """Placeholders of one expression: `name("version")` gives `#version`, `value(...)` a fresh `:vN`."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        self.names[f"#{attribute}"] = attribute
        return f"#{attribute}"

    def value(self, value: dict[str, Any]) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def is_revision(self, revisions: tuple[Revision, ...]) -> str:
        """`(version = v AND createdAt = c) OR ...`: the item is one of these revisions."""
        clauses = [
            f"{self.name('version')} = {self.value(_n(r.version))} AND "
            f"{self.name('createdAt')} = {self.value(_s(r.created_at))}"
            for r in revisions
        ]
        # DynamoDB refuses redundant parentheses, so only a disjunction gets them.
        return clauses[0] if len(clauses) == 1 else "(" + " OR ".join(f"({c})" for c in clauses) + ")"

    def not_written_by(self, token: str) -> str:
        """The item was not last written by this request (so a resend never applies twice)."""
        attribute = self.name("writeToken")
        return f"(attribute_not_exists({attribute}) OR {attribute} <> {self.value(_s(token))})"

    def arguments(self, condition: str) -> dict[str, Any]:
        out: dict[str, Any] = {"ConditionExpression": condition}
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


# A requested email change (PUT /users/me): the address and its key, until when it may be
# confirmed, and its code's salted hash, wrong attempts and requesting write token.
PENDING_EMAIL, PENDING_KEY, PENDING_UNTIL = "pendingEmail", "pendingEmailKey", "pendingUntil"
CODE_HASH, CODE_SALT, CODE_ATTEMPTS, CODE_TOKEN = (
    "emailCodeHash",
    "emailCodeSalt",
    "emailCodeAttempts",
    "emailCodeToken",
)
PENDING_ATTRIBUTES = (PENDING_EMAIL, PENDING_KEY, PENDING_UNTIL, CODE_HASH, CODE_SALT, CODE_ATTEMPTS, CODE_TOKEN)
# The latest sign-in action (its type, the stream's event type) and the write tokens of the
# recent ones, so a keyed retry of an action recognises it even after other writes.
ACTION_TYPE, ACTION_TOKEN, ACTION_TOKENS = "actionType", "actionToken", "actionTokens"
RECENT_ACTIONS = 5
# What a user item holds that its deletion removes (everything but its key and createToken).
USER_ATTRIBUTES = (
    "listingId",
    "name",
    "email",
    "emailKey",
    "phone",
    "role",
    "enabled",
    "createdAt",
    "updatedAt",
    "version",
    STATE_ATTRIBUTE,
    CREATED_ATTRIBUTE,
    NAME_ATTRIBUTE,
    *PENDING_ATTRIBUTES,
    ACTION_TYPE,
    ACTION_TOKEN,
    ACTION_TOKENS,
)
# Epoch seconds: tokens issued at or before it are refused (chalicelib/domain/revocation.py).
TOKENS_VALID_AFTER = "tokensValidAfter"
# The number of enabled admins, kept in the same transactions that change it, so a condition on it
# can keep the last one from being demoted, disabled or deleted, even by concurrent requests.
ADMIN_COUNT_KEY = {"userId": {"S": STATS_KEY_PREFIX + "enabledAdmins"}}
ADMIN_COUNT = "enabledAdmins"


def _deletion(write: Write, expr: _Expression) -> str:
    """The update that turns a user into the trace of its deletion: no `listingId` (so no
    listing, read or update sees a user), the delete's token (so its resend recognises it) and
    actor, expired by TTL. `createToken` stays, so a resent create cannot bring the user back."""
    removes = ", ".join(expr.name(attribute) for attribute in USER_ATTRIBUTES)
    sets = [
        f"{expr.name('deletedAt')} = {expr.value(_s(write.at))}",
        f"{expr.name('writeToken')} = {expr.value(_s(write.token))}",
        f"{expr.name('writtenBy')} = {expr.value(_s(write.actor))}",
        f"{expr.name(TTL_ATTRIBUTE)} = {expr.value(_n(epoch_seconds(write.at) + DELETED_TTL_S))}",
    ]
    return f"SET {', '.join(sets)} REMOVE {removes}"


def _update_expression(
    user_id: str,
    changes: UserChanges,
    write: Write,
    expr: _Expression,
    new_email_key: str | None = None,
    updated: User | None = None,
    clear_pending: bool = False,
) -> str:
    """SET/REMOVE of an update: the changed fields, a new version and the write's stamp (and
    the new email key when the email moves to another one), and the search keys the change moves
    (a new name its name key; a new role or state, given the `updated` user, its partition)."""
    sets = [
        f"{expr.name('updatedAt')} = {expr.value(_s(write.at))}",
        f"{expr.name('version')} = {expr.name('version')} + {expr.value(_n(1))}",
        f"{expr.name('writeToken')} = {expr.value(_s(write.token))}",
        f"{expr.name('writtenBy')} = {expr.value(_s(write.actor))}",
    ]
    removes: list[str] = []
    if changes.name is not None:
        sets.append(f"{expr.name('name')} = {expr.value(_s(changes.name))}")
    if updated is not None:
        # The whole record is known (a change conditioned on the revision read): all its search
        # keys, so a user an earlier release wrote is fully indexed by its first change here.
        sets += [f"{expr.name(name)} = {expr.value(_s(value))}" for name, value in search_attributes(updated).items()]
    elif changes.name is not None:
        sets.append(f"{expr.name(NAME_ATTRIBUTE)} = {expr.value(_s(name_sort_key(changes.name, user_id)))}")
    if changes.email is not None:
        sets.append(f"{expr.name('email')} = {expr.value(_s(changes.email))}")
    if new_email_key is not None:
        sets.append(f"{expr.name('emailKey')} = {expr.value(_s(new_email_key))}")
    if changes.role is not None:
        sets.append(f"{expr.name('role')} = {expr.value(_s(changes.role))}")
    if changes.enabled is not None:
        sets.append(f"{expr.name('enabled')} = {expr.value({'BOOL': changes.enabled})}")
    if changes.touches_standing:
        if updated is None:
            raise ValueError("a role or enabled change needs the updated user (its partition)")
        # Every token issued until now was issued for the old role or state: refused from here on.
        sets.append(f"{expr.name(TOKENS_VALID_AFTER)} = {expr.value(_n(tokens_valid_after(write.at)))}")
    if changes.phone is REMOVE:
        removes.append(expr.name("phone"))
    elif isinstance(changes.phone, str):
        sets.append(f"{expr.name('phone')} = {expr.value(_s(changes.phone))}")
    if clear_pending:
        removes += [expr.name(attribute) for attribute in PENDING_ATTRIBUTES]
    return "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")


def _differs(changes: UserChanges, expr: _Expression) -> str:
    """The item holds another value for at least one field of an update, so an update that would
    change nothing writes nothing (no version, no stream record, no event)."""
    clauses = []
    if changes.name is not None:
        clauses.append(f"{expr.name('name')} <> {expr.value(_s(changes.name))}")
    if changes.email is not None:
        clauses.append(f"{expr.name('email')} <> {expr.value(_s(changes.email))}")
    if changes.phone is REMOVE:
        clauses.append(f"attribute_exists({expr.name('phone')})")
    elif isinstance(changes.phone, str):
        phone = expr.name("phone")
        clauses += [f"attribute_not_exists({phone})", f"{phone} <> {expr.value(_s(changes.phone))}"]
    # DynamoDB refuses redundant parentheses, so only a disjunction gets them.
    return clauses[0] if len(clauses) == 1 else "(" + " OR ".join(clauses) + ")"


def _unchanged(current: User, changes: UserChanges) -> bool:
    return changes.against(current).is_empty()


def _precondition(preconditions: Preconditions, expr: _Expression) -> str:
    """The If-Match / If-None-Match revisions as clauses of the write's own condition ('' for none)."""
    clauses = []
    if preconditions.if_match is not None:
        clauses.append(expr.is_revision(preconditions.if_match))
    if preconditions.if_none_match:
        revisions = expr.is_revision(preconditions.if_none_match)
        # NOT binds tighter than AND: one revision's "a AND b" needs its parentheses here.
        clauses.append(f"NOT {revisions}" if len(preconditions.if_none_match) > 1 else f"NOT ({revisions})")
    return "".join(f" AND {clause}" for clause in clauses)


def _request_token(write: Write, items: list[dict[str, Any]]) -> str:
    """A ClientRequestToken for one transaction of this request: the same for a resend (same
    items), another for any other transaction, which DynamoDB would refuse under a reused token."""
    content = json.dumps(items, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{write.token}\n{content}".encode()).hexdigest()[:36]


def _admin_count(table: str, delta: int) -> dict[str, Any]:
    """A transaction item moving the enabled-admin count by `delta`; a decrement only while
    another enabled admin remains."""
    update: dict[str, Any] = {
        "TableName": table,
        "Key": ADMIN_COUNT_KEY,
        "UpdateExpression": "ADD #count :delta",
        "ExpressionAttributeNames": {"#count": ADMIN_COUNT},
        "ExpressionAttributeValues": {":delta": _n(delta)},
    }
    if delta < 0:
        update["ConditionExpression"] = "#count > :one"
        update["ExpressionAttributeValues"][":one"] = _n(1)
    return {"Update": update}


def _reserve_email(table: str, key: str, owner: str, now: str, pending_until: str | None = None) -> dict[str, Any]:
    """A transaction item taking the reservation of an email key for `owner` (until `pending_until`
    for a requested change, after which it is free again and TTL removes it): refused while
    another owner holds it, for good or pending and not expired at `now`."""
    item: Item = {**_reservation_key(key), "ownerId": _s(owner)}
    if pending_until is not None:
        item[PENDING_UNTIL] = _s(pending_until)
        item[TTL_ATTRIBUTE] = _n(epoch_seconds(pending_until) + 1)
    return {
        "Put": {
            "TableName": table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(userId) OR ownerId = :owner OR #until < :now",
            "ExpressionAttributeNames": {"#until": PENDING_UNTIL},
            "ExpressionAttributeValues": {":owner": _s(owner), ":now": _s(now)},
        }
    }


def _release_email(table: str, key: str, owner: str) -> dict[str, Any]:
    """A transaction item releasing `owner`'s reservation of an email key; only its own, and a
    missing one is not an error."""
    return {
        "Delete": {
            "TableName": table,
            "Key": _reservation_key(key),
            "ConditionExpression": "attribute_not_exists(userId) OR ownerId = :owner",
            "ExpressionAttributeValues": {":owner": _s(owner)},
        }
    }


def _own_result(stored: Item | None, token: str, attribute: str = "writeToken") -> User | None:
    """The user a failed condition returned, if this request's own earlier attempt wrote it."""
    return item_to_user(stored or {}) if _written_by(stored, token, attribute) else None


class DynamoUserRepository(aws.ClientHolder):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None):
        super().__init__(client)
        self._table = table_name

    def _transact(self, write: Write, items: list[dict[str, Any]]) -> None:
        self._call("transact_write_items", TransactItems=items, ClientRequestToken=_request_token(write, items))

    def _get_item(self, user_id: str) -> Item | None:
        result = self._call("get_item", TableName=self._table, Key={"userId": _s(user_id)}, ConsistentRead=True)
        item: Item | None = result.get("Item")
        return item

    def get(self, user_id: str) -> User | None:
        item = self._get_item(user_id)
        return item_to_user(item) if item else None

    def read(self, user_id: str) -> Stored | None:
        item = self._get_item(user_id)
        user = item_to_user(item) if item else None
        if user is None:
            return None
        assert item is not None
        actions = tuple(str(token["S"]) for token in item.get(ACTION_TOKENS, {}).get("L", []))
        return Stored(user, item.get("writeToken", {}).get("S", ""), actions, item_to_code(item))

    def find(self, user_id: str) -> User | Deleted | None:
        item = self._get_item(user_id)
        if not item:
            return None
        return item_to_user(item) or item_to_deleted(item)

    def standing(self, user_id: str) -> Standing:
        # Eventually consistent (half a read unit): a change reaches the check within the cache's
        # time plus replication lag, and only what the check needs is returned.
        result = self._call(
            "get_item",
            TableName=self._table,
            Key={"userId": _s(user_id)},
            ProjectionExpression="listingId, deletedAt, #enabled, #role, tokensValidAfter",
            ExpressionAttributeNames={"#enabled": "enabled", "#role": "role"},
        )
        return item_to_standing(result.get("Item"))

    def create(self, user: User, write: Write) -> User:
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": user_to_item(user, write, created=True),
                    # Nothing under this id, not even a deleted user's trace: ids are Cognito subs,
                    # never reused, so a trace means this very user was deleted (and a late resend
                    # of its create, or a request its revoked token still got in, must not bring
                    # it back).
                    "ConditionExpression": "attribute_not_exists(userId)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            _reserve_email(self._table, email_key(user.email), user.user_id, write.at),
        ]
        if user.is_active_admin:
            items.append(_admin_count(self._table, 1))
        try:
            self._transact(write, items)
        except ClientError as exc:
            (user_code, stored), (email_code, _) = _cancellation(exc)[:2]
            if user_code == _FAILED:
                recognised = _own_result(stored, write.token, "createToken")
                if recognised is not None:
                    return recognised  # our own earlier attempt created it
                raise UserAlreadyExists() from exc
            if email_code == _FAILED:
                raise EmailAlreadyExists() from exc
            raise ServiceUnavailable() from exc  # TransactionConflict and the like: retryable
        return user

    def update(
        self,
        user_id: str,
        changes: UserChanges,
        write: Write,
        *,
        expect_email_key: str | None = None,
        preconditions: Preconditions = NO_PRECONDITIONS,
    ) -> User:
        check_update(changes, expect_email_key, preconditions)
        expr = _Expression()
        update = _update_expression(user_id, changes, write, expr)
        updated_at = expr.name("updatedAt")
        condition = (
            f"attribute_exists({expr.name('listingId')}) AND {expr.not_written_by(write.token)}"
            f" AND {_differs(changes, expr)} AND {updated_at} < {expr.value(_s(write.at))}"
        )
        if expect_email_key is not None:
            condition += f" AND {expr.name('emailKey')} = {expr.value(_s(expect_email_key))}"
        condition += _precondition(preconditions, expr)
        try:
            result = self._call(
                "update_item",
                TableName=self._table,
                Key={"userId": _s(user_id)},
                UpdateExpression=update,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expr.arguments(condition),
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item")
            current = item_to_user(old) if old else None
            if current is None:
                raise UserNotFound() from exc
            if _written_by(old, write.token):
                return current  # our own earlier attempt applied this very request
            refusal = preconditions.refusal(current.revision)
            if refusal is not None:
                raise refusal from exc
            if expect_email_key is not None and email_key(current.email) != expect_email_key:
                raise EmailChangeRequired(current) from exc
            if _unchanged(current, changes):
                raise Unchanged(current) from exc
            if current.updated_at >= write.at:
                raise ClockBehind(current) from exc
            # The returned item is the one the condition was evaluated against, so this is unreachable
            # unless the condition and these checks disagree: never guess which write it was.
            logger.error("an update's condition failed for no reason the stored item shows")
            raise ConcurrentModification() from exc
        updated = item_to_user(result["Attributes"])
        assert updated is not None
        return updated

    def change(self, current: User, changes: UserChanges, write: Write) -> User:
        write = replace(write, at=later_than(write.at, current.updated_at))
        updated = apply_changes(current, changes, write.at)
        old_key, new_key = email_key(current.email), email_key(updated.email)
        expr = _Expression()
        # An admin's new email ends the change the user asked for (its reservation released).
        pending_key = email_key(current.pending_email) if current.pending_email and new_key != old_key else None
        # An update, not a put, so what the item holds besides the user (createToken) stays.
        update = _update_expression(
            current.user_id,
            changes,
            write,
            expr,
            new_key if new_key != old_key else None,
            updated,
            pending_key is not None,
        )
        condition = f"{expr.is_revision((current.revision,))} AND {expr.not_written_by(write.token)}"
        # Each item with what its failed condition means.
        items: list[tuple[str, dict[str, Any]]] = [
            (
                "user",
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"userId": _s(current.user_id)},
                        "UpdateExpression": update,
                        **expr.arguments(condition),
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            )
        ]
        if new_key != old_key:
            items += [
                ("old email", _release_email(self._table, old_key, current.user_id)),
                ("new email", _reserve_email(self._table, new_key, current.user_id, write.at)),
            ]
            if pending_key is not None and pending_key not in (new_key, old_key):
                items.append(("pending email", _release_email(self._table, pending_key, current.user_id)))
        delta = int(updated.is_active_admin) - int(current.is_active_admin)
        if delta:
            items.append(("admins", _admin_count(self._table, delta)))
        try:
            self._transact(write, [item for _, item in items])
        except ClientError as exc:
            reasons = _cancellation(exc)
            failed = {label for (label, _), (code, _) in zip(items, reasons, strict=True) if code == _FAILED}
            recognised = _own_result(reasons[0][1], write.token) if "user" in failed else None
            if recognised is not None:
                return recognised  # our own earlier attempt made this change
            if "new email" in failed:
                raise EmailAlreadyExists() from exc
            if "user" not in failed and "admins" in failed:
                raise LastAdmin() from exc
            raise StaleRecord() from exc
        return updated

    def delete(self, current: User, write: Write) -> None:
        write = replace(write, at=later_than(write.at, current.updated_at))
        expr = _Expression()
        deletion = _deletion(write, expr)
        condition = f"{expr.is_revision((current.revision,))} AND {expr.not_written_by(write.token)}"
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"userId": _s(current.user_id)},
                    "UpdateExpression": deletion,
                    **expr.arguments(condition),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            _release_email(self._table, email_key(current.email), current.user_id),
        ]
        if current.is_active_admin:
            items.append(_admin_count(self._table, -1))
        pending = email_key(current.pending_email) if current.pending_email else None
        if pending is not None and pending != email_key(current.email):
            items.append(_release_email(self._table, pending, current.user_id))
        try:
            self._transact(write, items)
        except ClientError as exc:
            reasons = _cancellation(exc)
            if reasons[0][0] == _FAILED and _written_by(reasons[0][1], write.token):
                return  # our own earlier attempt deleted it
            if reasons[0][0] != _FAILED and current.is_active_admin and reasons[2][0] == _FAILED:
                raise LastAdmin() from exc
            raise StaleRecord() from exc

    # --- sign-in actions and the user's own email change ---

    def _stamp(self, write: Write, expr: _Expression) -> list[str]:
        """What every write of a new version sets: its time, the version, who and which request."""
        return [
            f"{expr.name('updatedAt')} = {expr.value(_s(write.at))}",
            f"{expr.name('version')} = {expr.name('version')} + {expr.value(_n(1))}",
            f"{expr.name('writeToken')} = {expr.value(_s(write.token))}",
            f"{expr.name('writtenBy')} = {expr.value(_s(write.actor))}",
        ]

    def _user_update(self, current: User, write: Write, expr: _Expression, update: str) -> dict[str, Any]:
        """A transaction item updating the user, conditioned on the revision read and on not being
        this request's own earlier write (whose failed condition then returns it)."""
        condition = f"{expr.is_revision((current.revision,))} AND {expr.not_written_by(write.token)}"
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"userId": _s(current.user_id)},
                "UpdateExpression": update,
                **expr.arguments(condition),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _transact_own(self, write: Write, items: list[dict[str, Any]], refused: Exception | None = None) -> User | None:
        """Write `items` (the user's update first, a reservation second) in one transaction. None:
        written. A resend whose first try was applied gets that user back; a refused reservation
        raises `refused`; anything else is a record changed meanwhile (StaleRecord)."""
        try:
            self._transact(write, items)
        except ClientError as exc:
            reasons = _cancellation(exc)
            recognised = _own_result(reasons[0][1], write.token)
            if recognised is not None:
                return recognised
            if refused is not None and reasons[0][0] != _FAILED and reasons[1][0] == _FAILED:
                raise refused from exc
            raise StaleRecord() from exc
        return None

    def record_action(self, stored: Stored, action: str, write: Write, *, revoke: bool) -> User:
        current = stored.user
        write = replace(write, at=later_than(write.at, current.updated_at))
        expr = _Expression()
        recent = [*stored.action_tokens[-(RECENT_ACTIONS - 1) :], write.token]
        sets = [
            *self._stamp(write, expr),
            f"{expr.name(ACTION_TYPE)} = {expr.value(_s(action))}",
            f"{expr.name(ACTION_TOKEN)} = {expr.value(_s(write.token))}",
            f"{expr.name(ACTION_TOKENS)} = {expr.value({'L': [_s(token) for token in recent]})}",
        ]
        if revoke:
            sets.append(f"{expr.name(TOKENS_VALID_AFTER)} = {expr.value(_n(tokens_valid_after(write.at)))}")
        item = self._user_update(current, write, expr, "SET " + ", ".join(sets))
        recognised = self._transact_own(write, [item])
        if recognised is not None:
            return recognised
        return replace(current, updated_at=write.at, version=current.version + 1)

    def request_email(self, current: User, email: str, code: PendingCode, until: str, write: Write) -> User:
        write = replace(write, at=later_than(write.at, current.updated_at))
        new_key = email_key(email)
        expr = _Expression()
        sets = [
            *self._stamp(write, expr),
            f"{expr.name(PENDING_EMAIL)} = {expr.value(_s(email))}",
            f"{expr.name(PENDING_KEY)} = {expr.value(_s(new_key))}",
            f"{expr.name(PENDING_UNTIL)} = {expr.value(_s(until))}",
            f"{expr.name(CODE_HASH)} = {expr.value(_s(code.code_hash))}",
            f"{expr.name(CODE_SALT)} = {expr.value(_s(code.salt))}",
            f"{expr.name(CODE_ATTEMPTS)} = {expr.value(_n(0))}",
            f"{expr.name(CODE_TOKEN)} = {expr.value(_s(write.token))}",
        ]
        items = [
            self._user_update(current, write, expr, "SET " + ", ".join(sets)),
            _reserve_email(self._table, new_key, current.user_id, write.at, until),
        ]
        previous = email_key(current.pending_email) if current.pending_email else None
        if previous is not None and previous not in (new_key, email_key(current.email)):
            items.append(_release_email(self._table, previous, current.user_id))
        recognised = self._transact_own(write, items, EmailAlreadyExists())
        if recognised is not None:
            return recognised
        return replace(
            current, updated_at=write.at, version=current.version + 1, pending_email=email, pending_until=until
        )

    def count_wrong_code(self, current: User, attempts: int, write: Write) -> None:
        expr = _Expression()
        tried = expr.name("emailCodeTried")
        update = (
            f"SET {expr.name(CODE_ATTEMPTS)} = {expr.value(_n(attempts + 1))}, {tried} = {expr.value(_s(write.token))}"
        )
        condition = (
            f"{expr.is_revision((current.revision,))} AND {expr.name(CODE_ATTEMPTS)} = {expr.value(_n(attempts))}"
            f" AND (attribute_not_exists({tried}) OR {tried} <> {expr.value(_s(write.token))})"
        )
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key={"userId": _s(current.user_id)},
                UpdateExpression=update,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expr.arguments(condition),
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            if _written_by(exc.response.get("Item"), write.token, "emailCodeTried"):
                return  # a resend of our own counted attempt
            raise StaleRecord() from exc

    def confirm_email(self, current: User, write: Write) -> User:
        if current.pending_email is None:
            raise NoEmailChangePending()
        write = replace(write, at=later_than(write.at, current.updated_at))
        updated = apply_changes(current, UserChanges(email=current.pending_email), write.at)
        old_key, new_key = email_key(current.email), email_key(updated.email)
        expr = _Expression()
        changes = UserChanges(email=updated.email)
        update = _update_expression(current.user_id, changes, write, expr, new_key, updated, clear_pending=True)
        # Every token issued until now carries the old address: refused from here on.
        update = update.replace(
            "SET ", f"SET {expr.name(TOKENS_VALID_AFTER)} = {expr.value(_n(tokens_valid_after(write.at)))}, ", 1
        )
        items: list[dict[str, Any]] = [
            self._user_update(current, write, expr, update),
            {
                # The pending reservation becomes theirs for good, if it still is theirs.
                "Put": {
                    "TableName": self._table,
                    "Item": {**_reservation_key(new_key), "ownerId": _s(current.user_id)},
                    "ConditionExpression": "ownerId = :owner",
                    "ExpressionAttributeValues": {":owner": _s(current.user_id)},
                }
            },
        ]
        if old_key != new_key:
            items.append(_release_email(self._table, old_key, current.user_id))
        # Refused reservation: the change expired, and another user took the address.
        recognised = self._transact_own(write, items, NoEmailChangePending())
        return recognised if recognised is not None else updated

    def find_by_email(self, key: str) -> User | None:
        # The reservation names the owner; both reads strongly consistent, so a user is found as
        # soon as its create has answered (the indexes lag behind their table).
        result = self._call("get_item", TableName=self._table, Key=_reservation_key(key), ConsistentRead=True)
        owner = result.get("Item", {}).get("ownerId", {}).get("S")
        if owner is None:
            return None
        user = self.get(owner)
        # A reservation and its owner change in one transaction; checked all the same.
        return user if user is not None and email_key(user.email) == key else None

    def search(self, query: UserQuery, limit: int, after: str | None) -> tuple[list[User], str | None]:
        reader = PageReader(self._table, self._query_index, item_to_user)
        return reader.page(query, limit, after)

    def _query_index(self, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self._call("query", **kwargs)
        except ClientError as exc:
            # While an upgrade adds the indexes (docs/DEPLOY.md), one may not exist yet or still be
            # backfilling: the search is unavailable for now, not a bad request. DynamoDB says so
            # with a ValidationException ("does not have the specified index", "Cannot read from
            # backfilling global secondary index"); the emulator with a ResourceNotFoundException.
            message = str(exc.response.get("Error", {}).get("Message", ""))
            unavailable = aws.error_code(exc) in ("ValidationException", "ResourceNotFoundException")
            if unavailable and "index" in message.lower():
                logger.warning("search index %s unavailable: %s", kwargs.get("IndexName"), message)
                raise ServiceUnavailable() from exc
            raise
        return result

    def list_page(self, limit: int, after: str | None) -> tuple[list[User], str | None]:
        return self.search(UserQuery(sort=SORT_CREATED), limit, after)

    # --- operators' tools (their credentials: the API's role may neither scan nor set the count) ---

    def inventory(self) -> Inventory:
        """Every item of the table, read consistently a page at a time, decoded."""
        items: list[Item] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            page = self._call("scan", **kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return inventory_of(items)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def set_admin_count(self, count: int, was: int) -> None:
        """Store the count of enabled admins as counted from the records (a repair: `make drift
        FIX=1`), only while the stored count is still `was` (an absent count is 0): an admin change
        that lands between the count and this write moved it, and must not be overwritten; the
        repair's next run counts again. Storing `count` again is a resend's success, not a race."""
        condition = "#count IN (:was, :count)" + (" OR attribute_not_exists(#count)" if was == 0 else "")
        try:
            self._call(
                "put_item",
                TableName=self._table,
                Item={**ADMIN_COUNT_KEY, ADMIN_COUNT: _n(count)},
                ConditionExpression=condition,
                ExpressionAttributeNames={"#count": ADMIN_COUNT},
                ExpressionAttributeValues={":was": _n(was), ":count": _n(count)},
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            raise ConcurrentModification() from exc
