"""Where the emulator's Cognito (moto 5.2.5) behaves otherwise than Cognito, for the local stack and
the tests that run the app on moto. `apply()` makes all of these changes (idempotent); each is a
replacement of one moto method, so they are only valid for the version they were written against,
and `apply()` refuses any other.

1. Email check. moto checks an email-as-username against `[A-Za-z0-9._%+-]+@...`, so it refuses
   addresses the API accepts and RFC 5322 allows (`o'brien@`, `a&b@`). Cognito does not publish its
   own check; the emulator is widened to the API's own rule (chalicelib.domain.models.EMAIL_PATTERN),
   so that what the API accepts is what the local stack accepts. On AWS, an address Cognito refuses
   gets a 400.
2. Attribute writes with a user's own access token (`UpdateUserAttributes`). moto lets a user write
   any attribute. Cognito lets them write only the app client's `WriteAttributes` (when unset, the
   standard attributes), never `email_verified` or `phone_number_verified`; refuses a disabled
   user; and, when the pool's `UserAttributeUpdateSettings` lists `email` under
   `AttributesRequireVerificationBeforeUpdate`, keeps the original address (still verified) until
   the user confirms the new one with the code mailed to it (7 below). Without that setting
   Cognito applies the address at once and marks it unverified.
3. Attribute writes by an admin (`AdminUpdateUserAttributes`): under the same setting an email
   change waits for verification too, unless the request itself sets `email_verified` to true
   (what the API does), which applies it at once and sends nothing.
4. Aliases. moto refuses to give a user the email it already has (AliasExistsException against
   itself); Cognito refuses an address only when another user holds it. (Both compare addresses
   as given: Cognito's case-insensitive aliases are not emulated, see docs/LOCAL.md.)
5. Access tokens. moto finds the user of an access token by the user name it signed in with, so
   after an admin changed the user's email the token no longer finds its user; Cognito's tokens
   name the user's `sub`, which this falls back to.
6. App clients. Cognito refuses a client whose `WriteAttributes` names `email_verified`,
   `phone_number_verified` or `sub`, or leaves out an attribute the pool requires ("Invalid write
   attributes specified while creating a client"); moto accepts any. The second rule is not in
   Cognito's API reference but is what deployments report (docs/DEPLOY.md lists it under what only
   a deploy can confirm), and the templates follow it.
7. Attribute verification. moto has neither `GetUserAttributeVerificationCode` nor
   `VerifyUserAttribute`. Here a held email change (2) "mails" a six-digit code (kept on the user:
   `mailed_code` reads it, as a test reads a mailbox; `GetUserAttributeVerificationCode` makes a
   new one), and `VerifyUserAttribute` with that code makes the held address the user's email,
   verified; a wrong code is a CodeMismatchException, an address another user took meanwhile an
   AliasExistsException. An admin's verified change (3) leaves a held one as it is: whether Cognito
   drops it then is not documented (docs/DEPLOY.md), and keeping it is the worse case for the API.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import Any

import moto
from moto.cognitoidp import utils
from moto.cognitoidp.exceptions import (
    AliasExistsException,
    CodeMismatchException,
    InvalidParameterException,
    NotAuthorizedError,
    UserNotFoundError,
)
from moto.cognitoidp.models import (
    CognitoIdpBackend,
    CognitoIdpUser,
    CognitoIdpUserPool,
    CognitoIdpUserPoolAttribute,
    CognitoIdpUserPoolClient,
    RegionAgnosticBackend,
    cognitoidp_backends,
)
from moto.cognitoidp.responses import CognitoIdpResponse
from moto.cognitoidp.utils import expand_attrs, flatten_attrs
from moto.core.responses import ActionResult, EmptyResult

from chalicelib.domain.models import EMAIL_PATTERN

PINNED_MOTO = "5.2.5"
EMAIL_CHECK = "cognito-idp.email_format"
ATTRIBUTE_WRITES = "cognito-idp.attribute_writes"
# Never writable by a user, whatever the app client says; Cognito refuses a client that lists them.
NEVER_WRITABLE = frozenset({"sub", "email_verified", "phone_number_verified"})
UNAUTHORIZED_ATTRIBUTE = "A client attempted to write unauthorized attribute"
INVALID_WRITE_ATTRIBUTES = "Invalid write attributes specified while creating a client"


def check_version() -> None:
    if moto.__version__ != PINNED_MOTO:
        raise RuntimeError(
            f"devstack/cognito_emulation.py patches moto {PINNED_MOTO}, but moto {moto.__version__} is "
            "installed: check whether each change it makes is still needed, then update PINNED_MOTO"
        )


def widen_email_check() -> None:
    check_version()
    # moto applies it with re.fullmatch; the pattern's own anchors are harmless there.
    utils.FORMATS["email"] = EMAIL_PATTERN


# --- 2-5: attribute writes ---------------------------------------------------------------------------


def _requires_verification(pool: CognitoIdpUserPool, attribute: str) -> bool:
    settings = pool.extended_config.get("UserAttributeUpdateSettings") or {}
    return attribute in (settings.get("AttributesRequireVerificationBeforeUpdate") or [])


def _alias_free(pool: CognitoIdpUserPool, email: str, user: CognitoIdpUser) -> None:
    """AliasExistsException when another user of an email-as-username pool holds `email`."""
    if "email" not in pool.extended_config.get("UsernameAttributes", []):
        return
    for other in pool.users.values():
        if other is not user and other.attribute_lookup.get("email", "") == email:
            raise AliasExistsException()


def _write(pool: CognitoIdpUserPool, user: CognitoIdpUser, attributes: list[dict[str, str]], admin: bool) -> None:
    """Apply an attribute write as Cognito does (2-4 above)."""
    given = flatten_attrs(attributes)
    email = given.get("email")
    if email is not None and email != user.attribute_lookup.get("email"):
        _alias_free(pool, email, user)
        verified_now = admin and given.get("email_verified") == "true"
        if _requires_verification(pool, "email") and not verified_now:
            # The original address stays, verified, until the new one is confirmed with a code.
            user.pending_email = email  # type: ignore[attr-defined]
            user.pending_code = _new_code()  # type: ignore[attr-defined]
            given.pop("email")
            given.pop("email_verified", None)
        elif not admin:
            given["email_verified"] = "false"  # a user's own new address is unverified until confirmed
    if given:
        user.update_attributes(expand_attrs(given))


def _token_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _token_owner(
    backend: CognitoIdpBackend, access_token: str
) -> tuple[CognitoIdpUserPool, CognitoIdpUserPoolClient | None, CognitoIdpUser]:
    for pool in backend.user_pools.values():
        if access_token in pool.access_tokens:
            client_id, username = pool.access_tokens[access_token]
            user = pool._get_user(username)
            if user is None:
                sub = _token_claims(access_token).get("sub")
                user = next((found for found in pool.users.values() if found.id == sub), None)
            if user is None:
                raise UserNotFoundError("User does not exist.")
            if not user.enabled:
                raise NotAuthorizedError("User is disabled.")
            return pool, pool.clients.get(client_id), user
    raise NotAuthorizedError("Invalid Access Token")


def _writable(pool: CognitoIdpUserPool, client: CognitoIdpUserPoolClient | None) -> frozenset[str]:
    listed = (client.extended_config.get("WriteAttributes") if client is not None else None) or None
    if listed is None:  # unset: the standard attributes of the pool
        listed = [name for name in CognitoIdpUserPoolAttribute.STANDARD_SCHEMA if name not in NEVER_WRITABLE]
    return frozenset(listed) - NEVER_WRITABLE


def update_user_attributes(self: CognitoIdpBackend, access_token: str, attributes: list[dict[str, str]]) -> None:
    """`UpdateUserAttributes` as Cognito does it: only the client's writable attributes, by the token's user."""
    pool, client, user = _token_owner(self, access_token)
    refused = [attribute["Name"] for attribute in attributes if attribute["Name"] not in _writable(pool, client)]
    if refused:
        raise NotAuthorizedError(UNAUTHORIZED_ATTRIBUTE)
    _write(pool, user, attributes, admin=False)


def admin_update_user_attributes(
    self: CognitoIdpBackend, user_pool_id: str, username: str, attributes: list[dict[str, str]]
) -> None:
    """`AdminUpdateUserAttributes` as Cognito does it (3, 4 above)."""
    user = self.admin_get_user(user_pool_id, username)
    _write(self.describe_user_pool(user_pool_id), user, attributes, admin=True)


# --- 7: attribute verification ------------------------------------------------------------------------


def _new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def get_user_attribute_verification_code(self: CognitoIdpBackend, access_token: str, attribute_name: str) -> None:
    """A new code for the held email change (the old one no longer counts)."""
    _, _, user = _token_owner(self, access_token)
    if attribute_name == "email" and getattr(user, "pending_email", None) is not None:
        user.pending_code = _new_code()  # type: ignore[attr-defined]


def verify_user_attribute(self: CognitoIdpBackend, access_token: str, attribute_name: str, code: str) -> None:
    """The held email change takes effect, verified, when `code` is the one mailed for it."""
    pool, _, user = _token_owner(self, access_token)
    pending = getattr(user, "pending_email", None)
    if attribute_name != "email" or pending is None or code != getattr(user, "pending_code", None):
        raise CodeMismatchException("Invalid verification code provided, please try again.")
    _alias_free(pool, pending, user)
    user.pending_email = None  # type: ignore[attr-defined]
    user.pending_code = None  # type: ignore[attr-defined]
    user.update_attributes(expand_attrs({"email": pending, "email_verified": "true"}))


def mailed_code(pool_id: str, sub: str) -> str | None:
    """The code last "mailed" for the held email change of the user `sub` (what its owner reads in
    the new mailbox), or None when no change is held."""
    for backends in cognitoidp_backends.values():
        for region, backend in backends.items():
            pool = backend.user_pools.get(pool_id) if region != "global" else None
            if pool is None:
                continue
            for user in pool.users.values():
                if user.id == sub and getattr(user, "pending_email", None) is not None:
                    return getattr(user, "pending_code", None)
    return None


def _agnostic_get_code(self: RegionAgnosticBackend, access_token: str, attribute_name: str) -> None:
    backend = self._find_backend_by_access_token(access_token)
    get_user_attribute_verification_code(backend, access_token, attribute_name)


def _agnostic_verify(self: RegionAgnosticBackend, access_token: str, attribute_name: str, code: str) -> None:
    verify_user_attribute(self._find_backend_by_access_token(access_token), access_token, attribute_name, code)


def _respond_get_code(self: CognitoIdpResponse) -> ActionResult:
    _agnostic_get_code(
        self._get_region_agnostic_backend(), self._get_param("AccessToken"), self._get_param("AttributeName")
    )
    return ActionResult({"CodeDeliveryDetails": {"DeliveryMedium": "EMAIL", "AttributeName": "email"}})


def _respond_verify(self: CognitoIdpResponse) -> ActionResult:
    _agnostic_verify(
        self._get_region_agnostic_backend(),
        self._get_param("AccessToken"),
        self._get_param("AttributeName"),
        self._get_param("Code"),
    )
    return EmptyResult()


# --- 6: app clients ----------------------------------------------------------------------------------


def _check_write_attributes(pool: CognitoIdpUserPool, config: dict[str, Any]) -> None:
    listed = config.get("WriteAttributes")
    if not listed:
        return
    required = {name for name, attribute in pool.schema_attributes.items() if attribute.required} - {"sub"}
    if NEVER_WRITABLE.intersection(listed) or not required <= set(listed):
        raise InvalidParameterException(INVALID_WRITE_ATTRIBUTES)


def create_user_pool_client(
    self: CognitoIdpBackend, user_pool_id: str, generate_secret: bool, extended_config: dict[str, Any]
) -> CognitoIdpUserPoolClient:
    _check_write_attributes(self.describe_user_pool(user_pool_id), extended_config)
    return _ORIGINAL["create_user_pool_client"](self, user_pool_id, generate_secret, extended_config)  # type: ignore[no-any-return]


def update_user_pool_client(
    self: CognitoIdpBackend, user_pool_id: str, client_id: str, extended_config: dict[str, Any]
) -> CognitoIdpUserPoolClient:
    _check_write_attributes(self.describe_user_pool(user_pool_id), extended_config)
    return _ORIGINAL["update_user_pool_client"](self, user_pool_id, client_id, extended_config)  # type: ignore[no-any-return]


# --- applying and removing ---------------------------------------------------------------------------

_REPLACEMENTS: dict[str, Callable[..., Any]] = {
    "update_user_attributes": update_user_attributes,
    "admin_update_user_attributes": admin_update_user_attributes,
    "create_user_pool_client": create_user_pool_client,
    "update_user_pool_client": update_user_pool_client,
}
_ORIGINAL: dict[str, Callable[..., Any]] = {name: getattr(CognitoIdpBackend, name) for name in _REPLACEMENTS}
# Operations moto lacks (7): handlers added to its responses, taken off again by `remove`.
_ADDED_RESPONSES: dict[str, Callable[..., Any]] = {
    "get_user_attribute_verification_code": _respond_get_code,
    "verify_user_attribute": _respond_verify,
}
_MOTO_EMAIL_FORMAT = utils.FORMATS["email"]


def apply() -> list[str]:
    """Check the moto version, then make every change above (idempotent); the names of those active."""
    widen_email_check()
    for name, replacement in _REPLACEMENTS.items():
        setattr(CognitoIdpBackend, name, replacement)
    for name, handler in _ADDED_RESPONSES.items():
        setattr(CognitoIdpResponse, name, handler)
    return active()


def remove() -> None:
    """Back to moto as released (tests of the changes themselves)."""
    utils.FORMATS["email"] = _MOTO_EMAIL_FORMAT
    for name, original in _ORIGINAL.items():
        setattr(CognitoIdpBackend, name, original)
    for name in _ADDED_RESPONSES:
        if name in vars(CognitoIdpResponse):
            delattr(CognitoIdpResponse, name)


def active() -> list[str]:
    """The changes in effect now, checked on moto itself."""
    names = []
    if utils.FORMATS["email"] == EMAIL_PATTERN:
        names.append(EMAIL_CHECK)
    if all(getattr(CognitoIdpBackend, name) is replacement for name, replacement in _REPLACEMENTS.items()) and all(
        getattr(CognitoIdpResponse, name, None) is handler for name, handler in _ADDED_RESPONSES.items()
    ):
        names.append(ATTRIBUTE_WRITES)
    return names
