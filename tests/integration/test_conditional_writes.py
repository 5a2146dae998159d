"""If-Match on DynamoDB: the revision check is part of each write's own condition."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chalicelib.cursor import CursorCodec
from chalicelib.dynamodb import DynamoUserRepository
from chalicelib.errors import PreconditionFailed, UserNotFound
from chalicelib.models import Preconditions, Revision, UserChanges
from chalicelib.service import UserService
from tests.integration.test_dynamodb_repository import LATER, NOW, make_user, reservation_owner, w
from tests.support.counting import counting
from tests.unit.fakes import FakeIdentityProvider


@pytest.fixture
def service(repo: DynamoUserRepository) -> UserService:
    return UserService(repo, CursorCodec(b"x" * 32), FakeIdentityProvider(), clock=lambda: LATER)


def test_update_with_the_current_revision_is_one_request(repo: DynamoUserRepository, ddb: Any) -> None:
    user = make_user()
    repo.create(user, w())
    with counting(ddb) as calls:
        updated = repo.update(
            user.user_id, UserChanges(name="Bo"), w(at=LATER), preconditions=Preconditions(if_match=(user.revision,))
        )
    assert calls.total == 1
    assert (updated.name, updated.version) == ("Bo", 2)


def test_update_with_a_stale_revision_fails_in_its_own_condition(repo: DynamoUserRepository, ddb: Any) -> None:
    user = make_user()
    repo.create(user, w())
    repo.update(user.user_id, UserChanges(name="Bo"), w(at=LATER))
    with counting(ddb) as calls, pytest.raises(PreconditionFailed):
        repo.update(
            user.user_id, UserChanges(name="Cy"), w(at=LATER), preconditions=Preconditions(if_match=(user.revision,))
        )
    assert calls.total == 1  # no read before the write
    assert repo.get(user.user_id) == replace(user, name="Bo", version=2, updated_at=LATER)


def test_any_of_several_revisions_may_match(repo: DynamoUserRepository) -> None:
    user = make_user()
    repo.create(user, w())
    expected = (Revision(7, NOW), user.revision, Revision(1, "2000-01-01T00:00:00.000Z"))
    assert (
        repo.update(
            user.user_id, UserChanges(name="Bo"), w(at=LATER), preconditions=Preconditions(if_match=expected)
        ).version
        == 2
    )


def test_a_revision_of_an_earlier_record_under_the_same_id_does_not_match(repo: DynamoUserRepository) -> None:
    user = make_user()
    repo.create(user, w())
    with pytest.raises(PreconditionFailed):
        repo.update(
            user.user_id,
            UserChanges(name="Bo"),
            w(at=LATER),
            preconditions=Preconditions(if_match=(Revision(1, "2000-01-01T00:00:00.000Z"),)),
        )


def test_missing_user_is_still_404(repo: DynamoUserRepository) -> None:
    with pytest.raises(UserNotFound):
        repo.update(
            "nobody", UserChanges(name="Bo"), w(at=LATER), preconditions=Preconditions(if_match=(Revision(1, NOW),))
        )


def test_stale_email_change_changes_nothing(service: UserService, repo: DynamoUserRepository, ddb: Any) -> None:
    user = make_user()
    repo.create(user, w())
    repo.update(user.user_id, UserChanges(name="Bo"), w(at=LATER))
    with pytest.raises(PreconditionFailed):
        service.update_user(
            user.user_id, UserChanges(email="new@example.com"), preconditions=Preconditions(if_match=(user.revision,))
        )
    assert reservation_owner(ddb, "new@example.com") is None
    assert reservation_owner(ddb, "ada@example.com") == user.user_id


def test_email_change_with_the_current_revision(service: UserService, repo: DynamoUserRepository, ddb: Any) -> None:
    user = make_user()
    repo.create(user, w())
    updated = service.update_user(
        user.user_id, UserChanges(email="new@example.com"), preconditions=Preconditions(if_match=(user.revision,))
    )
    assert updated.email == "new@example.com"
    assert reservation_owner(ddb, "new@example.com") == user.user_id
    assert reservation_owner(ddb, "ada@example.com") is None


def test_stale_delete_deletes_nothing(service: UserService, repo: DynamoUserRepository, ddb: Any) -> None:
    user = make_user()
    repo.create(user, w())
    repo.update(user.user_id, UserChanges(name="Bo"), w(at=LATER))
    with pytest.raises(PreconditionFailed):
        service.delete_user(user.user_id, preconditions=Preconditions(if_match=(user.revision,)))
    assert repo.get(user.user_id) is not None
    assert reservation_owner(ddb, "ada@example.com") == user.user_id


def test_delete_is_conditioned_on_the_revision_read(repo: DynamoUserRepository, ddb: Any) -> None:
    from chalicelib.repository import StaleRecord

    user = make_user()
    repo.create(user, w())
    # Same version, other creation time: a record deleted and created again under this id.
    with pytest.raises(StaleRecord):
        repo.delete(replace(user, created_at="2000-01-01T00:00:00.000Z"), w())
    assert repo.get(user.user_id) == user
