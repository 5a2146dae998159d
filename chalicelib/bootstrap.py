"""The one place that wires real adapters into the service; tests override it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from chalicelib.avatars import AvatarStore
from chalicelib.config import LOCAL_STAGES, Settings, get_settings
from chalicelib.cursor import CursorCodec
from chalicelib.idempotency import IdempotencyStore
from chalicelib.service import UserService
from chalicelib.tokens import TokenVerifier, url_fetcher

_lock = threading.Lock()
_service: UserService | None = None
_idempotency: IdempotencyStore | None = None
_verifier: TokenVerifier | None = None
_avatars: AvatarStore | None = None


def get_service() -> UserService:
    global _service
    if _service is None:
        avatars = get_avatars()  # before taking the lock, which get_avatars takes too
        with _lock:
            if _service is None:
                from chalicelib.dynamodb import DynamoUserRepository

                settings = get_settings()
                _service = UserService(
                    DynamoUserRepository(settings.table_name), _cursor_codec(settings), avatars=avatars
                )
    return _service


def get_idempotency_store() -> IdempotencyStore:
    global _idempotency
    if _idempotency is None:
        with _lock:
            if _idempotency is None:
                from chalicelib.dynamodb_idempotency import DynamoIdempotencyStore

                _idempotency = DynamoIdempotencyStore(get_settings().table_name)
    return _idempotency


def get_avatars() -> AvatarStore:
    global _avatars
    if _avatars is None:
        with _lock:
            if _avatars is None:
                _avatars = AvatarStore(get_settings().avatar_bucket)
    return _avatars


def _cursor_codec(settings: Settings) -> CursorCodec:
    if settings.cursor_secret:
        return CursorCodec(settings.cursor_secret)

    def from_secrets_manager() -> bytes:
        from chalicelib.secret_store import read_secret

        return read_secret(settings.cursor_secret_arn)

    return CursorCodec(from_secrets_manager)


def get_verify() -> Callable[[str | None], dict[str, Any]] | None:
    """The token check this mode needs: None in Lambda, where API Gateway has done it."""
    global _verifier
    settings = get_settings()
    if not settings.verify_tokens:
        return None
    if _verifier is None:
        with _lock:
            if _verifier is None:
                _verifier = TokenVerifier(
                    issuer=settings.issuer,
                    client_id=settings.user_pool_client_id,
                    fetch_jwks=url_fetcher(settings.jwks_url),
                    # The emulator signs with a published key: trusted only where it runs.
                    trust_emulator_keys=settings.stage in LOCAL_STAGES,
                )
    return _verifier.verify


def override(
    service: UserService | None = None,
    verifier: TokenVerifier | None = None,
    idempotency: IdempotencyStore | None = None,
) -> None:
    """Use these instead of the real adapters (tests)."""
    global _service, _verifier, _idempotency
    with _lock:
        if service is not None:
            _service = service
        if verifier is not None:
            _verifier = verifier
        if idempotency is not None:
            _idempotency = idempotency


def reset() -> None:
    """Forget wired adapters and settings, so the next request wires them again."""
    global _service, _verifier, _idempotency, _avatars
    with _lock:
        _service = None
        _verifier = None
        _idempotency = None
        _avatars = None
    get_settings.cache_clear()
