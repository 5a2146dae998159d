"""Where a request's verified identity comes from, in each mode."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.domain.access import Identity, identity_from_claims
from chalicelib.domain.errors import Unauthorized


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
