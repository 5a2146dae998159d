"""The one place that wires the adapters into the service: a typed, frozen `Wiring`, built once
per container from the settings (read once) and where AWS clients come from.

Everything that runs the service uses it: the app (through `current()`), the local stack's
`make user`, the bench and the operator tools (through `wire()` with their own clients). Tests
replace any part, the repository included, with `override(...)` or `use(wire(...))`: the whole
wiring is built again around what they give, so a replaced part reaches every part built on it
(the service on a replaced repository, the authenticator on a replaced revocation check).

The API function's wiring; the stream consumer's is `changes()`, its own function with its own
settings. Parts that only some requests need and whose modules the INIT must not load (the
history route's audit log, the local token verifier) are built on first use.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from chalicelib.adapters import aws
from chalicelib.adapters.avatars import AvatarStore
from chalicelib.config import LOCAL_STAGES, Settings, load_change_settings, load_settings
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.idempotency import IdempotencyStore
from chalicelib.domain.identity import IdentityProvider, Mailer
from chalicelib.domain.repository import UserRepository
from chalicelib.domain.revocation import StandingCheck
from chalicelib.domain.service import UserService, utc_now
from chalicelib.web.authentication import Authenticator

if TYPE_CHECKING:  # loaded on first use: the INIT of the API function never imports them
    from chalicelib.domain.change_consumer import ChangeConsumer
    from chalicelib.domain.exports import Exports
    from chalicelib.domain.history import History
    from chalicelib.domain.imports import Imports
    from chalicelib.domain.job_worker import JobWorker

logger = logging.getLogger("users_api.bootstrap")

# Where an adapter's AWS client comes from: a service name ("dynamodb") to a client. None: the
# container's shared clients (chalicelib/adapters/aws.py), each made on its first use.
Clients = Callable[[str], Any]
Verify = Callable[[str | None], dict[str, Any]]

# What Lambda's INIT makes of the API function's clients (`prepare`): those of its every request
# (the revocation check's read, Cognito's writes). S3 and Secrets Manager are made on the first
# avatar or list request: most containers never serve one (docs/BENCHMARKS.md, "Cold start").
INIT_SERVICES = ("dynamodb", "cognito-idp")


@dataclass(frozen=True)
class Wiring:
    """The API function's parts, each built once. Build it with `wire()`."""

    settings: Settings
    repository: UserRepository
    identities: IdentityProvider
    # Where the code confirming a user's new email goes (the local outbox, or SES).
    mailer: Mailer
    avatars: AvatarStore
    standing: StandingCheck
    cursors: CursorCodec
    service: UserService
    idempotency: IdempotencyStore
    # None in Lambda, where API Gateway's authorizer has verified the token.
    verify: Verify | None
    authenticator: Authenticator
    clients: Clients | None = None
    given_history: History | None = field(default=None, repr=False)

    @cached_property
    def history(self) -> History:
        """The history route's audit trail (its modules load on the route's first request)."""
        if self.given_history is not None:
            return self.given_history
        from chalicelib.adapters.audit_log import DynamoAuditLog
        from chalicelib.domain.history import History

        audit = DynamoAuditLog(self.settings.audit_table_name, _client(self.clients, "dynamodb"))
        return History(audit, self.cursors)

    @cached_property
    def imports(self) -> Imports:
        """POST/GET/DELETE /users/imports (chalicelib/domain/imports.py); lists signed like GET /users."""
        from chalicelib.job_wiring import build_imports

        return build_imports(self.cursors)

    @cached_property
    def exports(self) -> Exports:
        from chalicelib.job_wiring import build_exports

        return build_exports()


def _client(clients: Clients | None, service: str) -> Any:
    return clients(service) if clients is not None else None


def _identities(settings: Settings, clients: Clients | None) -> IdentityProvider:
    client = _client(clients, "cognito-idp")
    if settings.stage in LOCAL_STAGES and settings.outbox_file:
        from chalicelib.adapters.local_outbox import OutboxCognitoIdentityProvider

        invitation = (settings.invitation_subject, settings.invitation_message)
        return OutboxCognitoIdentityProvider(
            settings.user_pool_id, Path(settings.outbox_file), client=client, invitation=invitation
        )
    from chalicelib.adapters.cognito import CognitoIdentityProvider

    return CognitoIdentityProvider(settings.user_pool_id, client=client)


def _mailer(settings: Settings, identities: IdentityProvider, clients: Clients | None) -> Mailer:
    """The local outbox where the identities write theirs, else SES from the stage's sender (its
    client made on first use, not during INIT: only an email change mails)."""
    if hasattr(identities, "send_email_code"):  # the local outbox (never imported on Lambda)
        return cast(Mailer, identities)
    from chalicelib.adapters.ses_mailer import SesMailer

    return SesMailer(settings.mail_from, make=None if clients is None else partial(clients, SesMailer.service))


def _cursor_codec(settings: Settings, clients: Clients | None) -> CursorCodec:
    if settings.cursor_secret:
        return CursorCodec(settings.cursor_secret)

    def from_secrets_manager() -> bytes:
        from chalicelib.adapters.secret_store import cached_secret

        return cached_secret(settings.cursor_secret_arn, _client(clients, "secretsmanager"))

    return CursorCodec(from_secrets_manager)


def _verify(settings: Settings) -> Verify | None:
    """The token check this mode needs: None in Lambda (API Gateway's authorizer did it)."""
    if not settings.verify_tokens:
        return None
    from chalicelib.web.tokens import TokenVerifier, url_fetcher  # local and test stages only

    return TokenVerifier(
        issuer=settings.issuer,
        client_id=settings.user_pool_client_id,
        fetch_jwks=url_fetcher(settings.jwks_url),
        # The emulator signs with a published key: trusted only where it runs.
        trust_emulator_keys=settings.stage in LOCAL_STAGES,
    ).verify


def wire(
    settings: Settings,
    clients: Clients | None = None,
    *,
    repository: UserRepository | None = None,
    identities: IdentityProvider | None = None,
    mailer: Mailer | None = None,
    avatars: AvatarStore | None = None,
    standing: StandingCheck | None = None,
    cursors: CursorCodec | None = None,
    service: UserService | None = None,
    idempotency: IdempotencyStore | None = None,
    verify: Verify | None = None,
    history: History | None = None,
    clock: Callable[[], str] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Wiring:
    """The API's parts from `settings` and `clients`; each part given replaces the real one, and
    the parts built on it are built on what was given. Makes no AWS call and no client (unless
    `clients` makes one when asked)."""
    if repository is None:
        from chalicelib.adapters.dynamodb import DynamoUserRepository

        repository = DynamoUserRepository(settings.table_name, client=_client(clients, "dynamodb"))
    identities = identities or _identities(settings, clients)
    mailer = mailer or _mailer(settings, identities, clients)
    avatars = avatars or AvatarStore(settings.avatar_bucket, client=_client(clients, "s3"))
    standing = standing or StandingCheck(repository.standing)
    cursors = cursors or _cursor_codec(settings, clients)
    if service is None:
        service = UserService(
            repository,
            cursors,
            identities,
            clock=clock or utc_now,
            avatars=avatars,
            standing_changed=standing.remember,
            sleep=sleep or time.sleep,
            mailer=mailer,
        )
    if idempotency is None:
        from chalicelib.adapters.idempotency_store import DynamoIdempotencyStore

        idempotency = DynamoIdempotencyStore(settings.table_name, client=_client(clients, "dynamodb"))
    verify = verify if verify is not None else _verify(settings)
    return Wiring(
        settings=settings,
        repository=repository,
        identities=identities,
        mailer=mailer,
        avatars=avatars,
        standing=standing,
        cursors=cursors,
        service=service,
        idempotency=idempotency,
        verify=verify,
        authenticator=Authenticator(verify, standing),
        clients=clients,
        given_history=history,
    )


# The container's wiring: built on first use (or by `prepare` during Lambda's INIT), then kept.
T = TypeVar("T")


class _Kept(Generic[T]):
    """A part built on first use and kept for the container's life (tests may put their own)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: T | None = None

    def get(self) -> T:
        found = self._value
        if found is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                found = self._value
        return found

    def put(self, value: T | None) -> None:
        """Keep `value` from now on; None: build again on next use."""
        with self._lock:
            self._value = value


def _build_job_worker() -> JobWorker:
    from chalicelib.job_wiring import build_worker

    return build_worker()


# The container's wiring: built on first use (or by `prepare` during Lambda's INIT), then kept; the
# stream consumer's and the bulk jobs worker's parts (their own functions) likewise.
_given: dict[str, Any] = {}
_wiring: _Kept[Wiring] = _Kept(lambda: wire(load_settings(), **_given))
_changes: _Kept[ChangeConsumer] = _Kept(lambda: wire_changes())
_job_worker: _Kept[JobWorker] = _Kept(_build_job_worker)


def current() -> Wiring:
    """This container's wiring, built from its settings on first use and kept for its life."""
    return _wiring.get()


def use(wiring: Wiring) -> None:
    """Serve with `wiring` from now on (tests; `reset()` goes back to the real one)."""
    _wiring.put(wiring)


def override(**parts: Any) -> None:
    """Wire again, on next use, with `parts` (and those given before) in place of the real ones
    (tests): see `wire`. The settings are read again then, from the environment of that moment."""
    _given.update(parts)
    _wiring.put(None)


def changes() -> ChangeConsumer:
    """The stream consumer's parts (its own Lambda function: the API function never builds it)."""
    return _changes.get()


def use_changes(consumer: ChangeConsumer) -> None:
    """Run the stream consumer with `consumer` (tests)."""
    _changes.put(consumer)


def job_worker() -> JobWorker:
    """The bulk jobs worker's parts (its own Lambda function: the API function never builds it)."""
    return _job_worker.get()


def use_job_worker(worker: JobWorker) -> None:
    """Run the bulk jobs worker with `worker` (tests)."""
    _job_worker.put(worker)


def wire_changes(clients: Clients | None = None) -> ChangeConsumer:
    from chalicelib.adapters.audit_log import DynamoAuditLog
    from chalicelib.adapters.event_bus import EventBusPublisher, LocalEventBusPublisher
    from chalicelib.adapters.stream_records import stream_change
    from chalicelib.domain.change_consumer import ChangeConsumer

    settings = load_change_settings()  # read once: the consumer is wired once per container
    events = _client(clients, "events")
    publisher: EventBusPublisher
    if settings.stage in LOCAL_STAGES and settings.events_file:
        publisher = LocalEventBusPublisher(settings.event_bus_name, Path(settings.events_file), client=events)
    else:
        publisher = EventBusPublisher(settings.event_bus_name, client=events)
    avatars = AvatarStore(settings.avatar_bucket, client=_client(clients, "s3"))
    audit = DynamoAuditLog(settings.audit_table_name, client=_client(clients, "dynamodb"))
    return ChangeConsumer(audit, publisher, avatars, decode=stream_change)


def prepare() -> None:
    """Lambda's INIT: wire the API function and make the clients every request uses, so that no
    request pays for them (provisioned concurrency pre-pays only what happens here). Nothing is
    called: a client connects on its first request. Never raises: a missing setting is logged
    here, and the first request that needs it fails as it would have without this.
    """
    try:
        current()
        for service in INIT_SERVICES:
            aws.client(service)
    except Exception:
        logger.exception("could not wire the API during INIT; requests will")
    # What the INIT made (modules, botocore's service models, the clients) lives as long as the
    # container: moved out of the cycle collector's reach, no later collection walks it again. A
    # full collection over it cost about 3 ms of CPU whenever one fell in the first request
    # (`make bench`, first GET after INIT). The price: cyclic garbage the INIT left behind is
    # never freed, a one-off amount, not one that grows.
    gc.freeze()


def reset() -> None:
    """Forget the wiring (and so the settings), so the next request wires from the environment again."""
    _given.clear()
    _wiring.put(None)
    _changes.put(None)
    _job_worker.put(None)
