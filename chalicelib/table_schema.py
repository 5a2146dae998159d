"""The users table, defined once for the repository, the local stack and the deploy templates.

Two kinds of item share the table, both keyed by `userId`:
- a user: `userId` is the user's id; it also carries `listingId` (= userId), so the sparse
  `listing` index holds users only and a page of it is a page of users;
- an email reservation: `userId` is `EMAIL#<lower-cased email>`, with `ownerId`. Writing it in
  the same transaction as the user makes DynamoDB itself enforce unique emails;
- an idempotency record: `userId` is `IDEM#<hash of caller and key>`, expired by TTL.
"""

from __future__ import annotations

from typing import Any

LISTING_INDEX = "listing"
EMAIL_KEY_PREFIX = "EMAIL#"
IDEMPOTENCY_KEY_PREFIX = "IDEM#"
# Epoch seconds after which DynamoDB may delete the item (idempotency records only).
TTL_ATTRIBUTE = "expiresAt"

KEY_SCHEMA: list[dict[str, str]] = [{"AttributeName": "userId", "KeyType": "HASH"}]
ATTRIBUTE_DEFINITIONS: list[dict[str, str]] = [
    {"AttributeName": "userId", "AttributeType": "S"},
    {"AttributeName": "listingId", "AttributeType": "S"},
]
GLOBAL_SECONDARY_INDEXES: list[dict[str, Any]] = [
    {
        "IndexName": LISTING_INDEX,
        "KeySchema": [{"AttributeName": "listingId", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "ALL"},
    }
]


def create_table_kwargs(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB CreateTable, matching the production definition."""
    return {
        "TableName": table_name,
        "KeySchema": KEY_SCHEMA,
        "AttributeDefinitions": ATTRIBUTE_DEFINITIONS,
        "GlobalSecondaryIndexes": GLOBAL_SECONDARY_INDEXES,
        "BillingMode": "PAY_PER_REQUEST",
    }


def time_to_live_kwargs(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB UpdateTimeToLive, as the deploy templates set it."""
    return {"TableName": table_name, "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}}
