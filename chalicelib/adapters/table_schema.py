"""The users table, defined once for the repository, the local stack and the deploy templates.

Two kinds of item share the table, both keyed by `userId`:
- a user: `userId` is the user's id; it also carries `listingId` (= userId), the mark of a user
  item (the stream consumer's filter and `item_to_user` go by it), and the three attributes the
  search indexes are keyed on (below), which only user items carry, so the indexes hold users only;
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

EMAIL_KEY_PREFIX = "EMAIL#"
IDEMPOTENCY_KEY_PREFIX = "IDEM#"
# Counters the table keeps about itself (the number of enabled admins).
STATS_KEY_PREFIX = "STATS#"
# Epoch seconds after which DynamoDB may delete the item (idempotency records, deleted users' traces).
TTL_ATTRIBUTE = "expiresAt"
# How long a deleted user's trace stays: longer than an Idempotency-Key lives (24 h), so a
# keyed retry of the delete still recognises it, and than an avatar upload form (15 minutes).
DELETED_TTL_S = 48 * 3600

# --- The search indexes (GET /users; docs/DESIGN.md, "Finding users") ---
#
# Three sparse GSIs over user items only, each partitioned by the user's state (`role#enabled`:
# 4 partitions) and sorted by one key: the creation time, the case-folded name, the email key.
# Written by chalicelib/adapters/dynamodb.py on every write of a user (chalicelib/adapters/user_index.py
# computes them), removed with the user, and never carried by any other item (reservations,
# idempotency records, counters, traces, jobs), which is what keeps the indexes sparse.
STATE_ATTRIBUTE = "listState"  # "admin#enabled", "member#disabled", ...
CREATED_ATTRIBUTE = "listCreated"  # "<createdAt>#<userId>"
NAME_ATTRIBUTE = "listName"  # "<case-folded name>\x1f<userId>"
EMAIL_ATTRIBUTE = "emailKey"  # the lower-cased email (unique: its reservation says so)
BY_CREATED_INDEX = "usersByCreated"
BY_NAME_INDEX = "usersByName"
BY_EMAIL_INDEX = "usersByEmail"
SEARCH_INDEXES = {BY_CREATED_INDEX: CREATED_ATTRIBUTE, BY_NAME_INDEX: NAME_ATTRIBUTE, BY_EMAIL_INDEX: EMAIL_ATTRIBUTE}
# The index of earlier releases (a Scan of every user in hash order). This release never reads it,
# but keeps it, and the role keeps its Scan: while a release rolls out, the previous version still
# serves part of the traffic (the canary, or until `make release-tf`), and its GET /users would
# fail without it, which the rollback alarm (5XX above 2 %) would answer by rolling back. The
# next release removes both (one more step of UPGRADE_STEPS).
LEGACY_LISTING_INDEX = "listing"

KEY_SCHEMA: list[dict[str, str]] = [{"AttributeName": "userId", "KeyType": "HASH"}]


def _search_index(name: str, sort_key: str) -> dict[str, Any]:
    # Projection ALL: a page is one Query that returns the users themselves. KEYS_ONLY would need
    # a BatchGetItem billed per item (25 read units for 50 users instead of about 3.5); INCLUDE
    # would save about a third of a page's read units but every new public field of a user would
    # then need a new index (an index's projection cannot change). docs/DESIGN.md has the figures.
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": STATE_ATTRIBUTE, "KeyType": "HASH"},
            {"AttributeName": sort_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


_LEGACY_LISTING: dict[str, Any] = {
    "IndexName": LEGACY_LISTING_INDEX,
    "KeySchema": [{"AttributeName": "listingId", "KeyType": "HASH"}],
    "Projection": {"ProjectionType": "ALL"},
}
_SEARCH: list[dict[str, Any]] = [_search_index(name, key) for name, key in SEARCH_INDEXES.items()]

# CloudFormation creates or deletes at most one GSI per stack update (DynamoDB's UpdateTable takes
# one at a time; Terraform's provider issues them one after another itself). A stack made by an
# earlier release (the `listing` index only) upgrades through these templates in order, one
# deploy each (`make package STAGE=... INDEX_STEP=n`, docs/DEPLOY.md); step 0 is that release's,
# the last is this release's.
UPGRADE_STEPS: list[list[dict[str, Any]]] = [
    [_LEGACY_LISTING],
    [_LEGACY_LISTING, *_SEARCH[:1]],
    [_LEGACY_LISTING, *_SEARCH[:2]],
    [_LEGACY_LISTING, *_SEARCH],
]
FINAL_STEP = len(UPGRADE_STEPS) - 1


def global_secondary_indexes(step: int = FINAL_STEP) -> list[dict[str, Any]]:
    return UPGRADE_STEPS[step]


def attribute_definitions(step: int = FINAL_STEP) -> list[dict[str, str]]:
    """The key attributes of the table and of the indexes of `step` (DynamoDB refuses any other)."""
    names = ["userId"]
    for index in global_secondary_indexes(step):
        names += [key["AttributeName"] for key in index["KeySchema"] if key["AttributeName"] not in names]
    return [{"AttributeName": name, "AttributeType": "S"} for name in names]


GLOBAL_SECONDARY_INDEXES: list[dict[str, Any]] = global_secondary_indexes()
ATTRIBUTE_DEFINITIONS: list[dict[str, str]] = attribute_definitions()

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
