"""The invariant of docs/DESIGN.md ("One user, one truth") as a property: Hypothesis drives random
sequences of what admins, members, Cognito's own API and failing AWS calls do to users, through the
real app (Chalice's test client, the real adapters, moto in this process), and after every step
checks what users get against the invariant:

- for every user, record and sign-in agree on existence, email, enabled and group, and the
  enabled-admin counter equals the records (`make drift`'s own check, infra/drift.py, is the
  second opinion: it must find nothing but sign-ins made outside the API that await their record);
- a 4xx or a 409 changed nothing (table and pool compared before and after);
- a 503 left at most a state that a retry with the same Idempotency-Key, or `make drift FIX=1`,
  completes (the model does one or the other, then checks);
- what a 2xx answered is what is stored; `updatedAt` grows with `version`;
- a token issued before a revoking change is refused, one issued after it (after the 200) accepted.

Steps: invite (POST /users), sign-ins made outside the API (the console), a user's sign-in
(first with the invitation's temporary password) and its ID token, member profile edits with a
fresh or a stale token, admin changes of email, role, enabled and name (also no-ops and stale
If-Match), deletes, a member's own Cognito calls with their access token (UpdateUserAttributes of
any attribute, ChangePassword, GlobalSignOut), two of these at once, and any of the single ones
with a fault injected below botocore's retry handler: an error on every attempt or on the first, or
a slow success (applied, answer lost, botocore resends) once or on every attempt, at any DynamoDB or
Cognito operation.

ID tokens are minted by the test as Cognito would issue them at that moment (the sign-in's email
and groups, `iat` in whole seconds) on the service's clock, which the test drives: the wait before
a revoking change reaches Cognito (models.tokens_valid_from) moves it on instead of sleeping.

`make test` runs MODEL_EXAMPLES sequences (derandomised, so every run tries the same ones);
`make fuzz` runs many more, random (EXAMPLES= per job, STEPS=, JOBS= processes side by side), and
prints the shrunk failing sequence if one breaks the invariant.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.adapters.avatars import AvatarStore
from chalicelib.adapters.dynamodb import DynamoUserRepository
from chalicelib.adapters.local_outbox import OutboxCognitoIdentityProvider
from chalicelib.adapters.table_schema import IDEMPOTENCY_KEY_PREFIX
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.models import tokens_valid_after
from chalicelib.domain.revocation import StandingCheck
from chalicelib.domain.service import UserService
from chalicelib.web.tokens import TokenVerifier
from infra.drift import Drift
from tests.functional.conftest import BUCKET, TABLE, Api, Emulator, _empty
from tests.support import tokens
from tests.support.dynamodb_faults import Fault, Faults, answered_late, aws_error

ADMIN = tokens.ADMIN  # the operator: an admin by its token's group, with no record of its own
EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "20"))
STEPS = int(os.environ.get("MODEL_STEPS", "20"))
FUZZ = os.environ.get("MODEL_FUZZ") == "1"  # make fuzz: random, not derandomised, and counted
EMAILS = ("ann@m.test", "bob@m.test", "cy@m.test", "Ann@m.test", "dee@m.test")
PASSWORD = "Model-passw0rd-1!"
NAMES = ("Ann", "Bob", "Cy")
DYNAMODB_OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")
COGNITO_OPERATIONS = (
    "AdminCreateUser",
    "AdminGetUser",
    "AdminListGroupsForUser",
    "AdminUpdateUserAttributes",
    "AdminAddUserToGroup",
    "AdminRemoveUserFromGroup",
    "AdminDisableUser",
    "AdminEnableUser",
    "AdminUserGlobalSignOut",
    "AdminDeleteUser",
    "AdminSetUserPassword",
)
FAULTS = ("error on every attempt", "error once", "slow success once", "slow success on every attempt")


# What the sequences did (`make fuzz` prints it): (step, status or outcome) -> how often.
SEEN: Counter[tuple[str, str]] = Counter()


class ModelClock:
    """The service's clock: 10 minutes behind the real one (tokens stamped with it stay valid and
    are never "from the future"), one millisecond on per reading, and `sleep` moves it on."""

    def __init__(self) -> None:
        self._now = datetime.now(UTC) - timedelta(minutes=10)
        self._lock = threading.Lock()

    def iso(self) -> str:
        with self._lock:
            self._now += timedelta(milliseconds=1)
            return self._now.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def epoch(self) -> float:
        with self._lock:
            return self._now.timestamp()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=max(seconds, 0))


@dataclass
class Token:
    value: str
    issued_at: int


@dataclass
class Session:
    """What a signed-in user holds: their password, Cognito's access token, the ID tokens issued."""

    password: str
    access: str | None = None
    tokens: list[Token] = field(default_factory=list)


@dataclass
class World:
    """What one test's examples share: the app's test client and the emulator."""

    api: Api
    emulator: Emulator
    outbox: Path


def _snapshot_pool(cognito: Any, pool: str) -> list[tuple[Any, ...]]:
    admins = {
        u["Username"] for u in cognito.list_users_in_group(UserPoolId=pool, GroupName=ADMIN_GROUP, Limit=60)["Users"]
    }
    users = cognito.list_users(UserPoolId=pool, Limit=60)["Users"]
    return sorted(
        (
            u["Username"],
            u["Enabled"],
            u["UserStatus"],
            tuple(sorted((a["Name"], a["Value"]) for a in u["Attributes"])),
            u["Username"] in admins,
        )
        for u in users
    )


class UserModel(RuleBasedStateMachine):
    world: World

    def __init__(self) -> None:
        super().__init__()
        world = self.world
        self.api, self.pool, self.client_id = world.api, world.emulator.pool_id, world.emulator.client_id
        # moto takes one request at a time (its backends are not thread-safe), as the local stack's
        # emulator does; faults go below botocore's retry handler of the app's own clients.
        self.lock = threading.RLock()
        _empty(world.emulator)
        world.outbox.unlink(missing_ok=True)
        self.app_faults = {
            "dynamodb": Faults(aws.client("dynamodb"), self.lock),
            "cognito-idp": Faults(aws.client("cognito-idp"), self.lock),
        }
        # The test's own view, through clients the faults never touch.
        self.ddb = boto3.client("dynamodb", region_name=tokens.REGION)
        self.cognito = boto3.client("cognito-idp", region_name=tokens.REGION)
        self.own_faults = [Faults(self.ddb, self.lock), Faults(self.cognito, self.lock)]
        self.drift = Drift(TABLE, self.pool, self.ddb, self.cognito)
        self.clock = ModelClock()
        bootstrap.reset()
        # The app's own adapters (what bootstrap wires from the test stage's settings), with the
        # service on the model's clock.
        identities = OutboxCognitoIdentityProvider(self.pool, world.outbox)
        repository = DynamoUserRepository(TABLE)
        standing = StandingCheck(repository.standing)
        bootstrap.override(
            verifier=TokenVerifier(tokens.ISSUER, tokens.CLIENT_ID, lambda: tokens.jwks()),
            identities=identities,
            standing=standing,
            service=UserService(
                repository,
                CursorCodec(b"model-cursor-secret-of-32-bytes!"),
                identities,
                clock=self.clock.iso,
                sleep=self.clock.sleep,
                avatars=AvatarStore(BUCKET),
                standing_changed=standing.remember,
            ),
        )
        self.sessions: dict[str, Session] = {}
        self.console: set[str] = set()  # sign-ins made outside the API, awaiting their record
        self.seen: dict[str, tuple[int, str]] = {}  # user id -> (version, updatedAt) last seen
        self.etags: dict[str, list[str]] = {}  # user id -> every ETag it had
        self.revoked: dict[str, int] = {}  # user id -> tokensValidAfter of its last revoking change
        self.current = ""
        self.known: list[str] = []  # every user id seen, in the order seen

    def teardown(self) -> None:
        for faults in [*self.app_faults.values(), *self.own_faults]:
            faults.close()

    # --- what is there ------------------------------------------------------------------------

    def records(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            items = self.ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        return {item["userId"]["S"]: item for item in items if "listingId" in item}

    def snapshot(self) -> tuple[Any, ...]:
        with self.lock:
            items = self.ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
            pool = _snapshot_pool(self.cognito, self.pool)
        kept = [item for item in items if not item["userId"]["S"].startswith(IDEMPOTENCY_KEY_PREFIX)]
        return (sorted(json.dumps(item, sort_keys=True) for item in kept), pool)

    def sign_in_of(self, sub: str) -> dict[str, Any] | None:
        try:
            with self.lock:
                return dict(self.cognito.admin_get_user(UserPoolId=self.pool, Username=sub))
        except self.cognito.exceptions.UserNotFoundException:
            return None

    def pick(self, index: int, among: Callable[[str], bool] = lambda sub: True) -> str | None:
        """The `index`-th (modulo) of the users seen so far that `among` accepts, in the order they
        appeared. Every step draws the same kinds of values whatever the state, and picks by
        position, never by a sub (moto makes new ones each run), so a sequence replays and shrinks."""
        for sub in [*self.records(), *self.console]:
            if sub not in self.known:
                self.known.append(sub)
        found = [sub for sub in self.known if among(sub)]
        return found[index % len(found)] if found else None

    # --- requests -------------------------------------------------------------------------------

    def request(self, method: str, path: str, token: str, body: Any = None, **headers: str) -> Any:
        return self.api.request(method, path, token, body, headers=headers)

    def count(self, what: str, outcome: str) -> None:
        SEEN[(what, outcome)] += 1

    def judge(self, response: Any, before: tuple[Any, ...], allowed: set[int]) -> None:
        """What every answer owes: a status the route may give, nothing changed by a refusal, and a
        2xx that answers what is stored."""
        status = response.status_code
        SEEN[(self.current, str(status))] += 1
        assert status in allowed | {503}, (status, response.body)
        if 400 <= status < 500:
            assert self.snapshot() == before, f"a {status} changed something: {response.body!r}"
        if status < 300 and isinstance(response.json_body, dict):
            user = response.json_body.get("user")
            if user is not None:
                stored = self.request("GET", f"/users/{user['userId']}", ADMIN)
                if stored.status_code == 200:
                    assert stored.json_body["version"] >= user["version"]
                    if stored.json_body["version"] == user["version"]:
                        assert stored.json_body == user
                self.etags.setdefault(user["userId"], []).append(response.headers["ETag"])

    def complete(self, method: str, path: str, token: str, body: Any, headers: dict[str, str], before: Any) -> Any:
        """After a 503: the same request with its key, or (when the data says so) the operator's
        drift repair. Either leaves the invariant whole."""
        retry = self.request(method, path, token, body, **headers)
        if retry.status_code == 409 and "in progress" in retry.body.decode():
            # The key stayed locked: DynamoDB was what failed, so it could not be released. It unlocks
            # after 30 s; the operator's repair finishes the job meanwhile.
            self.repair()
            return retry
        assert retry.status_code != 503, retry.body
        if 400 <= retry.status_code < 500:
            # Refused in the end: the whole request changed nothing.
            assert self.snapshot() == before, f"a refused retry left changes: {retry.body!r}"
        return retry

    def repair(self) -> None:
        with self.lock:
            report = self.drift.check()
            self.drift.fix(report)
        self.resync()

    def resync(self) -> None:
        """Learn from the data what a request whose answer says less (503, a race) did."""
        records = self.records()
        with self.lock:
            report = self.drift.check()
        self.console = {s.sub for s in report.sign_ins_without_records}
        for sub in list(self.sessions):
            if sub not in records and sub not in self.console:
                self.sessions.pop(sub)
        for sub, item in records.items():
            if item.get("tokensValidAfter"):
                self.revoked[sub] = int(item["tokensValidAfter"]["N"])

    def learn(self, response: Any) -> None:
        if response.status_code >= 300 or not isinstance(response.json_body, dict):
            return
        user = response.json_body.get("user")
        if user is None:
            return
        self.console.discard(user["userId"])
        record = self.records().get(user["userId"])
        if record is not None and record.get("tokensValidAfter"):
            self.revoked[user["userId"]] = int(record["tokensValidAfter"]["N"])

    # --- steps ------------------------------------------------------------------------------------

    @rule(email=st.sampled_from(EMAILS), role=st.sampled_from(("member", "admin")))
    def invite(self, email: str, role: str) -> None:
        self.current = "invite"
        self.act("POST", "/users", ADMIN, {"name": "Invited", "email": email, "role": role}, {201, 409})

    @rule(email=st.sampled_from(EMAILS), admin=st.booleans(), used=st.booleans())
    def console_sign_in(self, email: str, admin: bool, used: bool) -> None:
        """Someone makes a sign-in in the AWS console (no record until its first PUT /users/me)."""
        attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
        with self.lock:
            try:
                made = self.cognito.admin_create_user(
                    UserPoolId=self.pool, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
                )
            except self.cognito.exceptions.UsernameExistsException:
                return
            sub = str(made["User"]["Username"])
            if used:
                self.cognito.admin_set_user_password(
                    UserPoolId=self.pool, Username=sub, Password=PASSWORD, Permanent=True
                )
                self.sessions[sub] = Session(PASSWORD)
            if admin:
                self.cognito.admin_add_user_to_group(UserPoolId=self.pool, Username=sub, GroupName=ADMIN_GROUP)
        self.console.add(sub)
        self.count("console sign-in", "used" if used else "never used")

    @rule(who=st.integers(0, 99))
    def sign_in(self, who: int) -> None:
        """The user signs in through the app client (the invitation's temporary password the first
        time), and Cognito issues an ID token: minted here as Cognito would, on the service's clock."""
        sub = self.pick(who)
        if sub is None:
            return
        found = self.sign_in_of(sub)
        if found is None or not found["Enabled"]:
            return  # Cognito refuses a missing or disabled user
        email = next(a["Value"] for a in found["UserAttributes"] if a["Name"] == "email")
        session = self.sessions.get(sub)
        with self.lock:
            try:
                if found["UserStatus"] == "FORCE_CHANGE_PASSWORD":
                    invitation = self.invitation(sub)
                    if invitation is None:
                        return
                    started = self.cognito.initiate_auth(
                        ClientId=self.client_id,
                        AuthFlow="USER_PASSWORD_AUTH",
                        AuthParameters={"USERNAME": email, "PASSWORD": invitation},
                    )
                    result = self.cognito.respond_to_auth_challenge(
                        ClientId=self.client_id,
                        ChallengeName="NEW_PASSWORD_REQUIRED",
                        Session=started["Session"],
                        ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": PASSWORD},
                    )
                    session = self.sessions[sub] = Session(PASSWORD)
                elif session is not None:
                    result = self.cognito.initiate_auth(
                        ClientId=self.client_id,
                        AuthFlow="USER_PASSWORD_AUTH",
                        AuthParameters={"USERNAME": email, "PASSWORD": session.password},
                    )
                else:
                    return
            except (self.cognito.exceptions.NotAuthorizedException, self.cognito.exceptions.UserNotFoundException):
                return
            groups = self.cognito.admin_list_groups_for_user(UserPoolId=self.pool, Username=sub)["Groups"]
        session.access = result["AuthenticationResult"]["AccessToken"]
        issued = math.floor(self.clock.epoch())
        value = tokens.token(
            sub=sub,
            email=email,
            groups=[g["GroupName"] for g in groups] or None,
            iat=issued,
            auth_time=issued,
            exp=issued + 4 * 3600,
        )
        session.tokens.append(Token(value, issued))
        self.count("sign-in", "first" if len(session.tokens) == 1 else "again")

    def invitation(self, sub: str) -> str | None:
        outbox = self.world.outbox
        if not outbox.exists():
            return None
        sent = [json.loads(line) for line in outbox.read_text().splitlines()]
        found = [m["temporaryPassword"] for m in sent if m["userId"] == sub]
        return found[-1] if found else None

    @rule(who=st.integers(0, 99), name=st.sampled_from(NAMES), stale=st.booleans())
    def profile_edit(self, who: int, name: str, stale: bool) -> None:
        sub = self.pick(who, lambda sub: sub in self.sessions and bool(self.sessions[sub].tokens))
        if sub is None:
            return
        self.current = "profile edit, stale token" if stale else "profile edit"
        held = self.sessions[sub].tokens
        token = held[0] if stale else held[-1]
        record = self.records().get(sub)
        refused = record is None and sub not in self.console  # deleted: its trace refuses its tokens
        if record is not None:
            refused = not record.get("enabled", {}).get("BOOL", True) or token.issued_at <= self.revoked.get(sub, 0)
        before = self.snapshot()
        response = self.request("PUT", "/users/me", token.value, {"name": name})
        if refused:
            assert response.status_code in (401, 404, 503), (response.status_code, response.body)
        else:
            assert response.status_code != 401, (response.body, token.issued_at, self.revoked.get(sub))
        self.judge(response, before, {200, 201, 401, 403, 404, 409})
        self.learn(response)
        if response.status_code == 503:
            self.resync()

    @rule(
        who=st.integers(0, 99),
        email=st.none() | st.sampled_from(EMAILS),
        role=st.none() | st.sampled_from(("member", "admin")),
        enabled=st.none() | st.booleans(),
        name=st.none() | st.sampled_from(NAMES),
        stale_if_match=st.booleans(),
    )
    def admin_update(
        self,
        who: int,
        email: str | None,
        role: str | None,
        enabled: bool | None,
        name: str | None,
        stale_if_match: bool,
    ) -> None:
        sub = self.pick(who)
        if sub is None:
            return
        self.current = "admin update" + (", stale If-Match" if stale_if_match else "")
        body = {
            k: v for k, v in {"email": email, "role": role, "enabled": enabled, "name": name}.items() if v is not None
        }
        if not body:
            body = {"name": "Same"}
        headers = {}
        if stale_if_match and len(self.etags.get(sub, [])) > 1:
            headers["If-Match"] = self.etags[sub][0]
        response = self.act("PUT", f"/users/{sub}", ADMIN, body, {200, 404, 409, 412}, headers)
        if response is not None and response.status_code == 200 and (role or enabled is not None):
            user = response.json_body["user"]
            if user["enabled"]:
                # Item 6: a token Cognito issues now (after the 200) is accepted.
                self.sign_in_now(sub)

    def sign_in_now(self, sub: str) -> None:
        found = self.sign_in_of(sub)
        if found is None or not found["Enabled"]:
            return
        issued = math.floor(self.clock.epoch())
        fresh = tokens.token(sub=sub, iat=issued, auth_time=issued, exp=issued + 4 * 3600)
        response = self.request("GET", "/users/me", fresh)
        assert response.status_code == 200, (response.body, issued, self.revoked.get(sub))

    @rule(who=st.integers(0, 99))
    def delete(self, who: int) -> None:
        sub = self.pick(who)
        if sub is None:
            return
        self.current = "delete"
        self.act("DELETE", f"/users/{sub}", ADMIN, None, {200, 404, 409})

    @rule(
        who=st.integers(0, 99),
        call=st.sampled_from(("email", "name", "phone_number", "email_verified", "locale", "password", "sign out")),
        email=st.sampled_from(EMAILS),
    )
    def own_cognito_call(self, who: int, call: str, email: str) -> None:
        """What a member's own access token lets them ask of Cognito, around the API."""
        sub = self.pick(who, lambda sub: sub in self.sessions and self.sessions[sub].access is not None)
        if sub is None:
            return
        session = self.sessions[sub]
        value = {"email": email, "name": "Mallory", "phone_number": "+14155550199", "locale": "fr"}.get(call, "false")
        with self.lock:
            try:
                if call == "password":
                    self.cognito.change_password(
                        AccessToken=session.access, PreviousPassword=session.password, ProposedPassword=PASSWORD + "x"
                    )
                    session.password = PASSWORD + "x"
                elif call == "sign out":
                    self.cognito.global_sign_out(AccessToken=session.access)
                    session.access = None
                else:
                    self.cognito.update_user_attributes(
                        AccessToken=session.access, UserAttributes=[{"Name": call, "Value": value}]
                    )
            except self.cognito.exceptions.ClientError as refused:
                self.count(f"own Cognito call: {call}", refused.response["Error"]["Code"])  # Cognito's answer
                return
        self.count(f"own Cognito call: {call}", "accepted")

    @rule(
        who=st.tuples(st.integers(0, 99), st.integers(0, 99)),
        first=st.sampled_from(("invite", "email", "role", "enabled", "delete", "profile")),
        second=st.sampled_from(("invite", "email", "role", "enabled", "delete", "profile")),
        email=st.sampled_from(EMAILS),
    )
    def two_at_once(self, who: tuple[int, int], first: str, second: str, email: str) -> None:
        """Two requests released together (moto serves one AWS call at a time, in whatever order
        the threads reach it)."""
        subs = [self.pick(index) for index in who]
        if None in subs:
            return
        requests = [
            self.concurrent_request(kind, str(sub), email) for kind, sub in zip((first, second), subs, strict=True)
        ]
        before = self.snapshot()
        barrier = threading.Barrier(2)
        answers: list[Any] = [None, None]

        def send(index: int) -> None:
            barrier.wait()
            method, path, token, body = requests[index]
            answers[index] = self.request(method, path, token, body)

        threads = [threading.Thread(target=send, args=(index,)) for index in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for answer in answers:
            assert answer is not None and answer.status_code in {200, 201, 401, 403, 404, 409, 412}, answer.body
        self.count(f"at once: {first} + {second}", "+".join(str(a.status_code) for a in answers))
        if all(400 <= answer.status_code < 500 for answer in answers):
            assert self.snapshot() == before, [answer.body for answer in answers]
        self.resync()

    def concurrent_request(self, kind: str, sub: str, email: str) -> tuple[str, str, str, Any]:
        if kind == "invite":
            return ("POST", "/users", ADMIN, {"name": "Racer", "email": email})
        if kind == "delete":
            return ("DELETE", f"/users/{sub}", ADMIN, None)
        if kind == "profile" and self.sessions.get(sub) and self.sessions[sub].tokens:
            return ("PUT", "/users/me", self.sessions[sub].tokens[-1].value, {"name": "Raced"})
        body = {"email": {"email": email}, "role": {"role": "admin"}, "enabled": {"enabled": False}}.get(kind)
        return ("PUT", f"/users/{sub}", ADMIN, body or {"role": "member"})

    @rule(
        who=st.integers(0, 99),
        which=st.integers(0, 99),
        action=st.sampled_from(("invite", "update", "delete")),
        service=st.sampled_from(("dynamodb", "cognito-idp")),
        kind=st.sampled_from(FAULTS),
        email=st.sampled_from(EMAILS),
        role=st.sampled_from(("member", "admin")),
        repair=st.booleans(),
    )
    def with_a_fault(
        self, who: int, which: int, action: str, service: str, kind: str, email: str, role: str, repair: bool
    ) -> None:
        """One request with a fault at one AWS operation; after a 503, its keyed retry or the
        operator's repair."""
        operations = DYNAMODB_OPERATIONS if service == "dynamodb" else COGNITO_OPERATIONS
        operation = operations[which % len(operations)]
        self.current = f"{action} with {kind} ({service})"
        sub = self.pick(who)
        if sub is None and action != "invite":
            return
        body: dict[str, Any] | None
        if action == "invite":
            method, path, body = "POST", "/users", {"name": "Faulted", "email": email, "role": role}
        elif action == "delete":
            method, path, body = "DELETE", f"/users/{sub}", None
        else:
            bodies: list[dict[str, Any]] = [
                {"email": email},
                {"role": role},
                {"enabled": False},
                {"enabled": True},
                {"name": "F"},
            ]
            body = bodies[which % len(bodies)]
            method, path = "PUT", f"/users/{sub}"
        code = "InternalServerError" if service == "dynamodb" else "InternalErrorException"
        fault: tuple[Fault, int | None] = {
            "error on every attempt": (aws_error(500, code), None),
            "error once": (aws_error(500, code), 1),
            "slow success once": (answered_late, 1),
            "slow success on every attempt": (answered_late, None),
        }[kind]
        self.act(method, path, ADMIN, body, {200, 201, 404, 409, 412}, {}, (service, operation, *fault), repair)

    def act(
        self,
        method: str,
        path: str,
        token: str,
        body: Any,
        allowed: set[int],
        headers: dict[str, str] | None = None,
        fault: tuple[str, str, Any, int | None] | None = None,
        repair: bool = False,
    ) -> Any:
        """One request (with an Idempotency-Key, so a 503 can be completed), judged."""
        headers = {**(headers or {}), "Idempotency-Key": f"model-{uuid.uuid4()}"}
        before = self.snapshot()
        if fault is not None:
            service, operation, injected, times = fault
            self.app_faults[service].inject(operation, injected, times)
        try:
            response = self.request(method, path, token, body, **headers)
        finally:
            for faults in self.app_faults.values():
                faults.clear()
        self.judge(response, before, allowed)
        if response.status_code == 503:
            if repair:
                self.count(self.current, "503, then make drift FIX=1")
                self.repair()
                return None
            self.count(self.current, "503, then its keyed retry")
            response = self.complete(method, path, token, body, headers, before)
            self.judge(response, before, allowed | {409})
            self.resync()
        self.learn(response)
        return response

    # --- after every step -------------------------------------------------------------------------

    @invariant()
    def one_truth(self) -> None:
        """Record and sign-in agree; the counter equals the records (`make drift`'s check)."""
        with self.lock:
            report = self.drift.check()
        awaiting = {s.sub for s in report.sign_ins_without_records}
        assert awaiting <= self.console, list(report.lines())
        report.sign_ins_without_records = []
        assert report.clean, list(report.lines())

    @invariant()
    def time_moves_with_the_version(self) -> None:
        for sub, item in self.records().items():
            version, updated_at = int(item["version"]["N"]), item["updatedAt"]["S"]
            seen = self.seen.get(sub)
            if seen is not None and version > seen[0]:
                assert updated_at > seen[1], (sub, seen, version, updated_at)
            if seen is not None and version == seen[0]:
                assert updated_at == seen[1], (sub, seen, updated_at)
            self.seen[sub] = (version, updated_at)


def model_settings() -> settings:
    if FUZZ:
        return settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=(Phase.generate, Phase.shrink),
        )
    return settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
    )


def test_one_user_one_truth_over_random_sequences(api: Api, emulator: Emulator, outbox: Path) -> None:
    UserModel.world = World(api, emulator, outbox)
    started = time.monotonic()
    run_state_machine_as_test(UserModel, settings=model_settings())
    if FUZZ:
        print(f"\nmodel: {EXAMPLES} sequences of up to {STEPS} steps in {time.monotonic() - started:.0f} s")
        for (step, outcome), times in sorted(SEEN.items()):
            print(f"  {times:6d}  {step}: {outcome}")


def test_tokens_valid_after_is_what_the_model_expects() -> None:
    """The model's oracle for revocation reads the record's tokensValidAfter; this pins its meaning."""
    assert tokens_valid_after("2030-01-01T00:00:00.950Z") == tokens_valid_after("2030-01-01T00:00:01.000Z")
