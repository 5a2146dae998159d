"""The fake repository's own test helpers. What it does as a repository is checked by the contract suite
(tests/integration/test_repository_contract.py), which runs against the DynamoDB adapter too."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.domain.models import Write
from chalicelib.domain.repository import StaleRecord
from tests.unit.fakes import FakeUserRepository, as_repository, make_user

NOW = "2024-02-02T00:00:00.000Z"
W = Write(token="token-1", actor="admin-sub", at=NOW)


@pytest.fixture
def repo() -> FakeUserRepository:
    return FakeUserRepository()


def test_fake_is_a_user_repository(repo):
    assert as_repository(repo) is repo


def test_stale_injection_and_hooks(repo):
    seen: list[str] = []
    repo.stale_next["delete"] = 1
    repo.before("get", lambda: seen.append("get"))
    user = repo.seed(make_user())
    assert repo.get("user-1") == user
    assert repo.get("user-1") == user
    assert seen == ["get"]
    with pytest.raises(StaleRecord):
        repo.delete(user, Write("token-2", "admin-sub", NOW))
    repo.delete(user, Write("token-2", "admin-sub", NOW))
    assert repo.calls == {"get": 2, "delete": 2}


def test_a_lost_answer_applies_the_write_then_fails_like_a_timeout(repo):
    repo.lose_answer_next["create"] = 1
    with pytest.raises(ServiceUnavailable):
        repo.create(make_user(), W)
    assert repo.get("user-1") == make_user()
