"""Settings: safe defaults, and refusals where a setting would be unsafe."""

from __future__ import annotations

import pytest

from chalicelib.config import ConfigurationError, cors_allow_origin, load_settings, running_in_lambda

BASE = {"TABLE_NAME": "users", "USER_POOL_ID": "us-east-1_Pool", "USER_POOL_CLIENT_ID": "client"}


def test_wildcard_cors_is_refused_outside_the_local_stages() -> None:
    assert cors_allow_origin({"STAGE": "local", "CORS_ALLOW_ORIGIN": "*"}) == "*"
    with pytest.raises(ConfigurationError):
        cors_allow_origin({"STAGE": "prod", "CORS_ALLOW_ORIGIN": "*"})
    assert cors_allow_origin({"STAGE": "prod", "CORS_ALLOW_ORIGIN": "https://app.example.com"}) == (
        "https://app.example.com"
    )


def test_cursor_secret_is_required_outside_the_local_stages() -> None:
    with pytest.raises(ConfigurationError):
        load_settings({**BASE, "STAGE": "prod"})
    assert load_settings({**BASE, "STAGE": "prod", "CURSOR_SECRET": "s" * 32}).cursor_secret == b"s" * 32
    assert len(load_settings({**BASE, "STAGE": "local"}).cursor_secret) >= 32


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
    assert not load_settings({**BASE, "AWS_LAMBDA_FUNCTION_NAME": "fn", "CURSOR_SECRET": "s" * 32}).verify_tokens
    assert not running_in_lambda({})
    assert running_in_lambda({"AWS_LAMBDA_FUNCTION_NAME": "fn"})
    assert not running_in_lambda({"AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_CHALICE_CLI_MODE": "true"})


def test_issuer_and_jwks_url_come_from_configuration() -> None:
    settings = load_settings({**BASE, "AWS_REGION": "eu-west-1"})
    assert settings.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_Pool"
    assert settings.jwks_url == "https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_Pool/.well-known/jwks.json"
    local = load_settings({**BASE, "AWS_ENDPOINT_URL": "http://127.0.0.1:5000/"})
    assert local.jwks_url == "http://127.0.0.1:5000/us-east-1_Pool/.well-known/jwks.json"
