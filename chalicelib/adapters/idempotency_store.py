"""Idempotency records in the users table: items keyed `IDEM#<hash>`, expired by DynamoDB TTL.

They carry no `listingId`, so the listing index never sees them, and user ids cannot address
them (ids are `[A-Za-z0-9-]`). TTL deletes within days of expiry, not at once, so expiry is
also checked in every condition.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.adapters.table_schema import IDEMPOTENCY_KEY_PREFIX, TTL_ATTRIBUTE
from chalicelib.web.errors import IdempotencyKeyReused, IdempotentRequestInFlight
from chalicelib.web.idempotency import LOCK_S, RECORD_TTL_S, Claimed, StoredResponse, retry_after

logger = logging.getLogger("users_api.idempotency")


def _key(record_id: str) -> dict[str, Any]:
    return {"userId": {"S": IDEMPOTENCY_KEY_PREFIX + record_id}}


def _locked_until(item: dict[str, Any]) -> int | None:
    """Until when (epoch seconds, inclusive) the record's holder has it; None: not locked."""
    return int(item["lockedUntil"]["N"]) if "lockedUntil" in item else None


class DynamoIdempotencyStore(aws.ClientHolder):
    """Claims, completes, releases and unlocks are conditional writes that a resent attempt
    recognises as its own (by the lock token), like the user repository's writes."""

    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None):
        super().__init__(client)
        self._table = table_name

    def claim(
        self, record_id: str, fingerprint: str, lock: str, write_token: str, now: int
    ) -> Claimed | StoredResponse:
        try:
            self._call(
                "put_item",
                TableName=self._table,
                Item={
                    **_key(record_id),
                    "fingerprint": {"S": fingerprint},
                    "lockToken": {"S": lock},
                    "lockedUntil": {"N": str(now + LOCK_S)},
                    "writeToken": {"S": write_token},
                    TTL_ATTRIBUTE: {"N": str(now + RECORD_TTL_S)},
                },
                # New, or expired (TTL deletes late).
                ConditionExpression="attribute_not_exists(userId) OR #expires < :now",
                ExpressionAttributeNames={"#expires": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(now)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            return self._existing(record_id, exc.response.get("Item") or {}, fingerprint, lock, write_token, now)
        return Claimed(write_token)

    def _existing(
        self, record_id: str, old: dict[str, Any], fingerprint: str, lock: str, write_token: str, now: int
    ) -> Claimed | StoredResponse:
        """What a claim that found a live record gets: its own resent claim, a replay, or a take-over."""
        if old.get("lockToken", {}).get("S") == lock and "response" not in old:
            return Claimed(old.get("writeToken", {}).get("S") or write_token)  # our claim, resent
        if old.get("fingerprint", {}).get("S") != fingerprint:
            raise IdempotencyKeyReused()
        if "response" in old:
            return StoredResponse.from_json(old["response"]["S"])
        locked_until = _locked_until(old)
        if locked_until is not None and locked_until >= now:
            raise IdempotentRequestInFlight(retry_after(locked_until, now))
        return self._take_over(record_id, fingerprint, lock, write_token, now)

    def _take_over(
        self, record_id: str, fingerprint: str, lock: str, write_token: str, now: int
    ) -> Claimed | StoredResponse:
        """Lock a record the same request left unfinished (unlocked, or its holder died), keeping
        its write token, so this attempt finds what the earlier one wrote."""
        try:
            result = self._call(
                "update_item",
                TableName=self._table,
                Key=_key(record_id),
                UpdateExpression="SET lockToken = :lock, lockedUntil = :until, "
                "writeToken = if_not_exists(writeToken, :write)",
                ConditionExpression="fingerprint = :fp AND attribute_not_exists(#response) AND "
                "(attribute_not_exists(lockedUntil) OR lockedUntil < :now OR lockToken = :lock)",
                ExpressionAttributeNames={"#response": "response"},
                ExpressionAttributeValues={
                    ":lock": {"S": lock},
                    ":until": {"N": str(now + LOCK_S)},
                    ":write": {"S": write_token},
                    ":fp": {"S": fingerprint},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item") or {}
            if "response" in old:
                return StoredResponse.from_json(old["response"]["S"])
            # Another retry took it over first: its lock is the one to wait for.
            raise IdempotentRequestInFlight(retry_after(_locked_until(old) or now, now)) from exc
        return Claimed(result["Attributes"]["writeToken"]["S"])

    def complete(self, record_id: str, lock: str, response: StoredResponse, now: int) -> None:
        try:
            self._call(
                "update_item",
                TableName=self._table,
                Key=_key(record_id),
                # The lock token stays, so a resend of this very update passes its condition again.
                UpdateExpression="SET #response = :response REMOVE lockedUntil",
                ConditionExpression="lockToken = :lock",
                ExpressionAttributeNames={"#response": "response"},
                ExpressionAttributeValues={":response": {"S": response.to_json()}, ":lock": {"S": lock}},
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            # Our lock expired and another attempt took the key over; its response will be kept.
            logger.warning("idempotency claim lost before completion")

    def release(self, record_id: str, lock: str) -> None:
        self._give_up(record_id, lock, forget=True)

    def unlock(self, record_id: str, lock: str) -> None:
        self._give_up(record_id, lock, forget=False)

    def _give_up(self, record_id: str, lock: str, forget: bool) -> None:
        condition = {"ConditionExpression": "lockToken = :lock", "ExpressionAttributeValues": {":lock": {"S": lock}}}
        try:
            if forget:
                self._call("delete_item", TableName=self._table, Key=_key(record_id), **condition)
            else:
                self._call(
                    "update_item",
                    TableName=self._table,
                    Key=_key(record_id),
                    UpdateExpression="REMOVE lockedUntil",
                    **condition,
                )
        except ClientError as exc:
            # Someone else holds it now (our lock expired), or our own resend already did this.
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
