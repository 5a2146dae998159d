"""The identity provider on Cognito: the pool's admin API, addressing each user by `sub` (an
email-as-username pool accepts the sub wherever a username goes)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.identity import ADMIN_GROUP, EmailTaken, SignIn, SignInExists, SignInMissing, SignInRefused


def _attributes(user: dict[str, Any]) -> dict[str, str]:
    listed = user.get("Attributes") or user.get("UserAttributes") or []
    return {str(a["Name"]): str(a["Value"]) for a in listed}


def sign_in_of(user: dict[str, Any]) -> SignIn:
    attributes = _attributes(user)
    return SignIn(
        sub=attributes.get("sub") or str(user["Username"]),
        email=attributes.get("email", ""),
        enabled=bool(user.get("Enabled", True)),
        status=str(user.get("UserStatus", "")),
        name=attributes.get("name"),
        email_verified=attributes.get("email_verified") == "true",
    )


class CognitoIdentityProvider(aws.ClientHolder):
    service = "cognito-idp"

    def __init__(self, pool_id: str, client: Any | None = None):
        super().__init__(client)
        self._pool = pool_id

    def _call(self, operation: str, **kwargs: Any) -> Any:
        return aws.call(self.client, operation, UserPoolId=self._pool, **kwargs)

    def _on_user(self, operation: str, sub: str, **kwargs: Any) -> Any:
        """An admin call about one user; SignInMissing when the pool has no such user."""
        try:
            return self._call(operation, Username=sub, **kwargs)
        except ClientError as exc:
            if aws.error_code(exc) == "UserNotFoundException":
                raise SignInMissing() from exc
            raise

    def create(self, email: str, password: str | None = None) -> str:
        kwargs: dict[str, Any] = {
            "Username": email,
            "UserAttributes": [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            # Nothing is sent until the record exists too (invite): a create that fails half-way
            # must not have mailed anyone a password for an account that is then taken back.
            "MessageAction": "SUPPRESS",
        }
        if password is not None:
            kwargs["TemporaryPassword"] = password
        try:
            result = self._call("admin_create_user", **kwargs)
        except ClientError as exc:
            code = aws.error_code(exc)
            if code == "UsernameExistsException":
                existing = self.find(email)
                raise SignInExists(existing.sub if existing else "", existing) from exc
            if code == "InvalidPasswordException":
                raise ValidationError("The password does not meet the pool's password policy") from exc
            if code == "InvalidParameterException":
                # The address passed the API's own check but not Cognito's (which it does not publish).
                raise ValidationError(
                    "Cognito refused this email address", details=[{"field": "email", "message": "refused by Cognito"}]
                ) from exc
            raise
        sub = sign_in_of(result["User"]).sub
        if password is not None:
            self._permanent_password(sub, password)
        return sub

    def _permanent_password(self, sub: str, password: str) -> None:
        try:
            self._on_user("admin_set_user_password", sub, Password=password, Permanent=True)
        except ClientError as exc:
            if aws.error_code(exc) != "InvalidPasswordException":
                raise
            self.delete(sub)  # nothing half-made: the sign-in goes with its refused password
            raise ValidationError("The password does not meet the pool's password policy") from exc

    def invite(self, sub: str, email: str) -> None:
        # RESEND on a user created with SUPPRESS sends the invitation with a new temporary password.
        self._call("admin_create_user", Username=email, MessageAction="RESEND")

    def reset_password(self, sub: str) -> None:
        try:
            self._on_user("admin_reset_user_password", sub)
        except ClientError as exc:
            # Disabled, never signed in (FORCE_CHANGE_PASSWORD), or no verified address to send to.
            if aws.error_code(exc) in ("NotAuthorizedException", "InvalidParameterException"):
                raise SignInRefused() from exc
            raise

    def sign_out(self, sub: str) -> None:
        self._on_user("admin_user_global_sign_out", sub)

    def find(self, email: str) -> SignIn | None:
        try:
            return sign_in_of(self._call("admin_get_user", Username=email))
        except ClientError as exc:
            if aws.error_code(exc) == "UserNotFoundException":
                return None
            raise

    def get(self, sub: str) -> SignIn | None:
        try:
            found = sign_in_of(self._on_user("admin_get_user", sub))
            groups = self._on_user("admin_list_groups_for_user", sub, Limit=60)["Groups"]
        except SignInMissing:
            return None
        return replace(found, admin=any(group["GroupName"] == ADMIN_GROUP for group in groups))

    def set_admin(self, sub: str, admin: bool) -> None:
        operation = "admin_add_user_to_group" if admin else "admin_remove_user_from_group"
        self._on_user(operation, sub, GroupName=ADMIN_GROUP)

    def set_enabled(self, sub: str, enabled: bool) -> None:
        if enabled:
            self._on_user("admin_enable_user", sub)
            return
        self._on_user("admin_disable_user", sub)
        # Disabling stops new sign-ins; this also revokes its refresh tokens (ID tokens already
        # issued stay valid until they expire: the API refuses those itself).
        self._on_user("admin_user_global_sign_out", sub)

    def set_email(self, sub: str, email: str) -> None:
        attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
        try:
            self._on_user("admin_update_user_attributes", sub, UserAttributes=attributes)
        except ClientError as exc:
            if aws.error_code(exc) == "AliasExistsException":
                raise EmailTaken() from exc
            raise

    def delete(self, sub: str) -> None:
        try:
            self._on_user("admin_delete_user", sub)
        except SignInMissing:
            return

    def sign_ins(self) -> Iterator[SignIn]:
        kwargs: dict[str, Any] = {"Limit": 60}
        while True:
            page = self._call("list_users", **kwargs)
            yield from (sign_in_of(user) for user in page.get("Users", []))
            if not page.get("PaginationToken"):
                return
            kwargs["PaginationToken"] = page["PaginationToken"]

    def admins(self) -> set[str]:
        subs: set[str] = set()
        kwargs: dict[str, Any] = {"GroupName": ADMIN_GROUP, "Limit": 60}
        while True:
            page = self._call("list_users_in_group", **kwargs)
            subs |= {sign_in_of(user).sub for user in page.get("Users", [])}
            if not page.get("NextToken"):
                return subs
            kwargs["NextToken"] = page["NextToken"]
