"""Create on the emulator what production has: the users table, the Cognito pool, the bucket."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.table_schema import create_audit_table_kwargs, create_table_kwargs, time_to_live_kwargs
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.domain.models import ADMIN, MEMBER, NewUser
from chalicelib.web.inputs import parse_new_user
from infra.invitation import invitation
from infra.stages import aws_properties, load_limits

if TYPE_CHECKING:
    from chalicelib.domain.service import UserService

# A client of the emulator for a service name ("dynamodb"): what the stack's own setup and pollers take.
Clients = Callable[[str], Any]

ADMIN_EMAIL = "admin@example.com"
MEMBER_EMAIL = "member@example.com"


@dataclass(frozen=True)
class Stack:
    api_url: str
    aws_endpoint_url: str
    region: str
    table_name: str
    user_pool_id: str
    user_pool_client_id: str
    admin_username: str
    admin_password: str
    member_username: str
    member_password: str
    bucket_name: str
    cursor_secret_arn: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def new_password() -> str:
    """A random password that meets the pool's policy (12+ chars, upper, lower, digit, symbol)."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(16))
    return f"{core}Aa1!"


# What the emulator accepts: fixed fake credentials keep real ones from ever being sent to it.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def pool_settings(name: str) -> dict[str, Any]:
    """CreateUserPool's arguments for a pool as deployed (infra/cloudformation.py): email as user
    name and required, its changes verified first, the password policy."""
    limits = load_limits()
    return {
        "PoolName": name,
        "UsernameAttributes": ["email"],
        "AutoVerifiedAttributes": ["email"],
        "Schema": [{"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True}],
        "UserAttributeUpdateSettings": aws_properties(limits["user_attribute_update_settings"]),
        "Policies": {"PasswordPolicy": limits["password_policy"]},
        # As a stage that sends through SES words the invitation (Cognito's own email may not).
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True, "InviteMessageTemplate": invitation(limits)},
    }


def client_settings(pool_id: str, name: str) -> dict[str, Any]:
    """CreateUserPoolClient's arguments for the app client as deployed (flows, read and write attributes)."""
    return {
        "UserPoolId": pool_id,
        "ClientName": name,
        "GenerateSecret": False,
        **aws_properties(load_limits()["user_pool_client"]),
    }


def emulator_client(service: str, endpoint: str, region: str, **config: Any) -> Any:
    """A boto3 client of the embedded stack's emulator; `config` is botocore Config options
    (timeouts, retries, proxies)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint or None,  # none: boto3's own (moto's mock_aws in the in-process tests)
        region_name=region,
        config=Config(**config) if config else None,
        **EMULATOR_CREDENTIALS,
    )


def emulator_clients(endpoint: str, region: str) -> Clients:
    """One client per service of the emulator, made on first use and shared after: what one process
    sets up and polls the emulator with. Making a client takes 10 to 40 ms of CPU (a service model to
    walk, its methods to build), and a stack's start made 25 of them for 7 services. Not for a caller
    that hooks into its client (to count its calls or fail them): that one needs a client of its own."""
    return cache(partial(emulator_client, endpoint=endpoint, region=region))


def _service(endpoint: str, region: str, pool_id: str, table_name: str, clients: Clients) -> UserService:
    """The API's own user service, wired as the app wires it, on the emulator: what `POST /users` runs."""
    from chalicelib.bootstrap import wire
    from chalicelib.config import load_settings

    environment = {
        "STAGE": "local",
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": endpoint,
        "TABLE_NAME": table_name,
        "USER_POOL_ID": pool_id,
        "USER_POOL_CLIENT_ID": "devstack",  # no token is verified here
    }
    return wire(load_settings(environment), clients=clients).service


def add_user(
    endpoint: str,
    region: str,
    pool_id: str,
    table_name: str,
    email: str,
    password: str,
    admin: bool = False,
    name: str | None = None,
) -> str:
    """A user as `POST /users` makes one (sign-in and record, in the admins group for an admin),
    with `password` as its permanent password instead of an invitation; its userId."""
    service = _service(endpoint, region, pool_id, table_name, emulator_clients(endpoint, region))
    return _add_user(service, email, password, admin, name)


def _add_user(service: UserService, email: str, password: str, admin: bool, name: str | None) -> str:
    new = NewUser(name=name or email.partition("@")[0], email=email, role=ADMIN if admin else MEMBER)
    # The API's own rules first, so the service never sees what the API would refuse.
    parse_new_user({"name": new.name, "email": new.email, "role": new.role})
    user = service.create_user(new, actor="devstack", password=password)
    return user.user_id


class SignInRefused(Exception):
    """Cognito did not sign the user in: why, in one line; `code`, Cognito's error code, if it gave one."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


def id_token(
    endpoint: str, region: str, client_id: str, username: str, password: str, new_password: str | None = None
) -> str:
    """An ID token for the user; SignInRefused for a wrong password, an unknown or disabled user,
    or a user Cognito first asks something else of. An invited user's first sign-in (their
    temporary password) asks for a new password: with `new_password` it is set, as a client would."""
    from botocore.exceptions import ClientError

    idp = emulator_client("cognito-idp", endpoint, region)
    try:
        result = idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        if result.get("ChallengeName") == "NEW_PASSWORD_REQUIRED" and new_password:
            result = idp.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="NEW_PASSWORD_REQUIRED",
                Session=result["Session"],
                ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": new_password},
            )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in SIGN_IN_REFUSALS:
            raise SignInRefused(
                f"cannot sign in as {username}: {error.get('Message') or error['Code']}", error["Code"]
            ) from None
        raise
    if "AuthenticationResult" not in result:
        challenge = result.get("ChallengeName")
        hint = (
            " (an invited user's first sign-in: add NEW_PASSWORD=...)" if challenge == "NEW_PASSWORD_REQUIRED" else ""
        )
        raise SignInRefused(f"cannot sign in as {username}: Cognito first asks for {challenge}{hint}")
    return str(result["AuthenticationResult"]["IdToken"])


def create_change_resources(
    endpoint: str,
    region: str,
    audit_table: str,
    bus_name: str,
    dead_letter_queue: str,
    clients: Clients | None = None,
) -> str:
    """What the change consumer writes to, as deployed: the audit table (TTL on), the stage's bus, and
    its mapping's dead-letter queue (kept as long as deployed); the queue's URL."""
    clients = clients or emulator_clients(endpoint, region)
    dynamodb = clients("dynamodb")
    dynamodb.create_table(**create_audit_table_kwargs(audit_table))
    dynamodb.update_time_to_live(**time_to_live_kwargs(audit_table))
    clients("events").create_event_bus(Name=bus_name)
    retention = str(load_limits()["change_events"]["dead_letter_retention_seconds"])
    queue = clients("sqs").create_queue(QueueName=dead_letter_queue, Attributes={"MessageRetentionPeriod": retention})
    return str(queue["QueueUrl"])


# Cognito's answers to a sign-in that are about the user or the password, not about the stack.
SIGN_IN_REFUSALS = frozenset(
    {
        "NotAuthorizedException",
        "UserNotFoundException",
        "UserNotConfirmedException",
        "PasswordResetRequiredException",
        "InvalidPasswordException",  # a new password the pool's policy refuses
    }
)


def create(
    endpoint: str,
    region: str,
    table_name: str,
    bucket_name: str,
    api_url: str,
    cors_origins: tuple[str, ...] = (),
    clients: Clients | None = None,
) -> Stack:
    clients = clients or emulator_clients(endpoint, region)
    dynamodb = clients("dynamodb")
    dynamodb.create_table(**create_table_kwargs(table_name))
    dynamodb.update_time_to_live(**time_to_live_kwargs(table_name))
    s3 = clients("s3")
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket_name)
    else:
        s3.create_bucket(Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": region})
    if cors_origins:
        # As deployed: a browser at the app's origin uploads and downloads avatars directly (locally
        # from any of the API's allowed origins).
        bucket = load_limits()["avatar_bucket"]
        rule = {
            "AllowedOrigins": list(cors_origins),
            "AllowedMethods": bucket["cors_methods"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": bucket["cors_max_age_seconds"],
        }
        s3.put_bucket_cors(Bucket=bucket_name, CORSConfiguration={"CORSRules": [rule]})
    # As deployed: the cursor key lives in Secrets Manager, generated here, never in a file.
    cursor_secret_arn = clients("secretsmanager").create_secret(
        Name="users-api/local/cursor-secret", SecretString=secrets.token_urlsafe(48)
    )["ARN"]
    # The pool and client as deployed (infra/limits.json), so local logins behave like real ones.
    idp = clients("cognito-idp")
    pool_id = idp.create_user_pool(**pool_settings("users-api-local"))["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(**client_settings(pool_id, "users-api-local"))["UserPoolClient"]["ClientId"]
    idp.create_group(UserPoolId=pool_id, GroupName=ADMIN_GROUP, Description="May manage every user")
    admin_password, member_password = new_password(), new_password()
    service = _service(endpoint, region, pool_id, table_name, clients)
    _add_user(service, ADMIN_EMAIL, admin_password, admin=True, name="Local Admin")
    _add_user(service, MEMBER_EMAIL, member_password, admin=False, name="Local Member")
    return Stack(
        api_url=api_url,
        aws_endpoint_url=endpoint,
        region=region,
        table_name=table_name,
        user_pool_id=pool_id,
        user_pool_client_id=client_id,
        admin_username=ADMIN_EMAIL,
        admin_password=admin_password,
        member_username=MEMBER_EMAIL,
        member_password=member_password,
        bucket_name=bucket_name,
        cursor_secret_arn=cursor_secret_arn,
    )
