"""The one place that wires real adapters into the service; tests override it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from chalicelib.config import Settings, get_settings
from chalicelib.cursor import CursorCodec
from chalicelib.service import UserService
from chalicelib.tokens import TokenVerifier, url_fetcher

_lock = threading.Lock()
_service: UserService | None = None
_verifier: TokenVerifier | None = None


def get_service() -> UserService:
    global _service
    if _service is None:
        with _lock:
            if _service is None:
                from chalicelib.dynamodb import DynamoUserRepository

                settings = get_settings()
                _service = UserService(DynamoUserRepository(settings.table_name), _cursor_codec(settings))
    return _service


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
                )
    return _verifier.verify


def override(service: UserService | None = None, verifier: TokenVerifier | None = None) -> None:
    """Use these instead of the real adapters (tests)."""
    global _service, _verifier
    with _lock:
        if service is not None:
            _service = service
        if verifier is not None:
            _verifier = verifier


def reset() -> None:
    """Forget wired adapters and settings, so the next request wires them again."""
    global _service, _verifier
    with _lock:
        _service = None
        _verifier = None
    get_settings.cache_clear()
