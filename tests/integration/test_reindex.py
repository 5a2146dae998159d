"""`make reindex` on the emulator: users written by an earlier release (no search keys) become
findable, nothing else of an item changes, a user changed meanwhile is left to its own write, and a
second run changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.dynamodb import DynamoUserRepository, user_to_item
from chalicelib.adapters.table_schema import CREATED_ATTRIBUTE, EMAIL_KEY_PREFIX, NAME_ATTRIBUTE, STATE_ATTRIBUTE
from chalicelib.domain.models import ADMIN, MEMBER, User, UserChanges, Write
from chalicelib.domain.search import UserQuery
from ops import reindex
from tests.integration.conftest import TABLE

SEARCH_KEYS = (STATE_ATTRIBUTE, CREATED_ATTRIBUTE, NAME_ATTRIBUTE)


def legacy_user(n: int, role: str = MEMBER, enabled: bool = True) -> User:
    at = f"2025-06-01T00:00:{n:02d}.000Z"
    return User(
        f"00000000-0000-4000-8000-{n:012d}",
        f"Legacy {n}",
        f"legacy{n}@example.com",
        at,
        at,
        3,
        role=role,
        enabled=enabled,
    )


def store_as_an_earlier_release_did(ddb: Any, user: User) -> dict[str, Any]:
    """The item without the search keys, as the previous release wrote it, and its reservation."""
    item = {
        k: v
        for k, v in user_to_item(user, Write("old-token", "old-actor", user.created_at)).items()
        if k not in SEARCH_KEYS
    }
    ddb.put_item(TableName=TABLE, Item=item)
    ddb.put_item(TableName=TABLE, Item={"userId": {"S": EMAIL_KEY_PREFIX + user.email}, "ownerId": item["userId"]})
    return item


def items(ddb: Any) -> dict[str, dict[str, Any]]:
    return {item["userId"]["S"]: item for item in ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]}


@pytest.mark.parametrize("segments", [1, 3])
def test_users_of_an_earlier_release_become_findable_and_nothing_else_changes(ddb: Any, segments: int) -> None:
    repo = DynamoUserRepository(TABLE, client=ddb)
    old = [legacy_user(n, role=ADMIN if n % 3 == 0 else MEMBER, enabled=n % 4 != 0) for n in range(12)]
    for user in old:
        store_as_an_earlier_release_did(ddb, user)
    ddb.put_item(TableName=TABLE, Item={"userId": {"S": "STATS#enabledAdmins"}, "enabledAdmins": {"N": "3"}})
    ddb.put_item(TableName=TABLE, Item={"userId": {"S": "IDEM#abc"}, "expiresAt": {"N": "1"}})
    assert repo.search(UserQuery(), 50, None) == ([], None)  # no index holds them yet
    before = items(ddb)

    counts = reindex.reindex(ddb, TABLE, segments)

    assert (counts.users, counts.updated, counts.changed_meanwhile) == (12, 12, 0)
    after = items(ddb)
    for key, item in before.items():
        # The search keys are all that was added: no new version, no write stamp, no other item touched.
        assert {k: v for k, v in after[key].items() if k not in SEARCH_KEYS} == item
    assert [u.user_id for u in repo.search(UserQuery(sort="createdAt"), 50, None)[0]] == [u.user_id for u in old]
    assert {u.user_id for u in repo.search(UserQuery(role=ADMIN, enabled=False), 50, None)[0]} == {
        u.user_id for u in old if u.role == ADMIN and not u.enabled
    }
    assert [u.user_id for u in repo.search(UserQuery(q="LEGACY 1"), 50, None)[0]] == [
        old[1].user_id,
        old[10].user_id,
        old[11].user_id,
    ]
    assert reindex.reindex(ddb, TABLE, segments).updated == 0  # once is enough
    assert items(ddb) == after


def test_a_user_changed_between_the_scan_and_the_write_is_read_again(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = DynamoUserRepository(TABLE, client=ddb)
    user = legacy_user(1)
    store_as_an_earlier_release_did(ddb, user)
    from ops.table_scan import consistent_scan as scanned

    def changed_after_the_scan(client: Any, table: str, **segment: int) -> Any:
        for item in scanned(client, table, **segment):
            # This release promotes the user between the scan and the reindex's write: the
            # reindex's condition on the version fails, it reads the user again and finds the
            # keys this release's change wrote (a change knows the whole record: it writes all).
            repo.change(user, UserChanges(role=ADMIN), Write("new-token", "admin", "2026-01-01T00:00:00.000Z"))
            yield item

    monkeypatch.setattr(reindex, "consistent_scan", changed_after_the_scan)
    counts = reindex.reindex(ddb, TABLE, 1)
    assert (counts.users, counts.updated, counts.changed_meanwhile) == (1, 0, 0)
    (found,), _ = repo.search(UserQuery(role=ADMIN), 10, None)
    assert found.user_id == user.user_id and found.version == user.version + 1


def test_stale_keys_left_by_the_previous_release_during_a_canary_are_repaired(ddb: Any) -> None:
    """A user renamed or promoted by the previous version while both served keeps its old keys
    until the reindex (docs/DEPLOY.md: run it once the release is fully live)."""
    repo = DynamoUserRepository(TABLE, client=ddb)
    user = repo.create(legacy_user(2), Write("t", "a", "2025-06-01T00:00:02.000Z"))
    # The previous version's update: name and role written, search keys untouched.
    ddb.update_item(
        TableName=TABLE,
        Key={"userId": {"S": user.user_id}},
        UpdateExpression="SET #n = :n, #r = :r, #v = :v",
        ExpressionAttributeNames={"#n": "name", "#r": "role", "#v": "version"},
        ExpressionAttributeValues={":n": {"S": "Zed"}, ":r": {"S": ADMIN}, ":v": {"N": "2"}},
    )
    assert repo.search(UserQuery(role=ADMIN), 10, None) == ([], None)
    assert reindex.reindex(ddb, TABLE, 1).updated == 1
    (found,), _ = repo.search(UserQuery(role=ADMIN, q="ze"), 10, None)
    assert found.name == "Zed"


def test_make_reindex_reaches_the_running_local_stack_through_its_stack_file(ddb: Any, tmp_path: Path) -> None:
    stack = tmp_path / "stack.json"
    with pytest.raises(SystemExit, match="make run"):
        reindex.run("local", stack, 1, out=lambda line: None)
