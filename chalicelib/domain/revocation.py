"""Revocation: the API refuses tokens its users no longer deserve, within a bounded time.

Cognito ID tokens stay valid until they expire (60 minutes), and API Gateway's authorizer keeps
accepting them. So every authenticated request also checks its caller's record: a deleted or
disabled user is refused (401), and so is every token issued at or before the record's
`tokensValidAfter`, which a role change, a disable or an enable, a confirmed email change, an
admin's password reset or sign-out moves to the second of the change
(models.tokens_valid_after). A token's `iat` has whole seconds, so the sign-in itself changes only
once the next second has begun on Cognito's clock (service.UserService._follow): a token issued
before the change is always refused, and one issued after it (after the API answered) always
accepted. The enable moves it too: a token issued while the disable was being applied (between
its record write and Cognito's disable) would otherwise count again.
The record's role also caps the token's: a token still listing `admins` after a demotion acts as
a member. What was read is kept per container for at most STANDING_TTL_S, so the check costs one
read per caller per container and minute, and nothing for a warm container's repeated callers. A
container's own writes replace it at once; one whose outcome is unknown (503) drops it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from chalicelib.cache import TTLCache
from chalicelib.domain.access import ADMIN_GROUP, Identity
from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.models import ADMIN, Standing

# Under a minute, so a change reaches every container within 60 s (plus DynamoDB's replication
# lag for the eventually consistent read, typically well under a second).
STANDING_TTL_S = 50
MAX_CALLERS = 10_000


class Revoked(Unauthorized):
    message = (
        "This token was revoked (the user was disabled, deleted, changed role or email, or was signed out);"
        " sign in again"
    )


class StandingCheck:
    def __init__(
        self,
        lookup: Callable[[str], Standing],
        ttl_s: float = STANDING_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._lookup = lookup
        self._cache: TTLCache[str, Standing] = TTLCache(MAX_CALLERS, ttl_s, clock)

    def confirm(self, identity: Identity) -> Identity:
        """The identity as its record allows it; Revoked when the token may not be used."""
        standing = self._cache.get_or_load(identity.sub, lambda: self._lookup(identity.sub))
        if standing.deleted or not standing.enabled:
            raise Revoked()
        if standing.tokens_valid_after and identity.issued_at <= standing.tokens_valid_after:
            raise Revoked()
        if standing.exists and standing.role != ADMIN and identity.is_admin:
            return replace(identity, groups=identity.groups - {ADMIN_GROUP})
        return identity

    def remember(self, sub: str, standing: Standing | None) -> None:
        """This container just wrote `sub`'s record: use what it wrote, without reading it back.
        None: a write whose outcome is unknown (503) may have changed it; read it again next time."""
        if standing is None:
            self._cache.discard(sub)
        else:
            self._cache.set(sub, standing)

    def clear(self) -> None:
        self._cache.clear()
