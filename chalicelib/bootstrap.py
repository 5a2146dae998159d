"""The one place that wires real adapters into the service; tests override it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from chalicelib.adapters import aws
from chalicelib.adapters.avatars import AvatarStore
from chalicelib.config import LOCAL_STAGES, Settings, clear_settings, get_settings, load_change_settings
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.identity import IdentityProvider, Mailer
from chalicelib.domain.repository import UserRepository
from chalicelib.domain.revocation import StandingCheck
from chalicelib.domain.service import UserService
from chalicelib.web.authentication import Authenticator
from chalicelib.web.idempotency import IdempotencyStore

if TYPE_CHECKING:  # token verification is only for local and test stages: never imported on Lambda
    from chalicelib.domain.change_consumer import ChangeConsumer
    from chalicelib.domain.exports import Exports
    from chalicelib.domain.history import History
    from chalicelib.domain.imports import Imports
    from chalicelib.domain.job_worker import JobWorker
    from chalicelib.web.tokens import TokenVerifier

T = TypeVar("T")

logger = logging.getLogger("users_api.bootstrap")
# Made by `prepare` besides the adapters' own: the cursor secret's reader (chalicelib/adapters/secret_store.py).
SECRETS_SERVICE = "secretsmanager"

# Reentrant: wiring the service wires the avatar store it uses.
_lock = threading.RLock()
_wired: dict[str, Any] = {}


def _once(name: str, build: Callable[[], T]) -> T:
    """The adapter wired under `name`, built on first use and kept for the container's life."""
    found = _wired.get(name)
    if found is None:
        with _lock:
            found = _wired.get(name)
            if found is None:
                found = _wired[name] = build()
    return cast(T, found)


def get_repository() -> UserRepository:
    def build() -> UserRepository:
        from chalicelib.adapters.dynamodb import DynamoUserRepository

        return DynamoUserRepository(get_settings().table_name)

    return _once("repository", build)


def get_identities() -> IdentityProvider:
    def build() -> IdentityProvider:
        settings = get_settings()
        if settings.stage in LOCAL_STAGES and settings.outbox_file:
            from chalicelib.adapters.local_outbox import OutboxCognitoIdentityProvider

            invitation = (settings.invitation_subject, settings.invitation_message)
            return OutboxCognitoIdentityProvider(
                settings.user_pool_id, Path(settings.outbox_file), invitation=invitation
            )
        from chalicelib.adapters.cognito import CognitoIdentityProvider

        return CognitoIdentityProvider(settings.user_pool_id)

    return _once("identities", build)


def get_mailer() -> Mailer:
    """Where the code confirming a new email goes: the local outbox where the identities write
    theirs, else SES from the stage's sender."""

    def build() -> Mailer:
        identities = get_identities()
        if hasattr(identities, "send_email_code"):  # the local outbox (never imported on Lambda)
            return cast(Mailer, identities)
        from chalicelib.adapters.ses_mailer import SesMailer

        return SesMailer(get_settings().mail_from)

    # Its SES client is made on first use, not during INIT: only an email change mails.
    return _once("mailer", build)


def get_standing() -> StandingCheck:
    return _once("standing", lambda: StandingCheck(get_repository().standing))


def get_service() -> UserService:
    def build() -> UserService:
        settings = get_settings()
        return UserService(
            get_repository(),
            _cursor_codec(settings),
            get_identities(),
            avatars=get_avatars(),
            standing_changed=get_standing().remember,
            mailer=get_mailer(),
        )

    return _once("service", build)


def get_idempotency_store() -> IdempotencyStore:
    def build() -> IdempotencyStore:
        from chalicelib.adapters.idempotency_store import DynamoIdempotencyStore

        return DynamoIdempotencyStore(get_settings().table_name)

    return _once("idempotency", build)


def get_avatars() -> AvatarStore:
    return _once("avatars", lambda: AvatarStore(get_settings().avatar_bucket))


def get_history() -> History:
    def build() -> History:
        from chalicelib.adapters.audit_log import DynamoAuditLog
        from chalicelib.domain.history import History

        settings = get_settings()
        return History(DynamoAuditLog(settings.audit_table_name), _cursor_codec(settings))

    return _once("history", build)


def get_change_consumer() -> ChangeConsumer:
    """The stream consumer's adapters (its own Lambda function: the API function never builds it)."""

    def build() -> ChangeConsumer:
        from chalicelib.adapters.audit_log import DynamoAuditLog
        from chalicelib.adapters.event_bus import EventBusPublisher, LocalEventBusPublisher
        from chalicelib.domain.change_consumer import ChangeConsumer

        settings = load_change_settings()  # read once: the consumer is wired once per container
        publisher: EventBusPublisher
        if settings.stage in LOCAL_STAGES and settings.events_file:
            publisher = LocalEventBusPublisher(settings.event_bus_name, Path(settings.events_file))
        else:
            publisher = EventBusPublisher(settings.event_bus_name)
        avatars = AvatarStore(settings.avatar_bucket)
        return ChangeConsumer(DynamoAuditLog(settings.audit_table_name), publisher, avatars)

    return _once("changes", build)


def get_imports() -> Imports:
    """POST/GET/DELETE /users/imports (chalicelib/domain/imports.py); lists signed like GET /users."""

    def build() -> Imports:
        from chalicelib.job_wiring import build_imports

        return build_imports(_cursor_codec(get_settings()))

    return _once("imports", build)


def get_exports() -> Exports:
    def build() -> Exports:
        from chalicelib.job_wiring import build_exports

        return build_exports()

    return _once("exports", build)


def get_job_worker() -> JobWorker:
    """The bulk jobs worker's adapters (its own Lambda function: the API function never builds it)."""

    def build() -> JobWorker:
        from chalicelib.job_wiring import build_worker

        return build_worker()

    return _once("job_worker", build)


def _cursor_codec(settings: Settings) -> CursorCodec:
    if settings.cursor_secret:
        return CursorCodec(settings.cursor_secret)

    def from_secrets_manager() -> bytes:
        from chalicelib.adapters.secret_store import cached_secret

        return cached_secret(settings.cursor_secret_arn)

    return CursorCodec(from_secrets_manager)


def get_verify() -> Callable[[str | None], dict[str, Any]] | None:
    """The token check this mode needs: None in Lambda, where API Gateway has done it."""
    settings = get_settings()
    if not settings.verify_tokens:
        return None

    def build() -> TokenVerifier:
        from chalicelib.web.tokens import TokenVerifier, url_fetcher

        return TokenVerifier(
            issuer=settings.issuer,
            client_id=settings.user_pool_client_id,
            fetch_jwks=url_fetcher(settings.jwks_url),
            # The emulator signs with a published key: trusted only where it runs.
            trust_emulator_keys=settings.stage in LOCAL_STAGES,
        )

    return _once("verifier", build).verify


def get_authenticator() -> Authenticator:
    """Who is calling a protected route, as this mode checks it (chalicelib/web/authentication.py)."""
    return _once("authenticator", lambda: Authenticator(get_verify(), get_standing()))


def prepare() -> None:
    """Lambda's INIT: wire every adapter and make every AWS client now, so that no request pays
    for them (about 100 ms of CPU, which provisioned concurrency pre-pays only if it happens
    here). Nothing is called: a client connects on its first request, and the cursor secret is
    read on first use. Never raises: a missing setting is logged here, and the first request
    that needs it fails as it would have without this.
    """
    try:
        adapters: list[object] = [get_service(), get_repository(), get_identities(), get_avatars()]
        adapters.append(get_idempotency_store())
        get_standing()
        for adapter in adapters:
            if isinstance(adapter, aws.ClientHolder):
                adapter.make_client()
        aws.client(SECRETS_SERVICE)
    except Exception:
        logger.exception("could not make the AWS clients during INIT; requests will make them")


def override(
    service: UserService | None = None,
    verifier: TokenVerifier | None = None,
    idempotency: IdempotencyStore | None = None,
    avatars: AvatarStore | None = None,
    identities: IdentityProvider | None = None,
    standing: StandingCheck | None = None,
    history: History | None = None,
    changes: ChangeConsumer | None = None,
    job_worker: JobWorker | None = None,
) -> None:
    """Use these instead of the real adapters (tests)."""
    given = {
        "service": service,
        "verifier": verifier,
        "idempotency": idempotency,
        "avatars": avatars,
        "identities": identities,
        "standing": standing,
        "history": history,
        "changes": changes,
        "job_worker": job_worker,
    }
    with _lock:
        _wired.update({name: adapter for name, adapter in given.items() if adapter is not None})
        # Built from the verifier and the revocation check: made again from what is wired now.
        _wired.pop("authenticator", None)


def reset() -> None:
    """Forget wired adapters and settings, so the next request wires them again."""
    with _lock:
        _wired.clear()
    clear_settings()
