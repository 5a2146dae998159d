"""Settings: safe defaults, and refusals where a setting would be unsafe."""

from __future__ import annotations

import pytest

from chalicelib.config import (
    DEFAULT_LOCAL_ORIGINS,
    ConfigurationError,
    cors_allow_origin,
    cors_allow_origins,
    load_settings,
    require_api_key,
    running_in_lambda,
    user_pool_arn,
)

BASE = {"TABLE_NAME": "users", "USER_POOL_ID": "us-east-1_Pool", "USER_POOL_CLIENT_ID": "client"}


def test_wildcard_cors_is_refused_outside_the_local_stages() -> None:
    assert cors_allow_origin({"STAGE": "local", "CORS_ALLOW_ORIGIN": "*"}) == "*"
    with pytest.raises(ConfigurationError):
        cors_allow_origin({"STAGE": "prod", "CORS_ALLOW_ORIGIN": "*"})
    assert cors_allow_origin({"STAGE": "prod", "CORS_ALLOW_ORIGIN": "https://app.example.com"}) == (
        "https://app.example.com"
    )


def test_make_run_allows_port_3000_however_its_address_is_written() -> None:
    """A browser sends http://127.0.0.1:3000 or http://localhost:3000 depending on the address typed."""
    assert cors_allow_origins({}) == cors_allow_origins({"STAGE": "local"}) == DEFAULT_LOCAL_ORIGINS
    assert set(DEFAULT_LOCAL_ORIGINS) == {"http://localhost:3000", "http://127.0.0.1:3000"}


def test_a_local_stage_takes_a_short_list_of_origins() -> None:
    environ = {"STAGE": "local", "CORS_ALLOW_ORIGIN": " http://localhost:5173, http://[::1]:5173,http://localhost:5173"}
    assert cors_allow_origins(environ) == ("http://localhost:5173", "http://[::1]:5173")
    assert cors_allow_origin(environ) == "http://localhost:5173"  # what Chalice's CORSConfig names


@pytest.mark.parametrize(
    "value",
    [
        "*,http://localhost:3000",  # `*` stands alone
        "http://localhost:3000/",  # a browser's Origin never ends in a slash
        "localhost:3000",
        "http://localhost:3000/app",
        "ftp://localhost",
    ],
)
def test_a_local_stage_refuses_what_is_not_an_origin(value: str) -> None:
    with pytest.raises(ConfigurationError):
        cors_allow_origins({"STAGE": "local", "CORS_ALLOW_ORIGIN": value})


@pytest.mark.parametrize(
    "value",
    [
        None,  # no default outside the local stages
        "https://app.example.com,https://admin.example.com",  # API Gateway's preflight names one origin
        "http://app.example.com",  # plain http: any network on the way could script the API
        "https://app.example.com/",
        "*",
    ],
)
def test_a_deployed_stage_takes_exactly_one_https_origin(value: str | None) -> None:
    environ = {"STAGE": "prod"} if value is None else {"STAGE": "prod", "CORS_ALLOW_ORIGIN": value}
    with pytest.raises(ConfigurationError):
        cors_allow_origins(environ)


POOL_ARN = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC123xyz"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "arn:aws:cognito-idp:us-east-1:000000000000:userpool/unset",  # the local stand-in
        "arn:aws:cognito-idp:us-east-1:123456789012:userpool/REPLACE_ME",
        "${aws_cognito_user_pool.users.arn}",
        "arn:aws:iam::123456789012:role/users-api-prod",
    ],
)
def test_deployed_stages_refuse_a_missing_or_placeholder_pool_arn(value: str | None) -> None:
    """The authorizer would otherwise be deployed for a pool that does not exist."""
    environ = {"STAGE": "dev"} if value is None else {"STAGE": "dev", "USER_POOL_ARN": value}
    with pytest.raises(ConfigurationError, match=r"USER_POOL_ARN .*stages\.dev\.environment_variables"):
        user_pool_arn(environ)


def test_deployed_stages_take_a_pool_arn_and_local_stages_any() -> None:
    assert user_pool_arn({"STAGE": "prod", "USER_POOL_ARN": POOL_ARN}) == POOL_ARN
    assert user_pool_arn({"STAGE": "us-gov", "USER_POOL_ARN": POOL_ARN.replace("eu-west-1", "us-gov-west-1")})
    assert user_pool_arn({"STAGE": "local"}).endswith(":userpool/unset")
    assert user_pool_arn({"STAGE": "test", "USER_POOL_ARN": POOL_ARN}) == POOL_ARN


ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:users-api/prod/cursor-secret-AbCdEf"


def test_deployed_stages_read_the_cursor_secret_from_secrets_manager() -> None:
    with pytest.raises(ConfigurationError, match="CURSOR_SECRET_ARN"):
        load_settings({**BASE, "STAGE": "prod"})
    # A secret in clear in the environment (so in config.json or a template) is refused.
    with pytest.raises(ConfigurationError, match="CURSOR_SECRET_ARN"):
        load_settings({**BASE, "STAGE": "prod", "CURSOR_SECRET": "s" * 32})
    settings = load_settings({**BASE, "STAGE": "prod", "CURSOR_SECRET_ARN": ARN})
    assert (settings.cursor_secret, settings.cursor_secret_arn) == (b"", ARN)


def test_local_stages_take_a_cursor_secret_or_generate_one() -> None:
    assert load_settings({**BASE, "STAGE": "test", "CURSOR_SECRET": "s" * 32}).cursor_secret == b"s" * 32
    generated = load_settings({**BASE, "STAGE": "local"})
    assert len(generated.cursor_secret) >= 32
    assert generated.cursor_secret_arn == ""
    assert load_settings({**BASE, "STAGE": "local", "CURSOR_SECRET_ARN": ARN}).cursor_secret_arn == ARN


@pytest.mark.parametrize("missing", sorted(BASE))
def test_required_settings_are_required(missing: str) -> None:
    environ = {key: value for key, value in BASE.items() if key != missing}
    with pytest.raises(ConfigurationError, match=missing):
        load_settings(environ)


@pytest.mark.parametrize("raw", ["0", "-5", "abc"])
def test_body_limit_must_be_a_positive_integer(raw: str) -> None:
    with pytest.raises(ConfigurationError):
        load_settings({**BASE, "MAX_BODY_BYTES": raw})


def test_tokens_are_verified_everywhere_but_lambda() -> None:
    assert load_settings(BASE).verify_tokens
    assert not load_settings({**BASE, "AWS_LAMBDA_FUNCTION_NAME": "fn", "CURSOR_SECRET_ARN": ARN}).verify_tokens
    assert not running_in_lambda({})
    assert running_in_lambda({"AWS_LAMBDA_FUNCTION_NAME": "fn"})
    assert not running_in_lambda({"AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_CHALICE_CLI_MODE": "true"})


def test_issuer_and_jwks_url_come_from_configuration() -> None:
    settings = load_settings({**BASE, "AWS_REGION": "eu-west-1"})
    assert settings.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_Pool"
    assert settings.jwks_url == "https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_Pool/.well-known/jwks.json"
    local = load_settings({**BASE, "AWS_ENDPOINT_URL": "http://127.0.0.1:5000/"})
    assert local.jwks_url == "http://127.0.0.1:5000/us-east-1_Pool/.well-known/jwks.json"


def test_api_keys_are_required_only_where_a_stage_says_so() -> None:
    assert not require_api_key({})
    assert require_api_key({"REQUIRE_API_KEY": "true"})
    assert not require_api_key({"REQUIRE_API_KEY": "false"})
    with pytest.raises(ConfigurationError):
        require_api_key({"REQUIRE_API_KEY": "yes"})


COGNITO_JWKS = "https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_Pool/.well-known/jwks.json"
DEPLOYED = {**BASE, "STAGE": "prod", "CURSOR_SECRET_ARN": ARN, "AWS_REGION": "eu-west-1"}


def test_deployed_stages_fetch_keys_only_from_the_pools_cognito_url() -> None:
    assert load_settings(DEPLOYED).jwks_url == COGNITO_JWKS
    # An emulator endpoint left in the environment must not redirect where keys come from.
    assert load_settings({**DEPLOYED, "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}).jwks_url == COGNITO_JWKS
    assert load_settings({**DEPLOYED, "JWKS_URL": COGNITO_JWKS}).jwks_url == COGNITO_JWKS


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000/us-east-1_Pool/.well-known/jwks.json",
        "https://evil.example/jwks.json",
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other/.well-known/jwks.json",
        COGNITO_JWKS.replace("https://", "http://"),
    ],
)
def test_deployed_stages_refuse_any_other_jwks_url(url: str) -> None:
    with pytest.raises(ConfigurationError, match="JWKS_URL"):
        load_settings({**DEPLOYED, "JWKS_URL": url})
    with pytest.raises(ConfigurationError, match="JWKS_URL"):
        load_settings({**DEPLOYED, "AWS_LAMBDA_FUNCTION_NAME": "fn", "JWKS_URL": url})


def test_local_stages_may_point_the_jwks_url_at_the_emulator() -> None:
    local = {**BASE, "STAGE": "local", "AWS_REGION": "eu-west-1"}
    configured = "http://127.0.0.1:5000/keys.json"
    assert load_settings({**local, "JWKS_URL": configured}).jwks_url == configured
    emulated = load_settings({**local, "STAGE": "test", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000/"})
    assert emulated.jwks_url == "http://127.0.0.1:5000/us-east-1_Pool/.well-known/jwks.json"
    assert load_settings(local).jwks_url == COGNITO_JWKS


def test_settings_and_telemetry_are_read_once_and_then_served_from_the_cache(monkeypatch) -> None:
    from chalicelib import bootstrap, config

    monkeypatch.setenv("USER_POOL_ID", "us-east-1_cached")
    monkeypatch.setenv("USER_POOL_CLIENT_ID", "client")
    monkeypatch.setenv("TABLE_NAME", "users-cached")
    bootstrap.reset()
    config.clear_settings()
    try:
        first = bootstrap.current()
        monkeypatch.setenv("TABLE_NAME", "changed")
        # Read once, with the wiring: the container's wiring keeps the settings it was built from.
        assert bootstrap.current() is first and first.settings.table_name == "users-cached"
        config.get_telemetry()
        config.get_telemetry()
        assert config.telemetry_cache.hits >= 1
        bootstrap.reset()
        assert bootstrap.current().settings.table_name == "changed"
    finally:
        bootstrap.reset()
        config.clear_settings()


@pytest.mark.parametrize(
    ("environ", "metrics"),
    [
        ({}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f"}, True),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "METRICS": "off"}, False),
        ({"METRICS": "emf"}, True),
        ({"METRICS": "nonsense"}, False),
    ],
)
def test_metrics_are_on_in_lambda_unless_turned_off(environ: dict[str, str], metrics: bool) -> None:
    from chalicelib.config import DEFAULT_METRICS_NAMESPACE, load_telemetry

    telemetry = load_telemetry({"STAGE": "prod", **environ})
    assert (telemetry.metrics, telemetry.stage, telemetry.namespace) == (metrics, "prod", DEFAULT_METRICS_NAMESPACE)
    assert load_telemetry({"METRICS_NAMESPACE": "Mine"}).namespace == "Mine"


def test_the_stream_arn_is_needed_only_where_chalice_deploys_the_consumers_mapping() -> None:
    from chalicelib.config import LOCAL_STREAM_ARN, users_stream_arn

    assert users_stream_arn({"STAGE": "local"}) == LOCAL_STREAM_ARN
    # Inside Lambda the mapping exists: nothing reads the decorator's argument.
    assert users_stream_arn({"STAGE": "prod", "AWS_LAMBDA_FUNCTION_NAME": "users-api-prod-changes"}) == LOCAL_STREAM_ARN
    real = "arn:aws:dynamodb:eu-west-1:123456789012:table/users-api-dev/stream/2025-01-01T00:00:00.000"
    assert users_stream_arn({"STAGE": "dev", "USERS_STREAM_ARN": real}) == real
    for wrong in ("", "arn:aws:dynamodb:eu-west-1:123456789012:table/users-api-dev", "stream"):
        with pytest.raises(ConfigurationError, match="USERS_STREAM_ARN"):
            users_stream_arn({"STAGE": "dev", "USERS_STREAM_ARN": wrong})


def test_partial_batch_responses_only_where_the_mapping_takes_them() -> None:
    from chalicelib.config import reports_batch_item_failures

    assert reports_batch_item_failures({"STAGE": "local"}) and reports_batch_item_failures({"STAGE": "test"})
    assert reports_batch_item_failures({"STAGE": "prod", "REPORT_BATCH_ITEM_FAILURES": "true"})
    assert not reports_batch_item_failures({"STAGE": "dev"})  # a mapping `chalice deploy` made


def test_the_consumer_needs_only_its_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the templates give the consumer's function is enough to wire it: none of the API's
    settings (pool, client, cursor secret), which its function does not have."""
    from chalicelib import bootstrap
    from chalicelib.config import load_change_settings
    from chalicelib.domain.change_consumer import ChangeConsumer

    consumer_env = {
        "AWS_LAMBDA_FUNCTION_NAME": "users-api-prod-changes",
        "STAGE": "prod",
        "TABLE_NAME": "users-api-prod",
        "AUDIT_TABLE_NAME": "users-api-prod-audit",
        "EVENT_BUS_NAME": "users-api-prod-changes",
        "AVATAR_BUCKET": "users-api-prod-avatars-123456789012",
        "EVENTS_FILE": "/tmp/never-outside-local-stages.jsonl",
    }
    settings = load_change_settings(consumer_env)
    assert (settings.audit_table_name, settings.event_bus_name, settings.events_file) == (
        "users-api-prod-audit",
        "users-api-prod-changes",
        "",
    )
    for name in ("AUDIT_TABLE_NAME", "EVENT_BUS_NAME", "AVATAR_BUCKET"):
        with pytest.raises(ConfigurationError, match=name):
            load_change_settings({k: v for k, v in consumer_env.items() if k != name})
    for name in ("USER_POOL_ID", "USER_POOL_CLIENT_ID", "CURSOR_SECRET_ARN", "CURSOR_SECRET", "EVENTS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in consumer_env.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    try:
        assert isinstance(bootstrap.changes(), ChangeConsumer)  # no AWS call: clients are lazy
    finally:
        bootstrap.reset()


@pytest.mark.parametrize(
    ("stage", "given", "expected"),
    [
        ("local", "1", 1),
        ("test", "30", 30),
        ("local", "31", 3),
        ("local", "0", 3),
        ("local", "²", 3),
        ("local", "", 3),
        ("local", "2.5", 3),
        ("prod", "1", 3),
        ("prod", "30", 3),
    ],
)
def test_only_a_local_stage_sets_its_read_timeout_and_only_to_whole_seconds_from_1_to_30(
    monkeypatch: pytest.MonkeyPatch, stage: str, given: str, expected: int
) -> None:
    from chalicelib.adapters.aws import READ_TIMEOUT_ENV, read_timeout_s

    monkeypatch.setenv("STAGE", stage)
    monkeypatch.setenv(READ_TIMEOUT_ENV, given)
    assert read_timeout_s() == expected
