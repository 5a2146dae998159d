"""The service keeps the sign-in on the record (issue 20), step by step on the in-memory fakes: when
Cognito is told what, in which order, and what a refusal or a concurrent writer leaves."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.errors import EmailAlreadyExists, ServiceUnavailable
from chalicelib.domain.identity import EmailTaken
from chalicelib.domain.models import (
    ADMIN,
    CLOCK_SKEW_S,
    MEMBER,
    Preconditions,
    Standing,
    UserChanges,
    epoch,
    tokens_valid_after,
    tokens_valid_from,
)
from chalicelib.domain.service import FOLLOW_ATTEMPTS, UserService
from tests.unit.fakes import FakeIdentityProvider, FakeTime, FakeUserRepository, make_user

START = "2024-05-05T12:00:00.700Z"


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime(START)


@pytest.fixture
def repo() -> FakeUserRepository:
    repo = FakeUserRepository()
    repo.seed(make_user("boss", email="boss@example.com", role=ADMIN))
    repo.seed(make_user("ada", email="ada@example.com"))
    return repo


@pytest.fixture
def identities() -> FakeIdentityProvider:
    identities = FakeIdentityProvider(subs=(f"sub-{n}" for n in itertools.count(1)))
    identities.seed("boss", "boss@example.com", admin=True)
    identities.seed("ada", "ada@example.com")
    return identities


@pytest.fixture
def remembered() -> dict[str, Standing]:
    return {}


@pytest.fixture
def service(repo, identities, clock, remembered) -> UserService:
    return UserService(
        repo,
        CursorCodec(b"a-cursor-secret-of-32-bytes-long"),
        identities,
        clock=clock.iso,
        sleep=clock.sleep,
        standing_changed=remembered.__setitem__,
    )


def watch(identities: FakeIdentityProvider, method: str, seen: list[Any], what: Any) -> None:
    """Record `what()` each time `method` of the fake pool is called (before it runs)."""
    original = getattr(identities, method)

    def watched(*args: Any) -> Any:
        seen.append(what())
        return original(*args)

    setattr(identities, method, watched)


# --- 6. a role change or an enable reaches Cognito only once its second has passed ------------


@pytest.mark.parametrize(
    ("changes", "method"), [(UserChanges(role=ADMIN), "set_admin"), (UserChanges(enabled=True), "set_enabled")]
)
def test_a_revoking_change_reaches_cognito_after_the_next_second_of_its_revocation(
    service, repo, identities, clock, remembered, changes, method
) -> None:
    if changes.enabled:
        repo.users["ada"] = make_user("ada", email="ada@example.com", enabled=False)
    seen: list[tuple[float, int]] = []
    watch(identities, method, seen, lambda: (epoch(clock.iso()), repo.users["ada"].version))
    updated = service.update_user("ada", changes, actor="boss")
    revoked = tokens_valid_after(updated.updated_at)
    assert revoked == 1714910400 and remembered["ada"].tokens_valid_after == revoked
    ((told_at, version_then),) = seen
    # The record first (what the API authorises by), then Cognito once every token it issues has an
    # iat above the revocation, whichever of the two clocks is ahead by up to CLOCK_SKEW_S.
    assert version_then == 2
    assert told_at >= tokens_valid_from(updated.updated_at) == revoked + 1 + CLOCK_SKEW_S
    assert sum(clock.slept) == pytest.approx(revoked + 1 + CLOCK_SKEW_S - epoch(START))
    assert repo.tokens_valid_after["ada"] == revoked  # an enable revokes too (see revocation.py)


def test_a_disable_waits_for_nothing(service, clock) -> None:
    service.update_user("ada", UserChanges(enabled=False), actor="boss")
    assert clock.slept == []


def test_a_token_issued_in_the_second_of_the_write_counts_as_before_it_whichever_clock_is_ahead() -> None:
    # A write at .950 on the API's clock: Cognito's may read up to 0.1 s more, i.e. the next second.
    assert tokens_valid_after("2024-05-05T12:00:00.950Z") == 1714910401
    assert tokens_valid_after("2024-05-05T12:00:00.899Z") == 1714910400
    assert tokens_valid_from("2024-05-05T12:00:00.950Z") == pytest.approx(1714910402.1)


# --- 2. a refused email change gives the address back ----------------------------------------


def test_a_refused_email_change_gives_the_address_it_took_back(service, repo, identities) -> None:
    # Another record holds the address, while no sign-in does (a sign-in edited outside the API).
    repo.seed(make_user("old", email="taken@example.com"))
    with pytest.raises(EmailAlreadyExists):
        service.update_user("ada", UserChanges(email="taken@example.com"), actor="boss")
    assert identities.accounts["ada"].email == "ada@example.com"
    assert repo.users["ada"].email == "ada@example.com" and repo.users["ada"].version == 1
    calls = [(method, subject) for method, subject in identities.calls if method == "set_email"]
    assert calls == [("set_email", "ada"), ("set_email", "ada")]  # taken, then given back


def test_a_stale_if_match_refuses_before_cognito_is_told_anything(service, repo, identities) -> None:
    stale = Preconditions(if_match=(make_user(version=7).revision,))
    with pytest.raises(Exception, match="ETag"):
        service.update_user("ada", UserChanges(email="new@example.com"), stale, actor="boss")
    assert [m for m, _ in identities.calls if m == "set_email"] == []


def test_an_address_that_cannot_be_given_back_is_a_503_not_a_4xx_that_changed_something(
    service, repo, identities
) -> None:
    repo.seed(make_user("old", email="taken@example.com"))
    taken = EmailTaken()
    original = identities.set_email

    def set_email(sub: str, email: str) -> None:
        if email == "ada@example.com":  # someone's sign-in took Ada's old address meanwhile
            identities.calls.append(("set_email", sub))
            raise taken
        original(sub, email)

    identities.set_email = set_email  # type: ignore[method-assign]
    with pytest.raises(ServiceUnavailable):
        service.update_user("ada", UserChanges(email="taken@example.com"), actor="boss")
    assert [m for m, _ in identities.calls].count("set_email") == 1 + FOLLOW_ATTEMPTS


# --- concurrent writers: the last to set the sign-in has seen the latest record ---------------


def test_a_writer_whose_cognito_step_comes_last_follows_the_later_record_it_finds(service, repo, identities) -> None:
    """A promotes Ada, B demotes her; B's whole request runs between A's write and A's Cognito
    step, so A's set_admin(True) comes last. A's read after it finds B's version and follows it."""
    original = identities.set_admin
    interleaved: list[str] = []

    def set_admin(sub: str, admin: bool) -> None:
        if admin and not interleaved:
            interleaved.append("B")
            service.update_user("ada", UserChanges(role=MEMBER), actor="boss")  # B, whole
        original(sub, admin)

    identities.set_admin = set_admin  # type: ignore[method-assign]
    service.update_user("ada", UserChanges(role=ADMIN), actor="boss")  # A
    assert repo.users["ada"].role == MEMBER and repo.users["ada"].version == 3
    assert "ada" not in identities.group


def test_a_keyed_retry_of_a_role_change_whose_cognito_step_failed_completes_it(service, repo, identities) -> None:
    identities.fail_next["set_admin"] = ServiceUnavailable()
    with pytest.raises(ServiceUnavailable):
        service.update_user("ada", UserChanges(role=ADMIN), token="t-1", actor="boss")
    assert repo.users["ada"].role == ADMIN and "ada" not in identities.group
    again = service.update_user("ada", UserChanges(role=ADMIN), token="t-1", actor="boss")
    assert again.version == 2 and "ada" in identities.group
    # ...and so does the same change sent again without its key: it changes no field.
    identities.group.discard("ada")
    assert service.update_user("ada", UserChanges(role=ADMIN), actor="boss").version == 2
    assert "ada" in identities.group


# --- 4. a create adopting a sign-in that exists ----------------------------------------------


def test_an_adopted_sign_in_follows_the_record_in_everything_and_a_used_one_is_not_invited(
    service, repo, identities
) -> None:
    from chalicelib.domain.models import NewUser

    identities.seed("console", "Console@Example.com", admin=True, enabled=False)
    user = service.create_user(NewUser("Con", "console@example.com"), actor="boss")
    assert (user.user_id, user.role) == ("console", MEMBER)
    sign_in = identities.accounts["console"]
    assert (sign_in.email, sign_in.enabled, "console" in identities.group) == ("console@example.com", True, False)
    assert identities.invited == []
    # A never-used one (an earlier attempt's, or made with SUPPRESS in the console) is invited.
    identities.seed("fresh", "fresh@example.com", status="FORCE_CHANGE_PASSWORD")
    service.create_user(NewUser("Fresh", "fresh@example.com"), actor="boss")
    assert identities.invited == [("fresh", "fresh@example.com")]
