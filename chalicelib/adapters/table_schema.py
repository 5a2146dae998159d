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
chalicelib/adapters/dynamodb.py.
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


# Every write's item before and after: the change consumer (chalicelib/domain/change_events.py) compares them.
STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"


def create_table_kwargs(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB CreateTable, matching the production definition (its stream included,
    so the emulator's stream carries what the deployed one does)."""
    return {
        "TableName": table_name,
        "KeySchema": KEY_SCHEMA,
        "AttributeDefinitions": ATTRIBUTE_DEFINITIONS,
        "GlobalSecondaryIndexes": GLOBAL_SECONDARY_INDEXES,
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": STREAM_VIEW_TYPE},
    }


def time_to_live_kwargs(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB UpdateTimeToLive, as the deploy templates set it."""
    return {"TableName": table_name, "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}}


# --- The audit table: one entry per change event, the history GET /users/{id}/history reads ---
#
# Keyed by `userId` and `position`, "<at>#<stream sequence number, 40 digits>": a user's entries
# sort oldest first by the time of the write, ties in stream order, and a redelivered stream
# record maps to the very key its first delivery wrote. Kept AUDIT_RETENTION_DAYS after the change
# (TTL), so a deleted user's history stays readable that long after the delete.
AUDIT_SORT_KEY = "position"
AUDIT_RETENTION_DAYS = 365
AUDIT_KEY_SCHEMA: list[dict[str, str]] = [
    {"AttributeName": "userId", "KeyType": "HASH"},
    {"AttributeName": AUDIT_SORT_KEY, "KeyType": "RANGE"},
]
AUDIT_ATTRIBUTE_DEFINITIONS: list[dict[str, str]] = [
    {"AttributeName": "userId", "AttributeType": "S"},
    {"AttributeName": AUDIT_SORT_KEY, "AttributeType": "S"},
]


def create_audit_table_kwargs(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB CreateTable of the audit table, as deployed (no stream: nothing reads one)."""
    return {
        "TableName": table_name,
        "KeySchema": AUDIT_KEY_SCHEMA,
        "AttributeDefinitions": AUDIT_ATTRIBUTE_DEFINITIONS,
        "BillingMode": "PAY_PER_REQUEST",
    }
