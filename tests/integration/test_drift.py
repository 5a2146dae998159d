"""The drift report and its repair, on the emulator: every kind of disagreement a half-done
request or a console edit can leave between sign-ins and records."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto.core.models import botocore_stubber

from chalicelib.adapters.cognito import CognitoIdentityProvider
from chalicelib.adapters.dynamodb import ADMIN_COUNT, ADMIN_COUNT_KEY, DynamoUserRepository
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.models import ADMIN, NewUser, User, Write
from chalicelib.domain.service import UserService
from devstack import cognito_emulation
from ops.drift import Drift
from tests.integration.conftest import TABLE
from tests.support.dynamodb_faults import Faults, answered_late

PASSWORD = "Sup3r-secret-pass!"


@pytest.fixture
def world(ddb: Any) -> tuple[Drift, UserService, Any, str]:
    cognito_emulation.apply()
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    pool = cognito.create_user_pool(PoolName="drift", UsernameAttributes=["email"])["UserPool"]["Id"]
    cognito.create_group(UserPoolId=pool, GroupName=ADMIN_GROUP)
    service = UserService(
        DynamoUserRepository(TABLE, client=ddb), CursorCodec(b"k" * 32), CognitoIdentityProvider(pool, cognito)
    )
    return Drift(TABLE, pool, ddb, cognito), service, cognito, pool


def test_users_made_by_the_api_have_no_drift(world: tuple[Drift, UserService, Any, str]) -> None:
    drift, service, _, _ = world
    service.create_user(NewUser("Boss", "boss@example.com", role=ADMIN), password=PASSWORD)
    service.create_user(NewUser("Ada", "ada@example.com"), password=PASSWORD)
    assert drift.check().clean


def test_every_kind_of_drift_is_reported_and_fixed_or_left_for_a_person(
    world: tuple[Drift, UserService, Any, str], ddb: Any
) -> None:
    drift, service, cognito, pool = world
    boss = service.create_user(NewUser("Boss", "boss@example.com", role=ADMIN), password=PASSWORD)
    ada = service.create_user(NewUser("Ada", "ada@example.com"), password=PASSWORD)
    # A create whose record write failed: a sign-in never used.
    cognito.admin_create_user(UserPoolId=pool, Username="halfway@example.com", MessageAction="SUPPRESS")
    # A sign-in made in the console, in the admins group, used.
    cognito.admin_create_user(UserPoolId=pool, Username="console@example.com", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool, Username="console@example.com", Password=PASSWORD, Permanent=True)
    cognito.admin_add_user_to_group(UserPoolId=pool, Username="console@example.com", GroupName=ADMIN_GROUP)
    # A record of an earlier version: no sign-in.
    legacy = User("legacy-1", "Old", "old@example.com", "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00.000Z", 1)
    DynamoUserRepository(TABLE, client=ddb).create(legacy, Write("t", "old", legacy.created_at))
    # Console edits on a user the API made: disabled, put in admins.
    cognito.admin_disable_user(UserPoolId=pool, Username=ada.user_id)
    cognito.admin_add_user_to_group(UserPoolId=pool, Username=ada.user_id, GroupName=ADMIN_GROUP)
    # And a count gone wrong.
    ddb.put_item(TableName=TABLE, Item={**ADMIN_COUNT_KEY, ADMIN_COUNT: {"N": "7"}})

    report = drift.check()
    assert {s.email for s in report.sign_ins_without_records} == {"halfway@example.com", "console@example.com"}
    assert [u.user_id for u in report.records_without_sign_ins] == ["legacy-1"]
    ((user, _, differences),) = report.mismatches
    assert user.user_id == ada.user_id and len(differences) == 2
    assert report.admin_count == (7, 1)
    lines = list(report.lines())
    assert any("record without a sign-in: legacy-1" in line and "POST /users" in line for line in lines)

    drift.fix(report)
    after = drift.check()
    # What a person must decide stays reported; everything else is repaired.
    assert [u.user_id for u in after.records_without_sign_ins] == ["legacy-1"]
    assert not after.sign_ins_without_records and not after.mismatches
    assert after.admin_count == (2, 2)  # the boss, and the console admin's new record
    assert cognito.admin_get_user(UserPoolId=pool, Username=ada.user_id)["Enabled"] is True
    console = service.get_user(next(s.sub for s in drift._identities.sign_ins() if s.email == "console@example.com"))
    assert (console.role, console.name) == (ADMIN, "console")
    assert boss.user_id in drift._identities.admins() and ada.user_id not in drift._identities.admins()
    halfway = [s for s in drift._identities.sign_ins() if s.email == "halfway@example.com"]
    assert halfway == []


def test_the_sign_in_of_a_deleted_user_is_reported_and_its_delete_finished(
    world: tuple[Drift, UserService, Any, str], ddb: Any
) -> None:
    """A delete whose Cognito step failed and was never retried: the record is a trace, the sign-in
    is left. It is not a sign-in "without a record" to make one for: the user was deleted."""
    drift, service, cognito, pool = world
    ada = service.create_user(NewUser("Ada", "ada@example.com"), password=PASSWORD)
    DynamoUserRepository(TABLE, client=ddb).delete(ada, Write("d-1", "admin", "2026-01-02T00:00:00.000Z"))
    report = drift.check()
    assert [s.sub for s in report.sign_ins_of_deleted_users] == [ada.user_id]
    assert report.sign_ins_without_records == [] and not report.clean
    assert any("sign-in of a deleted user" in line for line in report.lines())
    drift.fix(report)
    assert drift.check().clean
    assert cognito.list_users(UserPoolId=pool)["Users"] == []


def test_an_email_differing_only_in_letter_case_is_no_drift_and_a_repair_that_cannot_be_made_is_reported(
    world: tuple[Drift, UserService, Any, str],
) -> None:
    drift, service, cognito, pool = world
    ada = service.create_user(NewUser("Ada", "Ada@Example.com"), password=PASSWORD)
    recased = [{"Name": "email", "Value": "ada@example.com"}, {"Name": "email_verified", "Value": "true"}]
    cognito.admin_update_user_attributes(UserPoolId=pool, Username=ada.user_id, UserAttributes=recased)
    assert drift.check().clean
    # In the console: Ada's sign-in moved to another address, and a new sign-in, used, took hers.
    moved = [{"Name": "email", "Value": "elsewhere@example.com"}, {"Name": "email_verified", "Value": "true"}]
    cognito.admin_update_user_attributes(UserPoolId=pool, Username=ada.user_id, UserAttributes=moved)
    cognito.admin_create_user(UserPoolId=pool, Username="Ada@Example.com", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool, Username="Ada@Example.com", Password=PASSWORD, Permanent=True)
    report = drift.check()
    assert [user.user_id for user, _, _ in report.mismatches] == [ada.user_id]
    assert [s.email for s in report.sign_ins_without_records] == ["Ada@Example.com"]
    drift.fix(report)
    # Neither can be repaired while the other holds the address: both are said, and stay reported.
    assert sum(line.startswith("could not fix now") for line in report.fixed) == 2
    assert not drift.check().clean


def _table(ddb: Any) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"])


def _stored_count(ddb: Any) -> str | None:
    item = ddb.get_item(TableName=TABLE, Key=ADMIN_COUNT_KEY, ConsistentRead=True).get("Item")
    return item[ADMIN_COUNT]["N"] if item else None


def test_a_repair_of_a_stage_without_drift_writes_nothing(world: tuple[Drift, UserService, Any, str], ddb: Any) -> None:
    drift, service, _, _ = world
    service.create_user(NewUser("Ada", "ada@example.com"), password=PASSWORD)
    before = _table(ddb)
    assert _stored_count(ddb) is None  # no admin yet: the count is absent, which reads as 0

    report = drift.check()
    drift.fix(report)

    assert report.fixed == [] and _table(ddb) == before


def test_the_count_repair_keeps_an_admin_change_that_lands_between_its_count_and_its_write(
    world: tuple[Drift, UserService, Any, str], ddb: Any
) -> None:
    drift, service, _, _ = world
    service.create_user(NewUser("Boss", "boss@example.com", role=ADMIN), password=PASSWORD)
    ddb.put_item(TableName=TABLE, Item={**ADMIN_COUNT_KEY, ADMIN_COUNT: {"N": "7"}})
    report = drift.check()
    other = boto3.client("dynamodb", region_name="us-east-1")
    faults = Faults(ddb)

    def an_admin_change_first(request: Any, **kwargs: Any) -> Any:
        other.update_item(
            TableName=TABLE,
            Key=ADMIN_COUNT_KEY,
            UpdateExpression="ADD #c :one",
            ExpressionAttributeNames={"#c": ADMIN_COUNT},
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        return botocore_stubber(request=request, **kwargs)

    faults.inject("PutItem", an_admin_change_first, times=1)
    try:
        drift.fix(report)
    finally:
        faults.close()

    assert _stored_count(ddb) == "8"  # the change that landed is kept, not overwritten with a stale count
    assert any("could not fix now (ConcurrentModification)" in line for line in report.fixed), report.fixed
    again = drift.check()
    assert again.admin_count == (8, 1)  # still wrong (the change was made by hand here): the next run repairs it
    drift.fix(again)
    assert drift.check().admin_count == (1, 1)


def test_the_count_repair_is_safe_to_resend(world: tuple[Drift, UserService, Any, str], ddb: Any) -> None:
    drift, service, _, _ = world
    service.create_user(NewUser("Boss", "boss@example.com", role=ADMIN), password=PASSWORD)
    ddb.put_item(TableName=TABLE, Item={**ADMIN_COUNT_KEY, ADMIN_COUNT: {"N": "7"}})
    report = drift.check()
    faults = Faults(ddb)
    faults.inject("PutItem", answered_late, times=1)  # applied, answer lost: botocore sends it again
    try:
        drift.fix(report)
    finally:
        faults.close()

    assert faults.attempts["PutItem"] == 2
    assert report.fixed == ["enabled-admin count set to 1"] and _stored_count(ddb) == "1"
