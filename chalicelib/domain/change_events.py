"""What a record of the users table's stream means: a change event, an avatar to clean up, or nothing.

Pure functions of one stream record as Lambda's event source mapping delivers it (and the local
stack replays it, devstack/streams.py); no AWS call, so every case is a unit test.

Only user items (they carry `listingId`) and deleted users' traces (`deletedAt`, no `listingId`)
mean anything. Email reservations, idempotency records and the admin counter share the table
and write to the stream in the same transactions, and are ignored.

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
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.models import MEMBER, SIGN_IN_ACTIONS

USER_CREATED, USER_UPDATED, USER_DELETED = "UserCreated", "UserUpdated", "UserDeleted"
# Sign-in actions (admins): a write that changes no public field but records the action
# (`actionType`, and the request's token as `actionToken`): chalicelib/domain/service.py.
EVENT_TYPES = (USER_CREATED, USER_UPDATED, USER_DELETED, *SIGN_IN_ACTIONS)
# The fields a client sees, in the order the API shows them; never versions, timestamps or stamps.
# `pendingEmail`: a user's requested, unconfirmed new address (PUT /users/me).
PUBLIC_FIELDS = ("name", "email", "pendingEmail", "phone", "role", "enabled")
# Writes no API caller made and whose actor no image records.
UNKNOWN_ACTOR = "unknown"

Image = dict[str, dict[str, Any]]


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


def is_user(image: Image | None) -> bool:
    return bool(image) and "listingId" in image  # type: ignore[operator]


def is_trace(image: Image | None) -> bool:
    return bool(image) and "deletedAt" in image and "listingId" not in image  # type: ignore[operator]


def _string(image: Image, attribute: str, default: str = "") -> str:
    return str(image.get(attribute, {}).get("S", default))


def _public(image: Image | None) -> dict[str, Any]:
    """The public fields an image holds (a trace or no image holds none). Records of earlier
    versions have neither role nor enabled: members, enabled, as chalicelib/adapters/dynamodb.py reads them."""
    if not is_user(image):
        return {}
    assert image is not None
    values: dict[str, Any] = {
        name: image[name]["S"] for name in ("name", "email", "pendingEmail", "phone") if name in image
    }
    values["role"] = _string(image, "role", MEMBER)
    values["enabled"] = image.get("enabled", {}).get("BOOL", True)
    return values


def changed_fields(old: Image | None, new: Image | None) -> tuple[str, ...]:
    before, after = _public(old), _public(new)
    return tuple(name for name in PUBLIC_FIELDS if before.get(name) != after.get(name))


def _record_time(record: dict[str, Any]) -> str:
    """The stream record's own time (epoch seconds in Lambda's event), as the API writes times."""
    seconds = float(record["dynamodb"]["ApproximateCreationDateTime"])
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def interpret(record: dict[str, Any]) -> Meaning:
    """The meaning of one stream record (Lambda's shape: eventID, eventName, dynamodb.{Keys,
    NewImage, OldImage, SequenceNumber, ApproximateCreationDateTime})."""
    stream = record["dynamodb"]
    old: Image | None = stream.get("OldImage")
    new: Image | None = stream.get("NewImage")
    user_id = str(stream["Keys"]["userId"]["S"])

    def event(kind: str, at: str, actor: str) -> Meaning:
        return Meaning(
            event=ChangeEvent(
                event_id=str(record["eventID"]),
                type=kind,
                user_id=user_id,
                at=at,
                actor=actor or UNKNOWN_ACTOR,
                changed=changed_fields(old, new),
                sequence=str(stream["SequenceNumber"]),
            )
        )

    if is_user(new):
        assert new is not None
        if is_user(old):
            assert old is not None
            if not changed_fields(old, new):
                action = _string(new, "actionType")
                if action in SIGN_IN_ACTIONS and _string(new, "actionToken") != _string(old, "actionToken"):
                    return event(action, _string(new, "updatedAt"), _string(new, "writtenBy"))
                return NOTHING
            return event(USER_UPDATED, _string(new, "updatedAt"), _string(new, "writtenBy"))
        return event(USER_CREATED, _string(new, "createdAt"), _string(new, "writtenBy"))
    if is_user(old):
        if is_trace(new):
            assert new is not None
            return event(USER_DELETED, _string(new, "deletedAt"), _string(new, "writtenBy"))
        if new is None:
            return event(USER_DELETED, _record_time(record), UNKNOWN_ACTOR)
        return NOTHING
    if record.get("eventName") == "REMOVE" and is_trace(old):
        return Meaning(remove_avatar_of=user_id)
    return NOTHING
