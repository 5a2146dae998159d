"""The Cognito adapter against the emulator's Cognito: sign-ins made, invited (locally: to the
outbox), signed in for the first time, promoted, disabled, renamed and deleted."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.cognito import CognitoIdentityProvider
from chalicelib.adapters.local_outbox import OutboxCognitoIdentityProvider
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.identity import EmailTaken, SignIn, SignInExists, SignInMissing
from devstack import cognito_emulation
from infra.invitation import invitation
from infra.stages import load_limits

PASSWORD = "Sup3r-secret-pass!"


@pytest.fixture
def cognito(ddb: Any) -> Iterator[Any]:
    """moto's Cognito (ddb has started mock_aws with credentials)."""
    cognito_emulation.apply()
    yield boto3.client("cognito-idp", region_name="us-east-1")


@pytest.fixture
def pool(cognito: Any) -> str:
    policy = load_limits()["password_policy"]
    pool_id = cognito.create_user_pool(
        PoolName="it", UsernameAttributes=["email"], Policies={"PasswordPolicy": policy}
    )["UserPool"]["Id"]
    cognito.create_group(UserPoolId=pool_id, GroupName=ADMIN_GROUP)
    return str(pool_id)


@pytest.fixture
def client_id(cognito: Any, pool: str) -> str:
    flows = load_limits()["user_pool_client"]["ExplicitAuthFlows"]
    return str(
        cognito.create_user_pool_client(UserPoolId=pool, ClientName="it", ExplicitAuthFlows=flows)["UserPoolClient"][
            "ClientId"
        ]
    )


@pytest.fixture
def idp(cognito: Any, pool: str, tmp_path: Path) -> OutboxCognitoIdentityProvider:
    return OutboxCognitoIdentityProvider(pool, tmp_path / "outbox.jsonl", client=cognito)


def test_the_outbox_words_the_invitation_as_the_stage_does(cognito: Any, pool: str, tmp_path: Path) -> None:
    text = invitation(load_limits())
    idp = OutboxCognitoIdentityProvider(
        pool, tmp_path / "outbox.jsonl", client=cognito, invitation=(text["EmailSubject"], text["EmailMessage"])
    )
    sub = idp.create("ada@example.com")
    idp.invite(sub, "ada@example.com")
    (message,) = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert message["subject"] == text["EmailSubject"]
    password = message["temporaryPassword"]
    assert message["message"] == text["EmailMessage"].replace("{username}", "ada@example.com").replace(
        "{####}", password
    )
    days = load_limits()["password_policy"]["TemporaryPasswordValidityDays"]
    assert message["message"].endswith(f"The temporary password expires in {days} days.")


def test_an_invited_user_signs_in_with_the_temporary_password_and_must_choose_a_new_one(
    idp: OutboxCognitoIdentityProvider, cognito: Any, client_id: str, tmp_path: Path
) -> None:
    sub = idp.create("ada@example.com")
    idp.invite(sub, "ada@example.com")
    (message,) = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert (message["kind"], message["to"], message["userId"]) == ("invitation", "ada@example.com", sub)
    start = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ada@example.com", "PASSWORD": message["temporaryPassword"]},
    )
    assert start["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    done = cognito.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=start["Session"],
        ChallengeResponses={"USERNAME": "ada@example.com", "NEW_PASSWORD": PASSWORD},
    )
    assert done["AuthenticationResult"]["IdToken"]
    found = idp.find("ada@example.com")
    assert found is not None and found.sub == sub and found.status == "CONFIRMED"


def test_a_second_sign_in_for_an_email_is_refused_with_the_existing_sub(idp: OutboxCognitoIdentityProvider) -> None:
    sub = idp.create("ada@example.com")
    with pytest.raises(SignInExists) as caught:
        idp.create("ada@example.com")
    assert caught.value.sub == sub


def test_an_operators_password_is_permanent_and_a_weak_one_leaves_nothing(
    idp: OutboxCognitoIdentityProvider, cognito: Any, client_id: str
) -> None:
    with pytest.raises(ValidationError):
        idp.create("weak@example.com", password="short")
    assert idp.find("weak@example.com") is None  # nothing half-made
    idp.create("strong@example.com", password=PASSWORD)
    signed_in = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "strong@example.com", "PASSWORD": PASSWORD},
    )
    assert "AuthenticationResult" in signed_in


def test_group_membership_follows_set_admin(idp: OutboxCognitoIdentityProvider) -> None:
    sub = idp.create("ada@example.com")
    idp.set_admin(sub, True)
    idp.set_admin(sub, True)  # idempotent
    assert idp.admins() == {sub}
    idp.set_admin(sub, False)
    idp.set_admin(sub, False)
    assert idp.admins() == set()


def test_disable_refuses_the_sign_in_and_enable_restores_it(
    idp: OutboxCognitoIdentityProvider, cognito: Any, client_id: str
) -> None:
    sub = idp.create("ada@example.com", password=PASSWORD)
    idp.set_enabled(sub, False)
    with pytest.raises(cognito.exceptions.NotAuthorizedException):
        cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "ada@example.com", "PASSWORD": PASSWORD},
        )
    idp.set_enabled(sub, True)
    assert [s.enabled for s in idp.sign_ins()] == [True]


def test_an_email_change_is_verified_and_refused_when_another_sign_in_holds_it(
    idp: OutboxCognitoIdentityProvider,
) -> None:
    sub = idp.create("ada@example.com")
    idp.create("taken@example.com")
    idp.set_email(sub, "lovelace@example.com")
    assert idp.find("lovelace@example.com") is not None and idp.find("ada@example.com") is None
    with pytest.raises(EmailTaken):
        idp.set_email(sub, "taken@example.com")


def test_delete_is_idempotent_and_calls_about_a_missing_sign_in_say_so(idp: OutboxCognitoIdentityProvider) -> None:
    sub = idp.create("ada@example.com")
    idp.delete(sub)
    idp.delete(sub)
    assert idp.find("ada@example.com") is None
    calls: list[Callable[[], None]] = [
        lambda: idp.set_admin(sub, True),
        lambda: idp.set_enabled(sub, False),
        lambda: idp.invite(sub, "a"),
    ]
    for call in calls:
        with pytest.raises(SignInMissing):
            call()


def test_the_deployed_adapter_invites_with_cognitos_own_mail() -> None:
    """On AWS the invitation is Cognito's RESEND of a user created with SUPPRESS (the emulator's RESEND
    makes a second user instead, so this checks the request the adapter sends)."""
    client = boto3.client("cognito-idp", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response(
            "admin_create_user",
            {"User": {"Username": "sub-1"}},
            {"UserPoolId": "pool", "Username": "ada@example.com", "MessageAction": "RESEND"},
        )
        CognitoIdentityProvider("pool", client).invite("sub-1", "ada@example.com")
        stub.assert_no_pending_responses()


def test_get_finds_a_sign_in_by_sub_with_its_group_and_verification(idp: OutboxCognitoIdentityProvider) -> None:
    sub = idp.create("ada@example.com")
    assert idp.get(sub) == SignIn(sub, "ada@example.com", True, "FORCE_CHANGE_PASSWORD", email_verified=True)
    idp.set_admin(sub, True)
    found = idp.get(sub)
    assert found is not None and found.admin
    idp.delete(sub)
    assert idp.get(sub) is None
