"""devstack/cognito_emulation.py: the emulator's Cognito made to do what Cognito documents, tested on
moto itself, against moto as released (where it differs) and with the pool and client the stack
deploys (devstack/resources.py, infra/limits.json)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest

from devstack import cognito_emulation
from devstack.resources import client_settings, pool_settings

PASSWORD = "Sup3r-secret-pass!"


@pytest.fixture
def emulated(ddb: Any) -> Iterator[None]:
    """The changes applied for one test (ddb has started mock_aws with credentials), then removed,
    so the next test finds moto as whoever runs it left it."""
    was = cognito_emulation.active()
    cognito_emulation.apply()
    yield
    cognito_emulation.remove()
    if was:
        cognito_emulation.apply()


@pytest.fixture
def cognito(ddb: Any) -> Any:
    return boto3.client("cognito-idp", region_name="us-east-1")


@pytest.fixture
def deployed(cognito: Any, emulated: None) -> tuple[str, str]:
    """(pool, client) as the stack deploys them."""
    pool = cognito.create_user_pool(**pool_settings("emulated"))["UserPool"]["Id"]
    client = cognito.create_user_pool_client(**client_settings(pool, "emulated"))["UserPoolClient"]["ClientId"]
    return str(pool), str(client)


def signed_in(cognito: Any, pool: str, client: str, email: str = "ada@example.com") -> tuple[str, str]:
    """(sub, access token) of a confirmed user with a verified email, signed in."""
    attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
    made = cognito.admin_create_user(
        UserPoolId=pool, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
    )
    cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=PASSWORD, Permanent=True)
    auth = cognito.initiate_auth(
        ClientId=client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD}
    )
    return str(made["User"]["Username"]), str(auth["AuthenticationResult"]["AccessToken"])


def attributes_of(cognito: Any, pool: str, sub: str) -> dict[str, str]:
    return {a["Name"]: a["Value"] for a in cognito.admin_get_user(UserPoolId=pool, Username=sub)["UserAttributes"]}


@pytest.mark.parametrize(
    "attribute",
    [("name", "Mallory"), ("phone_number", "+14155550100"), ("email_verified", "false"), ("locale", "fr")],
)
def test_a_user_may_write_only_what_the_client_lists(cognito: Any, deployed: tuple[str, str], attribute: Any) -> None:
    pool, client = deployed
    sub, access = signed_in(cognito, pool, client)
    before = attributes_of(cognito, pool, sub)
    name, value = attribute
    with pytest.raises(cognito.exceptions.NotAuthorizedException, match="unauthorized attribute"):
        cognito.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": name, "Value": value}])
    assert attributes_of(cognito, pool, sub) == before


def test_a_users_own_email_change_waits_for_its_verification(cognito: Any, deployed: tuple[str, str]) -> None:
    pool, client = deployed
    sub, access = signed_in(cognito, pool, client)
    cognito.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "email", "Value": "mine@example.com"}])
    assert attributes_of(cognito, pool, sub)["email"] == "ada@example.com"
    assert attributes_of(cognito, pool, sub)["email_verified"] == "true"
    # Another user's address is refused outright (an alias held elsewhere).
    signed_in(cognito, pool, client, "bob@example.com")
    with pytest.raises(cognito.exceptions.AliasExistsException):
        cognito.update_user_attributes(
            AccessToken=access, UserAttributes=[{"Name": "email", "Value": "bob@example.com"}]
        )


def test_a_users_held_email_change_takes_effect_with_the_mailed_code_only(
    cognito: Any, deployed: tuple[str, str]
) -> None:
    """What a member can still do around the API (Cognito makes a required attribute writable):
    change their sign-in's address, once they prove they read the new mailbox."""
    pool, client = deployed
    sub, access = signed_in(cognito, pool, client)
    cognito.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "email", "Value": "mine@example.com"}])
    code = cognito_emulation.mailed_code(pool, sub)
    assert code is not None and len(code) == 6
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    with pytest.raises(cognito.exceptions.CodeMismatchException):
        cognito.verify_user_attribute(AccessToken=access, AttributeName="email", Code=wrong)
    assert attributes_of(cognito, pool, sub)["email"] == "ada@example.com"
    # A new code replaces the old one.
    cognito.get_user_attribute_verification_code(AccessToken=access, AttributeName="email")
    renewed = cognito_emulation.mailed_code(pool, sub)
    assert renewed is not None
    cognito.verify_user_attribute(AccessToken=access, AttributeName="email", Code=renewed)
    assert {k: attributes_of(cognito, pool, sub)[k] for k in ("email", "email_verified")} == {
        "email": "mine@example.com",
        "email_verified": "true",
    }
    assert cognito_emulation.mailed_code(pool, sub) is None
    with pytest.raises(cognito.exceptions.CodeMismatchException):
        cognito.verify_user_attribute(AccessToken=access, AttributeName="email", Code=renewed)


def test_a_held_email_change_is_refused_when_another_user_took_the_address_meanwhile(
    cognito: Any, deployed: tuple[str, str]
) -> None:
    pool, client = deployed
    sub, access = signed_in(cognito, pool, client)
    cognito.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "email", "Value": "mine@example.com"}])
    code = cognito_emulation.mailed_code(pool, sub)
    signed_in(cognito, pool, client, "mine@example.com")
    with pytest.raises(cognito.exceptions.AliasExistsException):
        cognito.verify_user_attribute(AccessToken=access, AttributeName="email", Code=code)
    assert attributes_of(cognito, pool, sub)["email"] == "ada@example.com"


def test_without_the_pool_setting_a_users_email_changes_at_once_unverified(cognito: Any, emulated: None) -> None:
    settings = {key: value for key, value in pool_settings("plain").items() if key != "UserAttributeUpdateSettings"}
    pool = cognito.create_user_pool(**settings)["UserPool"]["Id"]
    client = cognito.create_user_pool_client(**client_settings(pool, "plain"))["UserPoolClient"]["ClientId"]
    sub, access = signed_in(cognito, pool, client)
    cognito.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "email", "Value": "mine@example.com"}])
    assert {k: attributes_of(cognito, pool, sub)[k] for k in ("email", "email_verified")} == {
        "email": "mine@example.com",
        "email_verified": "false",
    }


def test_an_admins_email_change_applies_at_once_only_when_it_verifies_the_address(
    cognito: Any, deployed: tuple[str, str]
) -> None:
    pool, client = deployed
    sub, _ = signed_in(cognito, pool, client)
    unverified = [{"Name": "email", "Value": "held@example.com"}]
    cognito.admin_update_user_attributes(UserPoolId=pool, Username=sub, UserAttributes=unverified)
    assert attributes_of(cognito, pool, sub)["email"] == "ada@example.com"
    verified = [{"Name": "email", "Value": "new@example.com"}, {"Name": "email_verified", "Value": "true"}]
    cognito.admin_update_user_attributes(UserPoolId=pool, Username=sub, UserAttributes=verified)
    assert attributes_of(cognito, pool, sub)["email"] == "new@example.com"
    # Its own address again is no alias conflict (moto as released refuses it).
    cognito.admin_update_user_attributes(UserPoolId=pool, Username=sub, UserAttributes=verified)


def test_a_token_finds_its_user_after_an_admin_changed_the_email_and_not_once_disabled(
    cognito: Any, deployed: tuple[str, str]
) -> None:
    pool, client = deployed
    sub, access = signed_in(cognito, pool, client)
    verified = [{"Name": "email", "Value": "new@example.com"}, {"Name": "email_verified", "Value": "true"}]
    cognito.admin_update_user_attributes(UserPoolId=pool, Username=sub, UserAttributes=verified)
    cognito.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "email", "Value": "x@example.com"}])
    cognito.admin_disable_user(UserPoolId=pool, Username=sub)
    with pytest.raises(cognito.exceptions.NotAuthorizedException, match="disabled"):
        cognito.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "email", "Value": "y@example.com"}])


@pytest.mark.parametrize(
    "write_attributes", [["email", "email_verified"], ["email", "phone_number_verified"], ["name"], ["sub", "email"]]
)
def test_a_client_that_may_write_a_verification_flag_or_not_a_required_attribute_is_refused(
    cognito: Any, emulated: None, write_attributes: list[str]
) -> None:
    pool = cognito.create_user_pool(**pool_settings("strict"))["UserPool"]["Id"]
    with pytest.raises(cognito.exceptions.InvalidParameterException, match="Invalid write attributes"):
        cognito.create_user_pool_client(UserPoolId=pool, ClientName="c", WriteAttributes=write_attributes)
    made = cognito.create_user_pool_client(**client_settings(pool, "ok"))["UserPoolClient"]
    assert made["WriteAttributes"] == ["email"]
    with pytest.raises(cognito.exceptions.InvalidParameterException):
        cognito.update_user_pool_client(UserPoolId=pool, ClientId=made["ClientId"], WriteAttributes=write_attributes)


def test_moto_as_released_lets_a_user_write_anything(cognito: Any, ddb: Any) -> None:
    """Why the change exists, checked on the pinned moto itself."""
    cognito_emulation.remove()
    try:
        pool = cognito.create_user_pool(**pool_settings("released"))["UserPool"]["Id"]
        client = cognito.create_user_pool_client(**client_settings(pool, "released"))["UserPoolClient"]["ClientId"]
        cognito_emulation.widen_email_check()
        sub, access = signed_in(cognito, pool, client)
        cognito.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "name", "Value": "Mallory"}])
        assert attributes_of(cognito, pool, sub)["name"] == "Mallory"
    finally:
        cognito_emulation.apply()


def test_apply_is_idempotent_remove_undoes_it_and_active_reads_moto_itself(ddb: Any) -> None:
    cognito_emulation.apply()
    assert cognito_emulation.apply() == [cognito_emulation.EMAIL_CHECK, cognito_emulation.ATTRIBUTE_WRITES]
    cognito_emulation.remove()
    assert cognito_emulation.active() == []
    cognito_emulation.apply()


def test_another_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(RuntimeError, match=r"patches moto 5\.2\.5, but moto 5\.3\.0"):
        cognito_emulation.apply()
