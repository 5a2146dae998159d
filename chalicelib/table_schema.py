"""The users table, defined once for the repository, the local stack and the deploy templates.

Two kinds of item share the table, both keyed by `userId`:
- a user: `userId` is the user's id; it also carries `listingId` (= userId), so the sparse
  `listing` index holds users only and a page of it is a page of users;
- an email reservation: `userId` is `EMAIL#<lower-cased email>`, with `ownerId`. Writing it in
  the same transaction as the user makes DynamoDB itself enforce unique emails;
- an idempotency record: `userId` is `IDEM#<hash of caller and key>`, expired by TTL;
- a counter: `userId` is `STATS#enabledAdmins`, the number of enabled admins, changed in the
  same transactions that change it;
- a deleted user's trace: `userId` is the user's id, with `deletedAt`, the deleting request's
  `writeToken` and `writtenBy` and no `listingId`, expired by TTL. It lets a resent delete
  recognise its own success, and tells what deleted the user.

User items and traces also carry `writeToken` (the API request that last wrote them),
`createToken` (the one that created them) and `writtenBy` (its caller's sub): see
chalicelib/dynamodb.py.
"""

from __future__ import annotations

from typing import Any

LISTING_INDEX = "listing"
EMAIL_KEY_PREFIX = "EMAIL#"
IDEMPOTENCY_KEY_PREFIX = "IDEM#"
# Counters the table keeps about itself (the number of enabled admins).
STATS_KEY_PREFIX = "STATS#"
# Epoch seconds after which DynamoDB may delete the item (idempotency records, deleted users' traces).
TTL_ATTRIBUTE = "expiresAt"
# How long a deleted user's trace stays: longer than an Idempotency-Key lives (24 h), so a
# keyed retry of the delete still recognises it, and than an avatar upload form (15 minutes).
DELETED_TTL_S = 48 * 3600

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
