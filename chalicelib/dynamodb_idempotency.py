"""Idempotency records in the users table: items keyed `IDEM#<hash>`, expired by DynamoDB TTL.

They carry no `listingId`, so the listing index never sees them, and user ids cannot address
them (ids are `[A-Za-z0-9-]`). TTL deletes within days of expiry, not at once, so expiry is
also checked in every condition.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib import aws
from chalicelib.dynamodb import call
from chalicelib.errors import IdempotencyKeyReused, IdempotentRequestInFlight
from chalicelib.idempotency import LOCK_S, RECORD_TTL_S, StoredResponse
from chalicelib.table_schema import IDEMPOTENCY_KEY_PREFIX, TTL_ATTRIBUTE

logger = logging.getLogger("users_api.idempotency")


def _key(record_id: str) -> dict[str, Any]:
    return {"userId": {"S": IDEMPOTENCY_KEY_PREFIX + record_id}}


class DynamoIdempotencyStore(aws.ClientHolder):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None):
        super().__init__(client)
        self._table = table_name

    def claim(self, record_id: str, fingerprint: str, token: str, now: int) -> StoredResponse | None:
        from botocore.exceptions import ClientError

        try:
            call(
                self.client,
                "put_item",
                TableName=self._table,
                Item={
                    **_key(record_id),
                    "fingerprint": {"S": fingerprint},
                    "lockToken": {"S": token},
                    "lockedUntil": {"N": str(now + LOCK_S)},
                    TTL_ATTRIBUTE: {"N": str(now + RECORD_TTL_S)},
                },
                # New, expired, or a lock of the same request whose holder died.
                ConditionExpression="attribute_not_exists(userId) OR #expires < :now OR "
                "(attribute_not_exists(#response) AND lockedUntil < :now AND fingerprint = :fp)",
                ExpressionAttributeNames={"#expires": TTL_ATTRIBUTE, "#response": "response"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":fp": {"S": fingerprint}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item") or {}
            if old.get("fingerprint", {}).get("S") != fingerprint:
                raise IdempotencyKeyReused() from exc
            if "response" in old:
                return StoredResponse.from_json(old["response"]["S"])
            raise IdempotentRequestInFlight() from exc
        return None

    def complete(self, record_id: str, token: str, response: StoredResponse, now: int) -> None:
        from botocore.exceptions import ClientError

        try:
            call(
                self.client,
                "update_item",
                TableName=self._table,
                Key=_key(record_id),
                UpdateExpression="SET #response = :response REMOVE lockToken, lockedUntil",
                ConditionExpression="lockToken = :token",
                ExpressionAttributeNames={"#response": "response"},
                ExpressionAttributeValues={":response": {"S": response.to_json()}, ":token": {"S": token}},
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            # Our lock expired and another request took the key over; its response will be kept.
            logger.warning("idempotency claim lost before completion")

    def release(self, record_id: str, token: str) -> None:
        from botocore.exceptions import ClientError

        try:
            call(
                self.client,
                "delete_item",
                TableName=self._table,
                Key=_key(record_id),
                ConditionExpression="lockToken = :token",
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
