"""Stream record -> change event: what each kind of write on the users table means."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.change_events import (
    NOTHING,
    PUBLIC_FIELDS,
    UNKNOWN_ACTOR,
    USER_CREATED,
    USER_DELETED,
    USER_UPDATED,
    ChangeEvent,
)
from chalicelib.domain.models import ADMIN
from tests.support.stream_records import ADMIN_SUB, meaning_of, record, trace, user

LATER = "2025-01-01T01:00:00.000Z"


def event_of(stream_record: dict[str, Any]) -> ChangeEvent:
    meaning = meaning_of(stream_record)
    assert meaning.remove_avatar_of is None
    assert meaning.event is not None
    return meaning.event


def test_an_insert_of_a_user_is_created_by_its_writer_at_its_creation_time() -> None:
    inserted = record("INSERT", new=user(phone="+14155550100"), event_id="abc")
    event = event_of(inserted)
    assert event == ChangeEvent(
        event_id="abc",
        type=USER_CREATED,
        user_id="u-1",
        at="2025-01-01T00:00:00.000Z",
        actor=ADMIN_SUB,
        changed=("name", "email", "phone", "role", "enabled"),
        sequence=inserted["dynamodb"]["SequenceNumber"],
    )
    assert event.detail() == {
        "eventId": "abc",
        "type": "UserCreated",
        "userId": "u-1",
        "at": "2025-01-01T00:00:00.000Z",
        "actor": ADMIN_SUB,
        "changed": ["name", "email", "phone", "role", "enabled"],
    }


def test_a_modification_names_exactly_the_public_fields_that_differ() -> None:
    renamed = event_of(record("MODIFY", old=user(), new=user(name="Ada K", version=2, at=LATER, actor="self")))
    assert (renamed.type, renamed.changed, renamed.actor, renamed.at) == (USER_UPDATED, ("name",), "self", LATER)
    moved = event_of(record("MODIFY", old=user(), new=user(email="a@lovelace.example", version=2, at=LATER)))
    assert moved.changed == ("email",)
    promoted = event_of(record("MODIFY", old=user(), new=user(version=2, at=LATER, role=ADMIN, enabled=False)))
    assert promoted.changed == ("role", "enabled")
    unphoned = event_of(record("MODIFY", old=user(phone="+14155550100"), new=user(version=2, at=LATER)))
    assert unphoned.changed == ("phone",)


def test_a_modification_without_a_public_change_makes_no_event() -> None:
    # Only the version, the timestamp and the write's stamps moved: nothing a client sees.
    assert meaning_of(record("MODIFY", old=user(), new=user(version=2, at=LATER, actor="tool"))) == NOTHING


def test_records_of_earlier_versions_read_as_enabled_members() -> None:
    old = {key: value for key, value in user().items() if key not in ("role", "enabled")}
    assert meaning_of(record("MODIFY", old=old, new=user(version=2, at=LATER))) == NOTHING


def test_a_delete_is_the_user_becoming_a_trace_by_the_deleter() -> None:
    deleted = event_of(record("MODIFY", old=user(), new=trace(at=LATER, actor="deleter")))
    assert (deleted.type, deleted.actor, deleted.at) == (USER_DELETED, "deleter", LATER)
    assert deleted.changed == ("name", "email", "role", "enabled")


def test_a_profile_made_again_over_a_trace_is_a_create() -> None:
    again = event_of(record("MODIFY", old=trace(), new=user(at=LATER, actor="u-1")))
    assert (again.type, again.actor, again.changed) == (USER_CREATED, "u-1", ("name", "email", "role", "enabled"))


def test_the_ttl_removing_a_trace_removes_the_avatar_and_makes_no_event() -> None:
    expired = meaning_of(record("REMOVE", old=trace(), ttl=True))
    assert expired.event is None
    assert expired.remove_avatar_of == "u-1"


def test_a_user_removed_outside_the_api_is_deleted_by_an_unknown_actor_at_the_records_time() -> None:
    removed = event_of(record("REMOVE", old=user()))
    assert (removed.type, removed.actor, removed.at) == (USER_DELETED, UNKNOWN_ACTOR, "2025-01-02T00:00:00.000Z")


def test_a_write_without_its_actor_is_by_an_unknown_actor() -> None:
    stamped = user()
    del stamped["writtenBy"]
    assert event_of(record("INSERT", new=stamped)).actor == UNKNOWN_ACTOR


@pytest.mark.parametrize(
    "item",
    [
        {"userId": {"S": "EMAIL#ada@example.com"}, "ownerId": {"S": "u-1"}},
        {"userId": {"S": "IDEM#0f3a"}, "state": {"S": "done"}, "expiresAt": {"N": "1"}},
        {"userId": {"S": "STATS#enabledAdmins"}, "enabledAdmins": {"N": "2"}},
    ],
    ids=["email reservation", "idempotency record", "admin counter"],
)
def test_other_items_mean_nothing_whatever_happens_to_them(item: dict[str, Any]) -> None:
    changed = {**item, "extra": {"S": "x"}}
    for stream_record in (
        record("INSERT", new=item),
        record("MODIFY", old=item, new=changed),
        record("REMOVE", old=item),
        record("REMOVE", old=item, ttl=True),
    ):
        assert meaning_of(stream_record) == NOTHING


def test_public_fields_are_what_the_api_shows_and_nothing_internal() -> None:
    assert PUBLIC_FIELDS == ("name", "email", "pendingEmail", "phone", "role", "enabled")
    for internal in ("version", "updatedAt", "createdAt", "writeToken", "writtenBy", "emailKey", "listingId"):
        assert internal not in PUBLIC_FIELDS


# --- The mapping's filter criteria (infra/limits.json change_events.filters) ----------------------


def _matches(pattern: Any, value: Any, present: bool = True) -> bool:
    """Lambda's filter rules, the part the filters use: objects match key by key, a list matches
    when one of its values equals the field or, for {"exists": b}, when the field's presence is b."""
    if isinstance(pattern, dict):
        return all(
            _matches(sub, value.get(key) if isinstance(value, dict) else None, isinstance(value, dict) and key in value)
            for key, sub in pattern.items()
        )
    return any(
        (option.get("exists") == present) if isinstance(option, dict) else (present and option == value)
        for option in pattern
    )


def _admitted(stream_record: dict[str, Any]) -> bool:
    from infra.stages import load_limits

    return any(_matches(pattern, stream_record) for pattern in load_limits()["change_events"]["filters"])


def test_the_mappings_filters_admit_every_record_that_means_something_and_nothing_else() -> None:
    meaningful = [
        record("INSERT", new=user()),
        record("MODIFY", old=user(), new=user(name="B", version=2, at=LATER)),
        record("MODIFY", old=user(), new=user(version=2, at=LATER)),  # no public change: the handler decides
        record("MODIFY", old=user(), new=trace()),
        record("MODIFY", old=trace(), new=user()),
        record("REMOVE", old=user()),
        record("REMOVE", old=trace(), ttl=True),
    ]
    assert all(_admitted(r) for r in meaningful)
    others = [
        {"userId": {"S": "EMAIL#ada@example.com"}, "ownerId": {"S": "u-1"}},
        {"userId": {"S": "IDEM#0f3a"}, "state": {"S": "done"}, "expiresAt": {"N": "1"}},
        {"userId": {"S": "STATS#enabledAdmins"}, "enabledAdmins": {"N": "2"}},
    ]
    for item in others:
        for stream_record in (
            record("INSERT", new=item),
            record("MODIFY", old=item, new={**item, "x": {"S": "y"}}),
            record("REMOVE", old=item, ttl=True),
        ):
            assert not _admitted(stream_record)
            assert meaning_of(stream_record) == NOTHING


# --- Sign-in actions and requested email changes (issue 21) ------------------------------------------


def _acted(image: dict[str, Any], action: str, token: str) -> dict[str, Any]:
    return {**image, "actionType": {"S": action}, "actionToken": {"S": token}}


@pytest.mark.parametrize("action", ["InvitationResent", "PasswordReset", "SignedOut"])
def test_a_sign_in_action_is_one_event_of_its_type_with_nothing_changed(action: str) -> None:
    before = user()
    after = _acted(user(version=2, at=LATER, actor="admin-2"), action, "t-1")
    event = event_of(record("MODIFY", old=before, new=after))
    assert (event.type, event.changed, event.actor, event.at) == (action, (), "admin-2", LATER)
    # The next write that keeps the action (a rename) is a plain update, not the action again.
    renamed = _acted(user(name="Ada K", version=3, at=LATER), action, "t-1")
    assert event_of(record("MODIFY", old=after, new=renamed)).type == USER_UPDATED
    # A second action of the same type (another request: another token) is another event.
    again = _acted(user(version=3, at=LATER), action, "t-2")
    assert event_of(record("MODIFY", old=after, new=again)).type == action


def test_a_write_that_changes_no_public_field_nor_the_action_is_no_event() -> None:
    after = _acted(user(version=2, at=LATER), "SignedOut", "t-1")
    counted = {**after, "emailCodeAttempts": {"N": "1"}}  # a wrong code counted
    assert meaning_of(record("MODIFY", old=after, new=counted)) == NOTHING


def test_a_requested_email_change_is_an_update_of_pending_email_and_its_confirmation_of_both() -> None:
    requested = {**user(version=2, at=LATER), "pendingEmail": {"S": "new@example.com"}}
    assert event_of(record("MODIFY", old=user(), new=requested)).changed == ("pendingEmail",)
    confirmed = user(email="new@example.com", version=3, at=LATER)
    assert event_of(record("MODIFY", old=requested, new=confirmed)).changed == ("email", "pendingEmail")
