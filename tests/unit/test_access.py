from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.access import (
    ADMIN_GROUP,
    Identity,
    identity_from_claims,
    require_admin,
    require_may_change,
    require_not_self,
    require_owner_or_admin,
)
from chalicelib.domain.errors import Forbidden, Unauthorized
from chalicelib.domain.models import REMOVE, UserChanges


def identity(sub: str = "user-1", groups: frozenset[str] = frozenset()) -> Identity:
    return Identity(sub=sub, groups=groups)


def test_full_claims():
    got = identity_from_claims(
        {
            "sub": "user-1",
            "email": "ann@example.com",
            "email_verified": True,
            "cognito:groups": ["admins", "staff"],
            "iat": 1700000000,
        }
    )
    # The token's email is not part of the identity: the API never takes an email from a token.
    assert got == Identity(sub="user-1", groups=frozenset({"admins", "staff"}), issued_at=1700000000)
    assert got.is_admin
    assert not hasattr(got, "email")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["admins", "staff"], {"admins", "staff"}),
        ([], set()),
        ("admins,staff", {"admins", "staff"}),
        ("admins, staff", {"admins", "staff"}),
        ("[admins staff]", {"admins", "staff"}),
        ("[admins]", {"admins"}),
        ("admins", {"admins"}),
        ("", set()),
        ("[]", set()),
        (None, set()),
        (42, set()),
        ({"admins": True}, set()),
    ],
)
def test_groups_shapes(raw, expected):
    claims: dict[str, Any] = {"sub": "u", "iat": 1, "cognito:groups": raw}
    assert identity_from_claims(claims).groups == frozenset(expected)


def test_missing_groups_claim():
    assert identity_from_claims({"sub": "u", "iat": 1}).groups == frozenset()


def test_admin_detection_from_flattened_string():
    assert identity_from_claims({"sub": "u", "iat": 1, "cognito:groups": "[staff admins]"}).is_admin
    assert not identity_from_claims({"sub": "u", "iat": 1, "cognito:groups": "[staff administrators]"}).is_admin


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": None}, {"sub": 123}, {"sub": ["u"]}, {"email": "a@b.co"}])
def test_missing_or_bad_sub_is_unauthorized(claims):
    with pytest.raises(Unauthorized):
        identity_from_claims(claims)


@pytest.mark.parametrize(
    "claims", [{"email": "a@b.co", "email_verified": True}, {"email": "x", "email_verified": "true"}]
)
def test_no_email_is_taken_from_a_token(claims):
    """A token keeps the address it was issued with for an hour: the identity has none to offer."""
    got = identity_from_claims({"sub": "u", "iat": 1, **claims})
    assert got == Identity(sub="u", groups=frozenset(), issued_at=1)


def test_require_admin():
    require_admin(identity(groups=frozenset({ADMIN_GROUP})))
    with pytest.raises(Forbidden):
        require_admin(identity())
    with pytest.raises(Forbidden):
        require_admin(identity(groups=frozenset({"staff", "Admins"})))


def test_require_owner_or_admin():
    require_owner_or_admin(identity(sub="user-1"), "user-1")
    require_owner_or_admin(identity(sub="admin-1", groups=frozenset({ADMIN_GROUP})), "user-1")
    with pytest.raises(Forbidden):
        require_owner_or_admin(identity(sub="user-2"), "user-1")
    with pytest.raises(Forbidden):
        require_owner_or_admin(identity(sub="user-1"), "USER-1")


@pytest.mark.parametrize(("raw", "expected"), [(1700000000, 1700000000), ("1700000000", 1700000000)])
def test_issued_at_from_a_verified_token_or_api_gateways_string_claims(raw, expected):
    assert identity_from_claims({"sub": "u", "iat": raw}).issued_at == expected


@pytest.mark.parametrize("raw", [None, "", "soon", "1.5", True, "١٢"])
def test_a_token_without_a_usable_iat_is_unauthorized(raw):
    claims: dict[str, Any] = {"sub": "u"} if raw is None else {"sub": "u", "iat": raw}
    with pytest.raises(Unauthorized):
        identity_from_claims(claims)


def changes(**fields: Any) -> UserChanges:
    return UserChanges(**fields)


def test_members_change_only_their_own_name_and_phone():
    member = identity(sub="user-1")
    require_may_change(member, "user-1", changes(name="Ann", phone=REMOVE))
    for refused in (changes(email="x@example.com"), changes(role="admin"), changes(enabled=True)):
        with pytest.raises(Forbidden):
            require_may_change(member, "user-1", refused)
    with pytest.raises(Forbidden):
        require_may_change(member, "user-2", changes(name="Ann"))


def test_admins_change_anyone_but_their_own_role_and_state():
    admin = identity(sub="admin-1", groups=frozenset({ADMIN_GROUP}))
    require_may_change(admin, "user-1", changes(email="x@example.com", role="admin", enabled=False))
    require_may_change(admin, "admin-1", changes(name="Me", email="me@example.com"))
    for refused in (changes(role="member"), changes(enabled=False), changes(enabled=True, name="Me")):
        with pytest.raises(Forbidden):
            require_may_change(admin, "admin-1", refused)


def test_nobody_deletes_themselves():
    require_not_self(identity(sub="admin-1"), "user-1")
    with pytest.raises(Forbidden):
        require_not_self(identity(sub="admin-1"), "admin-1")
