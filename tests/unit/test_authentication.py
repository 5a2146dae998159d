from __future__ import annotations

from typing import Any

import pytest
from chalice.app import CaseInsensitiveMapping

from chalicelib.domain.errors import Unauthorized
from chalicelib.web.authentication import authenticate
from chalicelib.web.tokens import TokenVerifier
from tests.support.tokens import CLIENT_ID, ISSUER, jwks, token
from tests.unit.fakes import FakeClock

FORGED_ADMIN_CONTEXT: dict[str, Any] = {
    "authorizer": {
        "claims": {
            "sub": "intruder",
            "email": "i@example.com",
            "email_verified": "true",
            "cognito:groups": "admins",
            "iat": "1700000000",
        }
    }
}


@pytest.fixture
def verify():
    return TokenVerifier(ISSUER, CLIENT_ID, fetch_jwks=lambda: jwks(), clock=FakeClock()).verify


def test_with_verify_the_token_decides(verify):
    headers = {"authorization": "Bearer " + token(sub="user-1", email="ann@example.com")}
    identity = authenticate(headers, FORGED_ADMIN_CONTEXT, verify)
    assert identity.sub == "user-1"
    assert not identity.is_admin


def test_with_verify_a_forged_context_cannot_authenticate(verify):
    with pytest.raises(Unauthorized):
        authenticate({}, FORGED_ADMIN_CONTEXT, verify)
    with pytest.raises(Unauthorized):
        authenticate({"authorization": "Bearer not.a.token"}, FORGED_ADMIN_CONTEXT, verify)


def test_with_verify_the_context_is_never_read():
    seen: list[str | None] = []

    def verify(header: str | None) -> dict[str, Any]:
        seen.append(header)
        raise Unauthorized()

    with pytest.raises(Unauthorized):
        authenticate({"authorization": "Bearer x.y.z"}, FORGED_ADMIN_CONTEXT, verify)
    assert seen == ["Bearer x.y.z"]


def test_with_verify_the_header_lookup_is_case_insensitive_on_chalice_headers(verify):
    headers = CaseInsensitiveMapping({"Authorization": "Bearer " + token(sub="user-1")})
    assert authenticate(headers, {}, verify).sub == "user-1"


def test_with_verify_admin_groups_come_from_the_token(verify):
    headers = {"authorization": "Bearer " + token(sub="admin-1", groups=["admins"])}
    assert authenticate(headers, {}, verify).is_admin


def test_with_verify_claims_without_sub_are_unauthorized():
    with pytest.raises(Unauthorized):
        authenticate({"authorization": "x"}, FORGED_ADMIN_CONTEXT, lambda header: {"email": "a@b.co"})


def test_without_verify_claims_come_from_the_authorizer():
    identity = authenticate({}, FORGED_ADMIN_CONTEXT, None)
    assert identity.sub == "intruder"
    assert identity.is_admin


def test_without_verify_the_header_is_ignored():
    context = {"authorizer": {"claims": {"sub": "user-1", "iat": "1700000000"}}}
    identity = authenticate({"authorization": "Bearer " + token(sub="someone-else")}, context, None)
    assert identity.sub == "user-1"


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"authorizer": None},
        {"authorizer": {}},
        {"authorizer": {"claims": None}},
        {"authorizer": {"claims": "sub=user-1"}},
        {"authorizer": {"claims": ["user-1"]}},
        {"authorizer": {"principalId": "user-1"}},
    ],
)
def test_without_verify_missing_claims_are_unauthorized(context):
    with pytest.raises(Unauthorized):
        authenticate({}, context, None)


def test_without_verify_claims_without_sub_are_unauthorized():
    with pytest.raises(Unauthorized):
        authenticate({}, {"authorizer": {"claims": {"email": "a@b.co"}}}, None)
