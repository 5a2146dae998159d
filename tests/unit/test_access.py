from __future__ import annotations

from typing import Any

import pytest

from chalicelib.access import Identity, identity_from_claims, require_admin, require_owner_or_admin
from chalicelib.config import ADMIN_GROUP
from chalicelib.errors import Forbidden, Unauthorized


def identity(sub: str = "user-1", groups: frozenset[str] = frozenset()) -> Identity:
    return Identity(sub=sub, email="ann@example.com", email_verified=True, groups=groups)


def test_full_claims():
    got = identity_from_claims(
        {"sub": "user-1", "email": "ann@example.com", "email_verified": True, "cognito:groups": ["admins", "staff"]}
    )
    assert got == Identity(
        sub="user-1", email="ann@example.com", email_verified=True, groups=frozenset({"admins", "staff"})
    )
    assert got.is_admin


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
    claims: dict[str, Any] = {"sub": "u", "cognito:groups": raw}
    assert identity_from_claims(claims).groups == frozenset(expected)


def test_missing_groups_claim():
    assert identity_from_claims({"sub": "u"}).groups == frozenset()


def test_admin_detection_from_flattened_string():
    assert identity_from_claims({"sub": "u", "cognito:groups": "[staff admins]"}).is_admin
    assert not identity_from_claims({"sub": "u", "cognito:groups": "[staff administrators]"}).is_admin


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": None}, {"sub": 123}, {"sub": ["u"]}, {"email": "a@b.co"}])
def test_missing_or_bad_sub_is_unauthorized(claims):
    with pytest.raises(Unauthorized):
        identity_from_claims(claims)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), ("true", True), (False, False), ("false", False), (None, False), ("yes", False), (1, False)],
)
def test_email_verified(raw, expected):
    assert identity_from_claims({"sub": "u", "email_verified": raw}).email_verified is expected


def test_email_verified_missing_is_false():
    assert identity_from_claims({"sub": "u"}).email_verified is False


@pytest.mark.parametrize(("raw", "expected"), [("a@b.co", "a@b.co"), ("", None), (None, None), (5, None)])
def test_email(raw, expected):
    assert identity_from_claims({"sub": "u", "email": raw}).email == expected


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
