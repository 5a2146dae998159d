"""Revocation: what the record says about a caller decides whether their token still counts."""

from __future__ import annotations

import pytest

from chalicelib.domain.access import ADMIN_GROUP, Identity
from chalicelib.domain.models import ADMIN, MEMBER, NO_RECORD, Standing
from chalicelib.domain.revocation import STANDING_TTL_S, Revoked, StandingCheck
from tests.unit.fakes import FakeClock

ISSUED = 1_700_000_000


def caller(issued_at: int = ISSUED, admin: bool = False) -> Identity:
    groups = frozenset({ADMIN_GROUP}) if admin else frozenset()
    return Identity("sub-1", groups, issued_at)


class Lookup:
    def __init__(self, standing: Standing) -> None:
        self.standing = standing
        self.reads = 0

    def __call__(self, sub: str) -> Standing:
        self.reads += 1
        return self.standing


def test_a_sign_in_without_a_record_gets_what_its_token_says() -> None:
    check = StandingCheck(Lookup(NO_RECORD))
    assert check.confirm(caller(admin=True)).is_admin
    assert not check.confirm(caller()).is_admin


@pytest.mark.parametrize("standing", [Standing(True, deleted=True, enabled=False), Standing(True, enabled=False)])
def test_a_deleted_or_disabled_user_is_refused_whatever_the_token(standing: Standing) -> None:
    with pytest.raises(Revoked):
        StandingCheck(Lookup(standing)).confirm(caller(issued_at=ISSUED + 10_000))


def test_tokens_issued_until_the_change_are_refused_later_ones_pass() -> None:
    check = StandingCheck(Lookup(Standing(True, role=MEMBER, tokens_valid_after=ISSUED)))
    for issued in (ISSUED - 3600, ISSUED):  # the same second counts as before: the order is unknown
        with pytest.raises(Revoked):
            check.confirm(caller(issued))
    assert check.confirm(caller(ISSUED + 1)).sub == "sub-1"


def test_the_record_caps_the_tokens_role() -> None:
    demoted = StandingCheck(Lookup(Standing(True, role=MEMBER)))
    assert not demoted.confirm(caller(admin=True)).is_admin  # a token still listing admins
    promoted = StandingCheck(Lookup(Standing(True, role=ADMIN)))
    assert not promoted.confirm(caller()).is_admin  # rights come from the token's group too
    assert promoted.confirm(caller(admin=True)).is_admin


def test_one_read_per_caller_and_cache_time_then_zero() -> None:
    lookup, clock = Lookup(Standing(True, role=MEMBER)), FakeClock()
    check = StandingCheck(lookup, clock=clock)
    for _ in range(5):
        check.confirm(caller())
    assert lookup.reads == 1
    clock.advance(STANDING_TTL_S + 0.001)
    check.confirm(caller())
    assert lookup.reads == 2


def test_a_change_reaches_every_container_within_a_minute() -> None:
    """Another container's change is read again after at most the cache time (plus the read's own
    replication lag), which is under 60 s."""
    assert STANDING_TTL_S < 60
    lookup, clock = Lookup(Standing(True, role=MEMBER)), FakeClock()
    check = StandingCheck(lookup, clock=clock)
    check.confirm(caller())
    lookup.standing = Standing(True, enabled=False)  # disabled elsewhere
    clock.advance(STANDING_TTL_S - 1)
    check.confirm(caller())  # still the old answer here
    clock.advance(2)
    with pytest.raises(Revoked):
        check.confirm(caller())


def test_what_this_container_wrote_counts_at_once_without_a_read() -> None:
    lookup = Lookup(Standing(True, role=MEMBER))
    check = StandingCheck(lookup)
    check.confirm(caller())
    check.remember("sub-1", Standing(True, enabled=False))
    with pytest.raises(Revoked):
        check.confirm(caller())
    assert lookup.reads == 1


def test_a_standing_whose_write_answered_503_is_read_again() -> None:
    lookup = Lookup(Standing(True, role=MEMBER))
    check = StandingCheck(lookup)
    check.remember("sub-1", Standing(True, role=MEMBER))
    check.confirm(caller())
    assert lookup.reads == 0
    check.remember("sub-1", None)  # a revoking write's outcome is unknown
    lookup.standing = Standing(True, role=MEMBER, tokens_valid_after=ISSUED)
    with pytest.raises(Revoked):
        check.confirm(caller())
    assert lookup.reads == 1
