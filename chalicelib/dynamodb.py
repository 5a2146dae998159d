"""The user repository on DynamoDB: every write is conditional, every operation one request
except those that must first read the email reservation key (email change, delete)."""

from __future__ import annotations

from typing import Any

from chalicelib import aws
from chalicelib.errors import (
    EmailAlreadyExists,
    PreconditionFailed,
    ServiceUnavailable,
    UserAlreadyExists,
    UserNotFound,
)
from chalicelib.models import REMOVE, Revision, User, UserChanges, apply_changes, email_key
from chalicelib.repository import EmailChangeRequired, StaleRecord
from chalicelib.table_schema import EMAIL_KEY_PREFIX, LISTING_INDEX

Item = dict[str, dict[str, Any]]

# Errors that mean "DynamoDB could not serve this now" after botocore's own retries.
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
# Cancellation reasons of a transaction that say "not now" rather than "condition failed".
_UNAVAILABLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _reservation_key(key: str) -> Item:
    return {"userId": _s(EMAIL_KEY_PREFIX + key)}


def user_to_item(user: User) -> Item:
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
    return item


def item_to_user(item: Item) -> User | None:
    """The user an item holds, or None for anything else (such as a reservation)."""
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
    )


def _cancelled(exc: Exception) -> list[str]:
    """The cancellation reasons of a cancelled transaction; re-raises anything else.

    A transaction throttled on one of its items is ServiceUnavailable, like a throttled call.
    """
    response = getattr(exc, "response", None) or {}
    codes = [str(reason.get("Code", "None")) for reason in response.get("CancellationReasons", [])]
    if aws.error_code(exc) != "TransactionCanceledException" or not codes:
        raise exc
    if _UNAVAILABLE_REASONS.intersection(codes):
        raise ServiceUnavailable() from exc
    return codes


def _revision_condition(revisions: tuple[Revision, ...], names: dict[str, str], values: dict[str, Any]) -> str:
    """`(version = v AND createdAt = c) OR ...`: the item is one of these revisions."""
    names.update({"#version": "version", "#createdAt": "createdAt"})
    clauses = []
    for index, revision in enumerate(revisions):
        values[f":rv{index}"] = _n(revision.version)
        values[f":rc{index}"] = _s(revision.created_at)
        clauses.append(f"#version = :rv{index} AND #createdAt = :rc{index}")
    # DynamoDB refuses redundant parentheses, so only a disjunction gets them.
    if len(clauses) == 1:
        return clauses[0]
    return "(" + " OR ".join(f"({clause})" for clause in clauses) + ")"


def _is_revision(revision: Revision) -> dict[str, Any]:
    """Condition arguments of a transaction item: the stored item is exactly this revision."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    return {
        "ConditionExpression": _revision_condition((revision,), names, values),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def call(client: Any, operation: str, **kwargs: Any) -> Any:
    """One DynamoDB call; throttling, 5xx, timeouts and connection failures that outlast
    botocore's retries become ServiceUnavailable."""
    return aws.call(client, operation, _UNAVAILABLE_CODES, **kwargs)


class DynamoUserRepository(aws.ClientHolder):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None):
        super().__init__(client)
        self._table = table_name

    def _call(self, operation: str, **kwargs: Any) -> Any:
        return call(self.client, operation, **kwargs)

    def get(self, user_id: str) -> User | None:
        result = self._call("get_item", TableName=self._table, Key={"userId": _s(user_id)}, ConsistentRead=True)
        item = result.get("Item")
        return item_to_user(item) if item else None

    def create(self, user: User) -> None:
        from botocore.exceptions import ClientError

        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": user_to_item(user),
                            "ConditionExpression": "attribute_not_exists(userId)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {**_reservation_key(email_key(user.email)), "ownerId": _s(user.user_id)},
                            "ConditionExpression": "attribute_not_exists(userId)",
                        }
                    },
                ],
            )
        except ClientError as exc:
            codes = _cancelled(exc)
            if codes[0] == "ConditionalCheckFailed":
                raise UserAlreadyExists() from exc
            if codes[1] == "ConditionalCheckFailed":
                raise EmailAlreadyExists() from exc
            raise ServiceUnavailable() from exc  # TransactionConflict and the like: retryable

    def update(
        self,
        user_id: str,
        changes: UserChanges,
        now: str,
        *,
        expect_email_key: str | None = None,
        expected: tuple[Revision, ...] | None = None,
    ) -> User:
        from botocore.exceptions import ClientError

        if expected is not None and not expected:
            raise PreconditionFailed()

        names = {"#updatedAt": "updatedAt", "#version": "version"}
        values: dict[str, Any] = {":now": _s(now), ":one": _n(1)}
        sets = ["#updatedAt = :now", "#version = #version + :one"]
        removes: list[str] = []
        if changes.name is not None:
            names["#name"] = "name"
            values[":name"] = _s(changes.name)
            sets.append("#name = :name")
        if changes.email is not None:
            # Same key, maybe another spelling (case): the reservation stays valid.
            names["#email"] = "email"
            values[":email"] = _s(changes.email)
            sets.append("#email = :email")
        if changes.phone is REMOVE:
            names["#phone"] = "phone"
            removes.append("#phone")
        elif isinstance(changes.phone, str):
            names["#phone"] = "phone"
            values[":phone"] = _s(changes.phone)
            sets.append("#phone = :phone")
        condition = "attribute_exists(listingId)"
        if expect_email_key is not None:
            names["#emailKey"] = "emailKey"
            values[":emailKey"] = _s(expect_email_key)
            condition += " AND #emailKey = :emailKey"
        if expected is not None:
            condition += " AND " + _revision_condition(expected, names, values)
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            result = self._call(
                "update_item",
                TableName=self._table,
                Key={"userId": _s(user_id)},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item")
            current = item_to_user(old) if old else None
            if current is None:
                raise UserNotFound() from exc
            if expected is not None and current.revision not in expected:
                raise PreconditionFailed() from exc
            raise EmailChangeRequired(current) from exc
        updated = item_to_user(result["Attributes"])
        assert updated is not None
        return updated

    def change_email(self, current: User, changes: UserChanges, now: str) -> User:
        from botocore.exceptions import ClientError

        updated = apply_changes(current, changes, now)
        old_key, new_key = email_key(current.email), email_key(updated.email)
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": user_to_item(updated),
                    **_is_revision(current.revision),
                }
            }
        ]
        if new_key != old_key:
            items += [
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": _reservation_key(old_key),
                        # Releases only our own reservation; a missing one is not an error.
                        "ConditionExpression": "attribute_not_exists(userId) OR ownerId = :owner",
                        "ExpressionAttributeValues": {":owner": _s(current.user_id)},
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {**_reservation_key(new_key), "ownerId": _s(current.user_id)},
                        "ConditionExpression": "attribute_not_exists(userId)",
                    }
                },
            ]
        try:
            self._call("transact_write_items", TransactItems=items)
        except ClientError as exc:
            codes = _cancelled(exc)
            if len(codes) == 3 and codes[2] == "ConditionalCheckFailed":
                raise EmailAlreadyExists() from exc
            raise StaleRecord() from exc
        return updated

    def delete(self, current: User) -> None:
        from botocore.exceptions import ClientError

        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": {"userId": _s(current.user_id)},
                            **_is_revision(current.revision),
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": _reservation_key(email_key(current.email)),
                            "ConditionExpression": "attribute_not_exists(userId) OR ownerId = :owner",
                            "ExpressionAttributeValues": {":owner": _s(current.user_id)},
                        }
                    },
                ],
            )
        except ClientError as exc:
            _cancelled(exc)
            raise StaleRecord() from exc

    def list_page(self, limit: int, after: str | None) -> tuple[list[User], str | None]:
        # One extra item tells whether another page exists, so the last page never
        # hands out a cursor that leads to an empty page.
        kwargs: dict[str, Any] = {"TableName": self._table, "IndexName": LISTING_INDEX, "Limit": limit + 1}
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"userId": _s(after), "listingId": _s(after)}
        result = self._call("scan", **kwargs)
        users = [user for user in (item_to_user(item) for item in result.get("Items", [])) if user is not None]
        if len(users) > limit:
            users = users[:limit]
            return users, users[-1].user_id
        last = result.get("LastEvaluatedKey")
        return users, (last["userId"]["S"] if last else None)
