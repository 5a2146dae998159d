"""What a record of the users table's stream means: a change event, an avatar to clean up, or nothing.

Pure functions of one stream record, as chalicelib/adapters/stream_records.py decodes what Lambda's
event source mapping delivers (and the local stack replays, devstack/streams.py) into the domain's
values; no AWS call and no item format, so every case is a unit test.

Only users and deleted users' traces mean anything. Email reservations, idempotency records and
the admin counter share the table and write to the stream in the same transactions, and are ignored.

- INSERT of a user: UserCreated (and a MODIFY from a trace to a user, which the API never writes
  since ids are Cognito subs that are not reused, would be one too).
- MODIFY from a user to a user: UserUpdated, when a public field differs. A write that changes no
  public field makes no event (a record migrated by a tool, a wrong email code counted), so
  `changed` is never empty for an update; except a sign-in action (an admin's invitation resent,
  password reset, sign-out), which changes no public field but a new `actionToken`: an event of
  its `actionType`, with `changed` empty. A resend of the action's write is recognised by its
  token before it writes again, and a redelivered record by its audit entry: one event per action.
- MODIFY from a user to a trace (the API's delete): UserDeleted, by the trace's `writtenBy`.
- REMOVE of a user (no API path does this; an operator's tool or the console could): UserDeleted
  by "unknown", at the stream record's time.
- REMOVE of a trace (TTL expired it, 48 h after the delete): no event, but the user's avatar is
  deleted, so an upload through a form issued before the delete cannot outlive the user.

`changed` names the public fields whose values differ between the images before and after: all
the user's fields for a create or a delete. Never a value: events and audit entries hold who
changed what, not the data, which consumers read from the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.domain.models import SIGN_IN_ACTIONS, User
from chalicelib.domain.repository import Deleted

USER_CREATED, USER_UPDATED, USER_DELETED = "UserCreated", "UserUpdated", "UserDeleted"
# Sign-in actions (admins): a write that changes no public field but records the action
# (`actionType`, and the request's token as `actionToken`): chalicelib/domain/service.py.
EVENT_TYPES = (USER_CREATED, USER_UPDATED, USER_DELETED, *SIGN_IN_ACTIONS)
# The fields a client sees, in the order the API shows them; never versions, timestamps or stamps.
# `pendingEmail`: a user's requested, unconfirmed new address (PUT /users/me).
PUBLIC_FIELDS = ("name", "email", "pendingEmail", "phone", "role", "enabled")
# Writes no API caller made and whose actor no image records.
UNKNOWN_ACTOR = "unknown"


@dataclass(frozen=True)
class ChangeEvent:
    """One committed change to a user. `sequence` is the stream record's sequence number: it
    orders the user's history and keys its audit entry, but is not part of the public event."""

    event_id: str
    type: str
    user_id: str
    at: str
    actor: str
    changed: tuple[str, ...]
    sequence: str

    def detail(self) -> dict[str, Any]:
        """The public event: EventBridge's Detail."""
        return {
            "eventId": self.event_id,
            "type": self.type,
            "userId": self.user_id,
            "at": self.at,
            "actor": self.actor,
            "changed": list(self.changed),
        }


@dataclass(frozen=True)
class Meaning:
    """What to do about one stream record: publish and audit `event`, delete the avatar of
    `remove_avatar_of`, both or (for records of other items) neither."""

    event: ChangeEvent | None = None
    remove_avatar_of: str | None = None


NOTHING = Meaning()


@dataclass(frozen=True)
class Written:
    """A user record as an image shows it, and who wrote that version; for an admin's sign-in
    action, which changes no public field, the action (`actionType`) and its request's token."""

    user: User
    actor: str
    action: str = ""
    action_token: str = ""


class OtherItem:
    """An image of an item that is neither a user nor a deleted user's trace (an email
    reservation, an idempotency record, the admin counter): it means nothing here."""


OTHER = OtherItem()
# What one side of a stream record shows: no image, a user, a deleted user's trace, another item.
Image = Written | Deleted | OtherItem | None


@dataclass(frozen=True)
class StreamChange:
    """One record of the users table's stream, decoded (chalicelib/adapters/stream_records.py):
    which write it was, its item's key, its place in the stream and the item before and after."""

    event_id: str
    name: str  # INSERT, MODIFY or REMOVE
    user_id: str
    sequence: str
    at: str  # the record's own time, for a write that stamped none
    old: Image
    new: Image


def _public(image: Image) -> dict[str, Any]:
    """The public fields an image holds (a trace or no image holds none)."""
    if not isinstance(image, Written):
        return {}
    user = image.user
    return {
        "name": user.name,
        "email": user.email,
        "pendingEmail": user.pending_email,
        "phone": user.phone,
        "role": user.role,
        "enabled": user.enabled,
    }


def changed_fields(old: Image, new: Image) -> tuple[str, ...]:
    before, after = _public(old), _public(new)
    return tuple(name for name in PUBLIC_FIELDS if before.get(name) != after.get(name))


def interpret(change: StreamChange) -> Meaning:
    """The meaning of one change of the users table."""
    old, new = change.old, change.new

    def event(kind: str, at: str, actor: str) -> Meaning:
        return Meaning(
            event=ChangeEvent(
                event_id=change.event_id,
                type=kind,
                user_id=change.user_id,
                at=at,
                actor=actor or UNKNOWN_ACTOR,
                changed=changed_fields(old, new),
                sequence=change.sequence,
            )
        )

    if isinstance(new, Written):
        if isinstance(old, Written):
            if not changed_fields(old, new):
                if new.action in SIGN_IN_ACTIONS and new.action_token != old.action_token:
                    return event(new.action, new.user.updated_at, new.actor)
                return NOTHING
            return event(USER_UPDATED, new.user.updated_at, new.actor)
        return event(USER_CREATED, new.user.created_at, new.actor)
    if isinstance(old, Written):
        if isinstance(new, Deleted):
            return event(USER_DELETED, new.at, new.actor)
        if new is None:
            return event(USER_DELETED, change.at, UNKNOWN_ACTOR)
        return NOTHING
    if change.name == "REMOVE" and isinstance(old, Deleted):
        return Meaning(remove_avatar_of=change.user_id)
    return NOTHING
