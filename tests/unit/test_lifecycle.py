"""A user is a sign-in plus its record: the service keeps them one, and a failure at any step
leaves nothing that is not taken back or completed by a retry of the same request.

The identity provider and the repository are the in-memory fakes; `fail_next` makes one step of
the identity provider fail, `lose_answer_next` makes a repository write happen and then fail (as
a write whose every answer timed out).
"""

from __future__ import annotations

import itertools

import pytest

from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.errors import (
    EmailAlreadyExists,
    Forbidden,
    LastAdmin,
    ServiceUnavailable,
    UserNotFound,
)
from chalicelib.domain.identity import SignInExists, SignInMissing
from chalicelib.domain.models import ADMIN, MEMBER, NewUser, Standing, UserChanges, epoch_seconds
from chalicelib.domain.service import UserService
from tests.unit.fakes import FakeAvatars, FakeIdentityProvider, FakeTime, FakeUserRepository, make_user

NOW = "2024-05-05T12:00:00.000Z"
BOSS = "boss-sub"


@pytest.fixture
def clock() -> FakeTime:
    """Stands at NOW until the service waits (models.tokens_valid_from)."""
    return FakeTime(NOW)


@pytest.fixture
def repo() -> FakeUserRepository:
    return FakeUserRepository()


@pytest.fixture
def identities() -> FakeIdentityProvider:
    return FakeIdentityProvider(subs=(f"sub-{n:03d}" for n in itertools.count(1)))


@pytest.fixture
def remembered() -> dict[str, Standing]:
    return {}


@pytest.fixture
def avatars() -> FakeAvatars:
    return FakeAvatars()


@pytest.fixture
def service(repo, identities, remembered, avatars, clock) -> UserService:
    return UserService(
        repo,
        CursorCodec(b"a-cursor-secret-of-32-bytes-long"),
        identities,
        clock=clock.iso,
        sleep=clock.sleep,
        avatars=avatars,
        standing_changed=remembered.__setitem__,
    )


@pytest.fixture
def boss(repo, identities) -> str:
    """An enabled admin with a record and a sign-in: the one who acts."""
    repo.seed(make_user(user_id=BOSS, email="boss@example.com", role=ADMIN))
    identities.seed(BOSS, "boss@example.com", admin=True)
    return BOSS


def ada(service: UserService, role: str = MEMBER, token: str | None = None) -> str:
    return service.create_user(NewUser("Ada", "ada@example.com", role=role), token=token, actor=BOSS).user_id


# --- create ---------------------------------------------------------------------------------


def test_create_makes_the_sign_in_its_record_and_the_invitation(service, repo, identities, remembered):
    user = service.create_user(NewUser("Ada", "ada@example.com"), actor=BOSS)
    assert user.user_id == "sub-001" and (user.role, user.enabled) == (MEMBER, True)
    sign_in = identities.accounts["sub-001"]
    assert (sign_in.email, sign_in.status) == ("ada@example.com", "FORCE_CHANGE_PASSWORD")
    assert identities.invited == [("sub-001", "ada@example.com")]
    assert repo.users["sub-001"] == user and repo.actors["sub-001"] == BOSS
    assert identities.group == set()
    assert remembered["sub-001"] == Standing(exists=True, enabled=True, role=MEMBER)


def test_an_admin_is_put_in_the_group_and_counted(service, repo, identities):
    user_id = ada(service, role=ADMIN)
    assert identities.group == {user_id} and repo.enabled_admins == 1


def test_a_password_given_by_an_operator_replaces_the_invitation(service, identities):
    user = service.create_user(NewUser("Ada", "ada@example.com"), password="Sup3r-secret-pass!")
    assert identities.passwords[user.user_id] == "Sup3r-secret-pass!" and identities.invited == []


def test_a_duplicate_email_is_409_and_makes_no_second_sign_in(service, repo, identities):
    ada(service)
    with pytest.raises(EmailAlreadyExists):
        service.create_user(NewUser("Ada 2", "ADA@example.com"), actor=BOSS)
    assert list(identities.accounts) == ["sub-001"] and list(repo.users) == ["sub-001"]


def test_a_record_holding_the_email_without_a_sign_in_refuses_and_the_new_sign_in_is_taken_back(
    service, repo, identities
):
    """A record made by an earlier version: the reservation refuses the record, the sign-in goes."""
    repo.seed(make_user(user_id="legacy-1", email="ada@example.com"))
    with pytest.raises(EmailAlreadyExists):
        ada(service)
    assert identities.accounts == {}
    assert ("delete", "sub-001") in identities.calls


@pytest.mark.parametrize("step", ["create", "invite", "set_admin"])
def test_a_failed_sign_in_step_of_a_create_leaves_nothing_a_keyed_retry_does_not_complete(
    service, repo, identities, step
):
    identities.fail_next[step] = ServiceUnavailable()
    with pytest.raises(ServiceUnavailable):
        ada(service, role=ADMIN, token="t-1")
    # The retry with the same Idempotency-Key (the same write token) finishes the job.
    user_id = ada(service, role=ADMIN, token="t-1")
    assert list(identities.accounts) == [user_id] and list(repo.users) == [user_id]
    assert identities.group == {user_id} and identities.invited[-1] == (user_id, "ada@example.com")
    assert repo.enabled_admins == 1


def test_a_record_write_whose_outcome_is_unknown_keeps_the_uninvited_sign_in_for_the_retry(service, repo, identities):
    repo.lose_answer_next["create"] = 1  # written, but every answer lost: 503
    with pytest.raises(ServiceUnavailable):
        ada(service, token="t-1")
    assert identities.invited == []  # nobody got a password for a user that may not exist
    user_id = ada(service, token="t-1")
    assert list(identities.accounts) == list(repo.users) == [user_id]
    assert identities.invited == [(user_id, "ada@example.com")]


def test_a_refused_record_write_takes_the_new_sign_in_back(service, repo, identities):
    repo.before("create", lambda: repo.reservations.update({"ada@example.com": "someone"}))
    with pytest.raises(EmailAlreadyExists):
        ada(service)
    assert identities.accounts == {} and repo.users == {}


def test_a_create_whose_record_write_failed_takes_back_its_sign_in(service, repo, identities):
    """The record write fails and a consistent read shows no record: the sign-in this attempt made
    goes, so nothing is left for a later refusal to strand."""

    def unavailable() -> None:
        raise ServiceUnavailable()  # before the record write: it never happened

    repo.before("create", unavailable)
    with pytest.raises(ServiceUnavailable):
        ada(service, token="t-1")
    assert identities.accounts == {} and repo.users == {}
    user_id = ada(service, token="t-2")
    assert list(repo.users) == [user_id] and list(identities.accounts) == [user_id]


def test_an_unkeyed_retry_of_a_half_made_create_completes_the_left_over_sign_in(service, repo, identities):
    """The record write fails and so does the read that would show it missing: the sign-in, never
    invited, stays, and the next create of that email adopts it (the drift tool would otherwise
    report it)."""

    def unavailable() -> None:
        raise ServiceUnavailable()

    repo.before("create", unavailable)
    repo.before("find", unavailable)
    with pytest.raises(ServiceUnavailable):
        ada(service, token="t-1")
    assert list(identities.accounts) == ["sub-001"] and repo.users == {}
    user_id = ada(service, token="t-2")
    assert user_id == "sub-001" and list(repo.users) == ["sub-001"]


def test_the_sign_in_of_a_user_being_deleted_is_replaced_not_adopted(service, repo, identities, boss):
    old = ada(service)
    identities.fail_next["delete"] = ServiceUnavailable()  # the delete's sign-in step fails
    with pytest.raises(ServiceUnavailable):
        service.delete_user(old, actor=boss)
    assert old in identities.accounts and old not in repo.users
    new = ada(service)
    assert new != old and old not in identities.accounts and repo.users[new].email == "ada@example.com"


# --- role and state -------------------------------------------------------------------------


def test_promote_and_demote_move_the_group_and_revoke_earlier_tokens(service, repo, identities, boss, remembered):
    user_id = ada(service)
    promoted = service.update_user(user_id, UserChanges(role=ADMIN), actor=boss)
    assert promoted.role == ADMIN and identities.group == {BOSS, user_id} and repo.enabled_admins == 2
    assert repo.tokens_valid_after[user_id] == epoch_seconds(NOW)
    assert remembered[user_id] == Standing(True, False, True, ADMIN, epoch_seconds(NOW))
    service.update_user(user_id, UserChanges(role=MEMBER), actor=boss)
    assert identities.group == {BOSS} and repo.enabled_admins == 1


def test_disable_signs_out_everywhere_and_enable_lets_back_in(service, repo, identities, boss, remembered):
    user_id = ada(service)
    service.update_user(user_id, UserChanges(enabled=False), actor=boss)
    assert identities.accounts[user_id].enabled is False and identities.signed_out == [user_id]
    assert remembered[user_id].enabled is False
    service.update_user(user_id, UserChanges(enabled=True), actor=boss)
    assert identities.accounts[user_id].enabled is True


def test_an_admins_email_change_changes_the_sign_in_too(service, identities, boss):
    user_id = ada(service)
    service.update_user(user_id, UserChanges(email="lovelace@example.com"), actor=boss)
    assert identities.accounts[user_id].email == "lovelace@example.com"


def test_an_email_a_sign_in_without_a_record_holds_is_refused_before_the_record_changes(
    service, repo, identities, boss
):
    user_id = ada(service)
    identities.seed("orphan", "taken@example.com")
    with pytest.raises(EmailAlreadyExists):
        service.update_user(user_id, UserChanges(email="taken@example.com"), actor=boss)
    assert repo.users[user_id].email == "ada@example.com" and "taken@example.com" not in repo.reservations


@pytest.mark.parametrize("step", ["set_admin", "set_enabled"])
def test_when_the_sign_in_lags_the_record_nobody_has_more_rights_and_a_retry_completes(
    service, repo, identities, boss, step
):
    user_id = ada(service, role=ADMIN)
    changes = UserChanges(role=MEMBER) if step == "set_admin" else UserChanges(enabled=False)
    identities.fail_next[step] = ServiceUnavailable()
    with pytest.raises(ServiceUnavailable):
        service.update_user(user_id, changes, token="t-9", actor=boss)
    # The record (what authorisation reads) already took the rights away...
    assert not repo.users[user_id].is_active_admin and repo.tokens_valid_after[user_id] == epoch_seconds(NOW)
    # ...and the retry of the same request brings the sign-in in line, without a second change.
    version = repo.users[user_id].version
    service.update_user(user_id, changes, token="t-9", actor=boss)
    assert repo.users[user_id].version == version
    if step == "set_admin":
        assert user_id not in identities.group
    else:
        assert identities.accounts[user_id].enabled is False


def test_a_record_without_a_sign_in_can_still_be_managed(service, repo, boss):
    """Made by an earlier version: the record changes, the missing sign-in is only logged."""
    repo.seed(make_user(user_id="legacy-1", email="old@example.com"))
    assert service.update_user("legacy-1", UserChanges(role=ADMIN), actor=boss).role == ADMIN


def test_nobody_changes_their_own_role_or_state_or_deletes_themselves(service, boss):
    for changes in (UserChanges(role=MEMBER), UserChanges(enabled=False)):
        with pytest.raises(Forbidden):
            service.update_user(boss, changes, actor=boss)
    with pytest.raises(Forbidden):
        service.delete_user(boss, actor=boss)


@pytest.mark.parametrize("change", ["demote", "disable", "delete"])
def test_the_last_enabled_admin_stays(service, repo, identities, change):
    repo.seed(make_user(user_id="only", email="only@example.com", role=ADMIN))
    identities.seed("only", "only@example.com", admin=True)
    with pytest.raises(LastAdmin):
        if change == "delete":
            service.delete_user("only", actor="token-admin")
        else:
            changes = UserChanges(role=MEMBER) if change == "demote" else UserChanges(enabled=False)
            service.update_user("only", changes, actor="token-admin")
    assert repo.users["only"].is_active_admin and "only" in identities.group and repo.enabled_admins == 1
    # With a second enabled admin, it may go.
    ada(service, role=ADMIN)
    if change == "delete":
        service.delete_user("only", actor="token-admin")
    else:
        service.update_user("only", UserChanges(enabled=False), actor="token-admin")
    assert repo.enabled_admins == 1


def test_disabling_a_disabled_admin_or_deleting_it_moves_no_count(service, repo, boss):
    user_id = ada(service, role=ADMIN)
    service.update_user(user_id, UserChanges(enabled=False), actor=boss)
    assert repo.enabled_admins == 1
    service.delete_user(user_id, actor=boss)
    assert repo.enabled_admins == 1


# --- delete ---------------------------------------------------------------------------------


def test_delete_removes_the_record_its_email_the_sign_in_and_the_avatar(
    service, repo, identities, avatars, boss, remembered
):
    user_id = ada(service)
    avatars.stored = {user_id}
    service.delete_user(user_id, actor=boss)
    assert user_id not in repo.users and repo.reservations == {"boss@example.com": BOSS}
    assert user_id not in identities.accounts and avatars.stored == set()
    assert remembered[user_id].deleted
    assert repo.deleted[user_id].actor == BOSS


@pytest.mark.parametrize("step", ["sign-in", "avatar"])
def test_a_delete_that_failed_after_the_record_is_finished_by_its_retry(service, repo, identities, avatars, boss, step):
    user_id = ada(service)
    avatars.stored = {user_id}
    if step == "sign-in":
        identities.fail_next["delete"] = ServiceUnavailable()
    else:
        avatars.failing = True
    with pytest.raises(ServiceUnavailable):
        service.delete_user(user_id, token="t-1", actor=boss)
    avatars.failing = False
    service.delete_user(user_id, token="t-1", actor=boss)  # the keyed retry: success
    assert user_id not in identities.accounts and avatars.stored == set()


def test_an_unkeyed_retry_of_a_half_done_delete_is_404_but_still_finishes_it(service, identities, boss):
    user_id = ada(service)
    identities.fail_next["delete"] = ServiceUnavailable()
    with pytest.raises(ServiceUnavailable):
        service.delete_user(user_id, actor=boss)
    with pytest.raises(UserNotFound):
        service.delete_user(user_id, actor=boss)
    assert user_id not in identities.accounts


def test_a_create_whose_existing_sign_in_vanished_before_its_look_up_makes_a_new_one(service, identities):
    # Cognito said the email was taken, then no longer found it (a concurrent delete between the
    # two calls): the sub is unknown, so the create tries again instead of reading an empty key.
    identities.fail_next["create"] = SignInExists("")
    user = service.create_user(NewUser("Ada", "ada@example.com"))
    assert user.user_id in identities.accounts
    assert [method for method, _ in identities.calls].count("create") == 2


def test_a_create_whose_user_was_deleted_before_its_invitation_still_answers_the_create(service, identities, repo):
    """The create happened, then a concurrent delete of the same user: nobody is left to invite."""
    identities.fail_next["invite"] = SignInMissing()
    assert ada(service) in repo.users


# --- the caller's own profile ---------------------------------------------------------------


def test_a_members_own_profile_never_changes_role_state_or_email_from_the_body(service):
    for changes in (UserChanges(role=ADMIN), UserChanges(enabled=False), UserChanges(email="x@example.com")):
        with pytest.raises(Forbidden):
            service.put_profile("sub-1", changes)


def test_a_profile_made_by_its_own_sign_in_takes_the_email_and_role_of_the_sign_in(service, repo, identities):
    identities.seed("console-sub", "c@example.com")
    identities.seed("operator-sub", "o@example.com", admin=True)
    user, created = service.put_profile("console-sub", UserChanges(name="C"))
    assert created and (user.role, user.email) == (MEMBER, "c@example.com") and repo.enabled_admins == 0
    first, _ = service.put_profile("operator-sub", UserChanges(name="O"))
    assert (first.role, first.email) == (ADMIN, "o@example.com") and repo.enabled_admins == 1


def test_a_create_never_takes_back_a_sign_in_a_concurrent_create_adopted(service, repo, identities):
    """A makes the sign-in; B, creating the same email meanwhile, adopts it and writes its record
    first; A's record is refused, and A must leave B's sign-in alone."""

    def b_writes_its_record_first() -> None:
        sub = next(iter(identities.accounts))
        repo.users[sub] = make_user(user_id=sub, email="ada@example.com")
        repo.reservations["ada@example.com"] = sub

    repo.before("create", b_writes_its_record_first)
    with pytest.raises(EmailAlreadyExists):
        ada(service)
    assert list(identities.accounts) == ["sub-001"] and "sub-001" in repo.users


# --- a revoking write whose outcome is unknown ------------------------------------------------


@pytest.mark.parametrize(
    ("write", "lost"),
    [
        (lambda service, user_id: service.update_user(user_id, UserChanges(enabled=False), actor=BOSS), "change"),
        (lambda service, user_id: service.delete_user(user_id, actor=BOSS), "delete"),
        (lambda service, user_id: service.sign_out(user_id, actor=BOSS), "record_action"),
    ],
    ids=["disable", "delete", "sign-out"],
)
def test_a_revoking_write_that_answers_503_makes_the_container_read_the_standing_again(
    service, repo, remembered, boss, write, lost
):
    user_id = ada(service)
    repo.lose_answer_next[lost] = 1  # applied, every answer lost
    with pytest.raises(ServiceUnavailable):
        write(service, user_id)
    assert remembered[user_id] is None
