"""Sign-ins made outside the API, as the console (or an operator's first admin) makes them, in
moto's Cognito in this process (tests/functional).

A first `PUT /users/me` takes the new record's email and role from the caller's sign-in, so a test
that mints its own tokens for a fixed `sub` needs a sign-in with that sub: moto picks subs itself,
so the sign-in made here is given the test's sub afterwards, in moto's own model.
"""

from __future__ import annotations

from typing import Any

from moto.cognitoidp.models import cognitoidp_backends

from chalicelib.domain.access import ADMIN_GROUP

PASSWORD = "Sup3r-secret-pass!"
ACCOUNT = "123456789012"  # moto's default account


def seed_sign_in(
    cognito: Any,
    pool_id: str,
    sub: str,
    email: str,
    admin: bool = False,
    verified: bool = True,
    enabled: bool = True,
) -> str:
    """A confirmed sign-in (a permanent password) for `email` whose sub is `sub`; `sub`."""
    attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": str(verified).lower()}]
    made = cognito.admin_create_user(
        UserPoolId=pool_id, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
    )["User"]
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=PASSWORD, Permanent=True)
    region = pool_id.split("_", 1)[0]
    pool = cognitoidp_backends[ACCOUNT][region].user_pools[pool_id]
    user = pool.users.pop(made["Username"])
    user.id = user.username = sub
    user.update_attributes([{"Name": "sub", "Value": sub}])
    pool.users[sub] = user
    if admin:
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=sub, GroupName=ADMIN_GROUP)
    if not enabled:
        cognito.admin_disable_user(UserPoolId=pool_id, Username=sub)
    return sub
