"""Settings read from the environment (set per stage in .chalice/config.json)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.cache import TTLCache

# Every environment variable the app's functions read as a setting: the local stack and `chalice
# package` give them from .chalice/config.json, never from whatever the calling process has.
APP_SETTINGS = {
    "STAGE", "TABLE_NAME", "USER_POOL_ID", "USER_POOL_CLIENT_ID", "USER_POOL_ARN", "CORS_ALLOW_ORIGIN",
    "CURSOR_SECRET", "CURSOR_SECRET_ARN", "AWS_ENDPOINT_URL", "JWKS_URL", "MAX_BODY_BYTES", "LOG_LEVEL",
    "AWS_LAMBDA_FUNCTION_NAME", "REQUIRE_API_KEY", "AVATAR_BUCKET",
    "AUDIT_TABLE_NAME", "EVENT_BUS_NAME", "EVENTS_FILE", "USERS_STREAM_ARN", "AWS_READ_TIMEOUT_S",
    "INVITATION_EMAIL_SUBJECT", "INVITATION_EMAIL_MESSAGE",
    "JOBS_TABLE_NAME", "JOBS_QUEUE", "JOBS_QUEUE_URL", "IMPORT_ROWS_PER_SECOND", "EXPORT_READ_UNITS_PER_SECOND",
}  # fmt: skip

# Stages where the embedded stack runs and developer conveniences are allowed.
LOCAL_STAGES = frozenset({"local", "test"})
DEFAULT_MAX_BODY_BYTES = 8 * 1024
DEFAULT_METRICS_NAMESPACE = "UsersApi"


class ConfigurationError(RuntimeError):
    """A required setting is missing or invalid; raised on first use, not at import."""


def environment(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    """`environ`, or the process's environment when it is None (every setting reader's argument)."""
    # Looked up on each call, not bound as a default: Chalice's test client swaps os.environ.
    return os.environ if environ is None else environ


def running_in_lambda(environ: Mapping[str, str] | None = None) -> bool:
    """True inside AWS Lambda, where API Gateway's Cognito authorizer has verified the token.

    `chalice local` and the Chalice test client never set AWS_LAMBDA_FUNCTION_NAME, and the
    Chalice CLI sets AWS_CHALICE_CLI_MODE, so neither can be mistaken for Lambda.
    """
    environ = environment(environ)
    return bool(environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not environ.get("AWS_CHALICE_CLI_MODE")


# The handler Chalice gives the API function; the pre-traffic hook, also in app.py, has another.
API_HANDLER = "app.app"


def initialising_api_function(environ: Mapping[str, str] | None = None) -> bool:
    """True while Lambda imports app.py for the API function (its INIT), where the AWS clients
    are made before the first request; False locally, in tests and in the hook function."""
    environ = environment(environ)
    return running_in_lambda(environ) and environ.get("_HANDLER", API_HANDLER) == API_HANDLER


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_name: str
    user_pool_id: str
    user_pool_client_id: str
    max_body_bytes: int
    # Exactly one is set: the secret itself (local stages) or where to read it (deployed).
    cursor_secret: bytes
    cursor_secret_arn: str
    jwks_url: str
    verify_tokens: bool
    # Checked where avatars are used (chalicelib.adapters.avatars), so routes without avatars never need it.
    avatar_bucket: str = ""
    # Local stages only: where the messages Cognito would send are written (chalicelib/adapters/local_outbox.py),
    # and the invitation's subject and text as the stage's pool words them (infra/invitation.py).
    outbox_file: str = ""
    invitation_subject: str = ""
    invitation_message: str = ""
    # The audit trail the history route reads, checked where used, as the avatar bucket.
    audit_table_name: str = ""
    # The sender of the mail confirming a user's new email (an address or domain verified in
    # SES: chalicelib/adapters/ses_mailer.py); checked where used, as the avatar bucket.
    mail_from: str = ""

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"


# The local stages' authorizer never reaches API Gateway, so any pool will do there.
LOCAL_POOL_ARN = "arn:aws:cognito-idp:us-east-1:000000000000:userpool/unset"
_POOL_ARN = re.compile(r"arn:aws[a-z-]*:cognito-idp:([a-z]+-)+\d:\d{12}:userpool/([a-z]+-)+\d_[0-9A-Za-z]+")


def user_pool_arn(environ: Mapping[str, str] | None = None) -> str:
    """The pool ARN the API Gateway authorizer trusts (needed at import to declare routes).

    Outside the local stages it must be a real pool ARN: Chalice imports the app to deploy or
    package it, so `chalice deploy` stops here, before any AWS call, instead of deploying an
    authorizer for a pool that does not exist.
    """
    environ = environment(environ)
    value = environ.get("USER_POOL_ARN", "").strip()
    stage = environ.get("STAGE", "local")
    if stage in LOCAL_STAGES:
        return value or LOCAL_POOL_ARN
    if not _POOL_ARN.fullmatch(value):
        raise ConfigurationError(
            f"USER_POOL_ARN is {value or 'not set'!r} for stage {stage!r}: it must be the ARN of the stage's "
            "Cognito user pool (arn:aws:cognito-idp:<region>:<account>:userpool/<pool id>). Set it in "
            f".chalice/config.json, stages.{stage}.environment_variables, from the base stack's UserPoolArn "
            "output (docs/DEPLOY.md)."
        )
    return value


def jobs_queue_name(environ: Mapping[str, str] | None = None) -> str:
    """The queue the worker's event source mapping reads (read at import: it declares the worker).
    Each stage names it in .chalice/config.json (JOBS_QUEUE); unset, it is the stage's by convention.
    Only Chalice's deployer and packager read it: inside Lambda the mapping exists already."""
    environ = environment(environ)
    return environ.get("JOBS_QUEUE", "").strip() or f"users-api-{environ.get('STAGE', 'local')}-jobs"


# The local stages' stream is the emulator's, which the local stack reads itself (devstack/streams.py).
LOCAL_STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/users-local/stream/local"
_STREAM_ARN = re.compile(r"arn:aws[a-z-]*:dynamodb:([a-z]+-)+\d:\d{12}:table/[A-Za-z0-9_.-]{3,255}/stream/\S+")


def users_stream_arn(environ: Mapping[str, str] | None = None) -> str:
    """The users table's stream, which the change consumer's event source mapping reads (needed at
    import to declare the consumer).

    Only Chalice's deployer reads it: `chalice deploy` creates the mapping from it, so outside the
    local stages it must be a real stream ARN there (packaging gives a stand-in that the templates
    replace with the table's own). Inside Lambda the mapping exists already and nothing reads it.
    """
    environ = environment(environ)
    value = environ.get("USERS_STREAM_ARN", "").strip()
    stage = environ.get("STAGE", "local")
    if stage in LOCAL_STAGES or running_in_lambda(environ):
        return value or LOCAL_STREAM_ARN
    if not _STREAM_ARN.fullmatch(value):
        raise ConfigurationError(
            f"USERS_STREAM_ARN is {value or 'not set'!r} for stage {stage!r}: it must be the ARN of the users "
            f"table's stream. Set it in .chalice/config.json, stages.{stage}.environment_variables, from the base "
            "stack's UsersTableStreamArn output (docs/DEPLOY.md)."
        )
    return value


def reports_batch_item_failures(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the consumer's event source mapping takes partial batch responses. Both templates set
    it (with ReportBatchItemFailures on the mapping) and the local stack honours them; a mapping
    made by `chalice deploy` does not, and would take a reported failure for success."""
    environ = environment(environ)
    return environ.get("STAGE", "local") in LOCAL_STAGES or environ.get("REPORT_BATCH_ITEM_FAILURES") == "true"


def require_api_key(environ: Mapping[str, str] | None = None) -> bool:
    """Whether /users routes also need an API key (read at import: it shapes the routes)."""
    value = environment(environ).get("REQUIRE_API_KEY", "false").strip().lower()
    if value not in {"true", "false"}:
        raise ConfigurationError("REQUIRE_API_KEY must be true or false")
    return value == "true"


# `make run`'s browser origins: a front end on port 3000, however its address is written.
DEFAULT_LOCAL_ORIGINS = ("http://localhost:3000", "http://127.0.0.1:3000")
# scheme://host[:port] exactly as a browser sends it in Origin: no path, no trailing slash.
_ORIGIN = re.compile(r"(https?)://([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


def cors_allow_origins(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The browser origins the API answers (CORS_ALLOW_ORIGIN, comma-separated).

    Local stages take a short list (each allowed origin is answered with itself) or `*`. Deployed
    stages take exactly one https origin: API Gateway answers preflights itself with one fixed
    origin, so a list could never be honoured there, and `*` would let any site call the API.
    """
    environ = environment(environ)
    stage = environ.get("STAGE", "local")
    local = stage in LOCAL_STAGES
    raw = environ.get("CORS_ALLOW_ORIGIN", "").strip()
    if not raw:
        if local:
            return DEFAULT_LOCAL_ORIGINS
        raise ConfigurationError(
            f"CORS_ALLOW_ORIGIN is required for stage {stage!r}: the one https origin of its front end"
        )
    origins = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if "*" in origins:
        if not local:
            raise ConfigurationError("CORS_ALLOW_ORIGIN may not be '*' outside the local stages")
        if len(origins) > 1:
            raise ConfigurationError("CORS_ALLOW_ORIGIN: '*' allows every origin, so it stands alone")
        return origins
    if not local and len(origins) != 1:
        raise ConfigurationError(
            f"CORS_ALLOW_ORIGIN must be exactly one origin for stage {stage!r} (API Gateway answers preflights "
            f"with one fixed origin); got {len(origins)}"
        )
    for origin in origins:
        match = _ORIGIN.fullmatch(origin)
        if match is None:
            raise ConfigurationError(
                f"CORS_ALLOW_ORIGIN: {origin!r} is not an origin (scheme://host[:port], no path or trailing slash)"
            )
        if not local and match.group(1) != "https":
            raise ConfigurationError(f"CORS_ALLOW_ORIGIN must be an https origin for stage {stage!r}")
    return origins


def cors_allow_origin(environ: Mapping[str, str] | None = None) -> str:
    """The one origin Chalice's CORSConfig (and so a deployed API's preflight) names: in a local
    stage's list the first; the others are answered per request (chalicelib/web/cors.py)."""
    return cors_allow_origins(environ)[0]


def _require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is required")
    return value


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer") from exc
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive")
    return value


def _cursor_secret(environ: Mapping[str, str], stage: str) -> tuple[str, str]:
    """Deployed stages name a Secrets Manager secret (CURSOR_SECRET_ARN) so the value is never
    in a template or config file; local stages may pass it directly or have one generated."""
    arn = environ.get("CURSOR_SECRET_ARN", "").strip()
    if arn:
        return "", arn
    secret = environ.get("CURSOR_SECRET", "")
    if stage not in LOCAL_STAGES:
        raise ConfigurationError("CURSOR_SECRET_ARN is required outside the local stages")
    # Without one, cursors last as long as the process.
    return secret or secrets.token_hex(32), ""


def _jwks_url(environ: Mapping[str, str], stage: str, region: str, pool_id: str) -> str:
    """Where signing keys come from: outside the local stages only ever the pool's own Cognito URL,
    so no setting (an emulator endpoint, a stray JWKS_URL) can make the app trust other keys."""
    cognito = f"https://cognito-idp.{region}.amazonaws.com/{pool_id}/.well-known/jwks.json"
    configured = environ.get("JWKS_URL", "").strip()
    if stage not in LOCAL_STAGES:
        if configured and configured != cognito:
            raise ConfigurationError(f"JWKS_URL must be {cognito} outside the local stages")
        return cognito
    if configured:
        return configured
    endpoint = environ.get("AWS_ENDPOINT_URL", "").strip().rstrip("/")
    return f"{endpoint}/{pool_id}/.well-known/jwks.json" if endpoint else cognito


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    environ = environment(environ)
    stage = environ.get("STAGE", "local")
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    pool_id = _require(environ, "USER_POOL_ID")
    secret, secret_arn = _cursor_secret(environ, stage)
    verify = not running_in_lambda(environ)
    jwks_url = _jwks_url(environ, stage, region, pool_id)
    return Settings(
        stage=stage,
        region=region,
        table_name=_require(environ, "TABLE_NAME"),
        user_pool_id=pool_id,
        user_pool_client_id=_require(environ, "USER_POOL_CLIENT_ID"),
        max_body_bytes=_positive_int(environ, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        cursor_secret=secret.encode(),
        cursor_secret_arn=secret_arn,
        jwks_url=jwks_url,
        verify_tokens=verify,
        avatar_bucket=environ.get("AVATAR_BUCKET", "").strip(),
        outbox_file=environ.get("OUTBOX_FILE", "").strip() if stage in LOCAL_STAGES else "",
        invitation_subject=environ.get("INVITATION_EMAIL_SUBJECT", "") if stage in LOCAL_STAGES else "",
        invitation_message=environ.get("INVITATION_EMAIL_MESSAGE", "") if stage in LOCAL_STAGES else "",
        audit_table_name=environ.get("AUDIT_TABLE_NAME", "").strip(),
        mail_from=environ.get("MAIL_FROM", "").strip(),
    )


@dataclass(frozen=True)
class ChangeSettings:
    """What the change consumer needs: its function is given these and none of the API's (pool,
    cursor secret), so it never reads Settings."""

    stage: str
    audit_table_name: str
    event_bus_name: str
    avatar_bucket: str
    # Local stages only: where every published change event is also written (chalicelib/adapters/event_bus.py).
    events_file: str = ""


def load_change_settings(environ: Mapping[str, str] | None = None) -> ChangeSettings:
    environ = environment(environ)
    stage = environ.get("STAGE", "local")
    return ChangeSettings(
        stage=stage,
        audit_table_name=_require(environ, "AUDIT_TABLE_NAME"),
        event_bus_name=_require(environ, "EVENT_BUS_NAME"),
        avatar_bucket=_require(environ, "AVATAR_BUCKET"),
        events_file=environ.get("EVENTS_FILE", "").strip() if stage in LOCAL_STAGES else "",
    )


# Settings are read once per container, by the wiring that is built from them (chalicelib/bootstrap.py).
# Telemetry is read apart from them: a missing setting must never stop the request log.
SETTINGS_TTL_S = 300


@dataclass(frozen=True)
class Telemetry:
    """What the request log line needs, read apart from Settings so that it never fails a request."""

    stage: str
    # METRICS=emf or off; by default on in Lambda, off locally where nothing reads them.
    metrics: bool
    namespace: str


def load_telemetry(environ: Mapping[str, str] | None = None) -> Telemetry:
    environ = environment(environ)
    setting = environ.get("METRICS", "").strip().lower()
    return Telemetry(
        stage=environ.get("STAGE", "local"),
        metrics=setting == "emf" if setting in {"emf", "off"} else running_in_lambda(environ),
        namespace=environ.get("METRICS_NAMESPACE", "").strip() or DEFAULT_METRICS_NAMESPACE,
    )


telemetry_cache: TTLCache[str, Telemetry] = TTLCache(max_size=1, ttl_seconds=SETTINGS_TTL_S)


def get_telemetry() -> Telemetry:
    return telemetry_cache.get_or_load("telemetry", load_telemetry)


def clear_settings() -> None:
    """Read the telemetry settings again on next use (tests that change the environment)."""
    telemetry_cache.clear()
