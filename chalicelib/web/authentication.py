"""Who is calling: where a request's verified identity comes from in each mode, confirmed against
the caller's record."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.domain.access import Identity, identity_from_claims
from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.revocation import StandingCheck


def authenticate(
    headers: Mapping[str, str],
    request_context: Mapping[str, Any],
    verify: Callable[[str | None], dict[str, Any]] | None,
) -> Identity:
    """The caller's identity, or Unauthorized.

    With `verify` (chalice local, tests) the token is checked here and whatever claims the
    local gateway put in the request context are ignored: it only base64-decodes tokens.
    Without it (Lambda), the claims are those API Gateway's Cognito authorizer verified.
    """
    if verify is not None:
        return identity_from_claims(verify(headers.get("authorization")))
    claims = (request_context.get("authorizer") or {}).get("claims")
    if not isinstance(claims, Mapping):
        raise Unauthorized()
    return identity_from_claims(claims)


class Authenticator:
    """The identity of a request to a protected route: its token verified (by API Gateway in
    Lambda, by `verify` elsewhere), then confirmed by the caller's record (revocation, and the
    record's role capping the token's)."""

    def __init__(self, verify: Callable[[str | None], dict[str, Any]] | None, standing: StandingCheck):
        self._verify = verify
        self._standing = standing

    def __call__(self, headers: Mapping[str, str], request_context: Mapping[str, Any]) -> Identity:
        return self._standing.confirm(authenticate(headers, request_context, self._verify))
