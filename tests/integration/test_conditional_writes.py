"""If-Match on DynamoDB: the revision check is part of each write's own condition, so a stale one
costs that one request and no read (which revisions match: tests/integration/test_repository_contract.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chalicelib.adapters.dynamodb import DynamoUserRepository
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.errors import PreconditionFailed
from chalicelib.domain.models import Preconditions, UserChanges
from chalicelib.domain.service import UserService
from tests.integration.test_dynamodb_repository import LATER, make_user, reservation_owner, w
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
