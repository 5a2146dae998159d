"""A user's avatar: the rules an upload must keep and how long its URLs last (the storage adapter
and the OpenAPI document both state these), and what the domain asks of avatar storage."""

from __future__ import annotations

from typing import Protocol

# Image types an avatar may have; the upload policy pins the one the client names.
CONTENT_TYPES = ("image/png", "image/jpeg", "image/webp")
MIN_BYTES = 1
MAX_BYTES = 5 * 1024 * 1024
UPLOAD_EXPIRES_S = 15 * 60
# Short: whoever holds a download URL reads the picture until it expires.
DOWNLOAD_EXPIRES_S = 5 * 60


class AvatarRemover(Protocol):
    """What deleting a user (the service) and expiring a deleted user (the stream consumer) need."""

    def delete(self, user_id: str) -> None:
        """Remove the user's avatar, if any; raises ServiceUnavailable when storage is down."""
