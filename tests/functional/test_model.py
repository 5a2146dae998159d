"""The invariant of docs/DESIGN.md ("One user, one truth") as a property: Hypothesis drives random
sequences of what admins, members, Cognito's own API and failing AWS calls do to users, through the
real app (Chalice's test client, the real adapters, moto in this process), and after every step
checks what users get against the invariant:

- for every user, record and sign-in agree on existence, email, enabled and group, and the
  enabled-admin counter equals the records: read by the model itself (`disagreements`), and by
  `make drift`'s own check (ops/drift.py), its second opinion, which must find exactly the
  same. Tolerated, as docs/DESIGN.md says: sign-ins made in the console awaiting their record,
  and the addresses members moved their sign-ins to around the API (`diverted`), until the API
  or `make drift FIX=1` sets them back; every sequence ends with that repair and nothing left;
- a 4xx or a 409 changed nothing (table and pool compared before and after);
- a 503 left at most a state that a retry with the same Idempotency-Key, or `make drift FIX=1`,
  completes (the model does one or the other, then checks);
- what a 2xx answered is what is stored; `updatedAt` grows with `version`;
- a token issued before a revoking change is refused, one issued after it (after the 200) accepted.

Rules, one per operation (a new flow is a new rule; the check after every step is `one_truth`):
invite (POST /users), a sign-in made in the console, a user's sign-in (first with the
invitation's temporary password) and its ID token, a member's profile edit with a fresh or a stale
token, an admin's change of email, role, enabled and name (also no-ops and a stale If-Match),
delete, an admin's sign-in action (invitation again, password reset, sign-out; also sent twice
with one key), a user's email change through the API (request, right or wrong code, fresh or stale
token, expiry), a member's own Cognito calls with their access token (UpdateUserAttributes of any
attribute, ChangePassword, GlobalSignOut), a member's own email change around the API (held, or
confirmed with the mailed code), two of these at once, an API write (invite, update, delete,
sign-in action, email change) with a fault at its n-th AWS request below botocore's retry handler
(an error or a slow success, applied with its answer lost, once or on every attempt, or once with
botocore's retry quota spent so nothing is resent), and the operator's `make drift FIX=1`.
After every step, also: every address is reserved by its holder.

ID tokens are minted by the test as Cognito would issue them at that moment (the sign-in's email
and groups, `iat` in whole seconds) on the service's clock, which the test drives: the wait before
a revoking change reaches Cognito (models.tokens_valid_from) moves it on instead of sleeping.

`make test` runs the `ci` profile (a few derandomised sequences, the same every run); `make fuzz`
the `fuzz` profile (EXAMPLES= random sequences, STEPS=, over JOBS= processes). A failing sequence
is shrunk and printed as the steps that reproduce it.
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
import pytest
from botocore.awsrequest import AWSResponse
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from moto.core.models import botocore_stubber

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.adapters.avatars import AvatarStore
from chalicelib.adapters.dynamodb import ADMIN_COUNT, ADMIN_COUNT_KEY
from chalicelib.adapters.local_outbox import OutboxCognitoIdentityProvider
from chalicelib.adapters.table_schema import IDEMPOTENCY_KEY_PREFIX
from chalicelib.domain.access import ADMIN_GROUP
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.models import email_key, timestamp, tokens_valid_after
from chalicelib.web.tokens import TokenVerifier
from devstack.cognito_emulation import mailed_code
from ops.drift import Drift
from tests.functional.conftest import BUCKET, TABLE, Api, Emulator, _empty
from tests.support import tokens
from tests.support.dynamodb_faults import ANY, Fault, Faults, answered_late, aws_error, set_retry_quota

ADMIN = tokens.ADMIN  # the operator: an admin by its token's group, with no record of its own
FUZZ = os.environ.get("MODEL_FUZZ") == "1"  # make fuzz: random sequences, many more of them
# `make test` (the `ci` profile): a few derandomised sequences, the same every run, ~10 s.
# `make fuzz` (the `fuzz` profile): EXAMPLES= random sequences of up to STEPS= steps.
EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "500" if FUZZ else "6"))
STEPS = int(os.environ.get("MODEL_STEPS", "20"))
_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
    "phases": (Phase.generate, Phase.shrink),
    "stateful_step_count": STEPS,
    "print_blob": True,
}
settings.register_profile("ci", max_examples=EXAMPLES, derandomize=True, **_COMMON)
settings.register_profile("fuzz", max_examples=EXAMPLES, **_COMMON)
EMAILS = ("ann@m.test", "bob@m.test", "cy@m.test", "Ann@m.test", "dee@m.test")
PASSWORD = "Model-passw0rd-1!"
NAMES = ("Ann", "Bob", "Cy")
CONCURRENT = ("invite", "email", "role", "enabled", "delete", "profile", "own email")
FAULTS = (
    "error on every attempt",
    "error once",
    "slow success once",
    "slow success on every attempt",
    "slow success, retries spent",  # after a long outage botocore's retry quota is empty: no resend
)
SIGN_IN_ACTIONS = ("invitation", "password-reset", "sign-out")
WRONG_CODE_COUNT = ("emailCodeAttempts", "emailCodeTried")
EMAIL_STEPS = ("request", "verify", "wrong code", "expire")


# What the sequences did (`make fuzz` prints it): (step, status or outcome) -> how often.
SEEN: Counter[tuple[str, str]] = Counter()


class NthCall:
    """A fault at the n-th AWS request one API request sends (DynamoDB's and Cognito's counted
    together, retries included): once, or on every later attempt of that operation too (the
    service stays down for it). Registered for every operation (`ANY`) on both of the app's
    clients, so a fault lands at a step the request really takes, whatever its path."""

    def __init__(self, n: int, fault: Callable[[bool], Fault], every: bool, resent: bool = True) -> None:
        self.n, self.fault, self.every, self.resent = n, fault, every, resent
        self.sent = 0
        self.hit: str | None = None

    def __call__(self, request: Any, **kwargs: Any) -> AWSResponse:
        operation = request.headers["X-Amz-Target"].decode().split(".")[-1]
        self.sent += 1
        if self.sent == self.n or (self.every and operation == self.hit):
            self.hit = operation
            return self.fault("cognito" in request.url)(request, **kwargs)
        return botocore_stubber(request=request, **kwargs)  # type: ignore[no-any-return]


def nth_call(call: int, kind: str) -> NthCall:
    """The fault of FAULTS named `kind` at a request's `call`-th AWS request."""

    def error(cognito: bool) -> Fault:
        return aws_error(500, "InternalErrorException" if cognito else "InternalServerError")

    return {
        "error on every attempt": NthCall(call, error, every=True),
        "error once": NthCall(call, error, every=False),
        "slow success once": NthCall(call, lambda _: answered_late, every=False),
        "slow success on every attempt": NthCall(call, lambda _: answered_late, every=True),
        "slow success, retries spent": NthCall(call, lambda _: answered_late, every=False, resent=False),
    }[kind]


class ModelClock:
    """The service's clock: 10 minutes behind the real one (tokens stamped with it stay valid and
    are never "from the future"), one millisecond on per reading, and `sleep` moves it on."""

    def __init__(self) -> None:
        self._now = datetime.now(UTC) - timedelta(minutes=10)
        self._lock = threading.Lock()

    def iso(self) -> str:
        with self._lock:
            self._now += timedelta(milliseconds=1)
            return timestamp(self._now)

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
        # botocore's retry quota lives as long as the client: every sequence starts with a full one,
        # so a sequence does the same whatever ran before it (and replays when shrunk).
        self.retries(spent=False)
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
        bootstrap.override(
            verify=TokenVerifier(tokens.ISSUER, tokens.CLIENT_ID, lambda: tokens.jwks()).verify,
            identities=identities,
            mailer=identities,
            avatars=AvatarStore(BUCKET),
            cursors=CursorCodec(b"model-cursor-secret-of-32-bytes!"),
            clock=self.clock.iso,
            sleep=self.clock.sleep,
        )
        self.sessions: dict[str, Session] = {}
        self.console: set[str] = set()  # sign-ins made outside the API, awaiting their record
        self.seen: dict[str, tuple[int, str]] = {}  # user id -> (version, updatedAt) last seen
        self.etags: dict[str, list[str]] = {}  # user id -> every ETag it had
        self.revoked: dict[str, int] = {}  # user id -> tokensValidAfter of its last revoking change
        self.current = ""
        self.known: list[str] = []  # every user id seen, in the order seen
        # Users whose sign-in address their member changed around the API (UpdateUserAttributes,
        # then VerifyUserAttribute with the mailed code): sub -> the address the sign-in now has.
        # The one split the API cannot refuse (Cognito keeps a required attribute writable); it
        # lasts until the API sets the sign-in's email again or `make drift FIX=1` repairs it.
        self.diverted: dict[str, str] = {}

    def teardown(self) -> None:
        try:
            if self.diverted:
                # The end of every sequence: the operator's repair leaves no disagreement at all.
                self.repair()
                with self.lock:
                    left = self.drift.check()
                left.sign_ins_without_records = [s for s in left.sign_ins_without_records if s.sub in self.console]
                assert left.clean, list(left.lines())
        finally:
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
        # A wrong email code is a 400 that counts against the attempt limit: the one change a
        # refusal makes by design (and nothing a client sees).
        kept = [{k: v for k, v in item.items() if k not in WRONG_CODE_COUNT} for item in kept]
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

    def retries(self, spent: bool) -> None:
        for faults in self.app_faults.values():
            set_retry_quota(faults.client, 0 if spent else None)

    def judge(self, response: Any, before: tuple[Any, ...], allowed: set[int]) -> None:
        """What every answer owes: a status the route may give, nothing changed by a refusal, and a
        2xx that answers what is stored."""
        status = response.status_code
        SEEN[(self.current, str(status))] += 1
        assert status in allowed | {503}, (status, response.body)
        if 400 <= status < 500:
            self.unchanged(before, f"a {status} changed something: {response.body!r}")
        if status < 300 and isinstance(response.json_body, dict):
            user = response.json_body.get("user")
            if user is not None:
                stored = self.request("GET", f"/users/{user['userId']}", ADMIN)
                if stored.status_code == 200:
                    assert stored.json_body["version"] >= user["version"]
                    if stored.json_body["version"] == user["version"]:
                        assert stored.json_body == user
                self.etags.setdefault(user["userId"], []).append(response.headers["ETag"])

    def unchanged(self, before: tuple[Any, ...], message: str) -> None:
        """Table and pool as `before`, but for one change DESIGN.md's invariant 3 allows: a refused
        request that had taken an address gives the sign-in its record's address back, so one its
        member had diverted ends on the record's (what `make drift FIX=1` does)."""
        after = self.snapshot()
        if after == before:
            return
        records = {json.loads(item)["userId"]["S"]: json.loads(item) for item in before[0]}
        set_back = [
            (
                *old[:3],
                tuple(sorted((k, records[old[0]]["email"]["S"] if k == "email" else v) for k, v in old[3])),
                old[4],
            )
            if old[0] in self.diverted and old[0] in records
            else old
            for old in before[1]
        ]
        assert after[0] == before[0] and after[1] == set_back, message
        SEEN[(self.current, "refused, a diverted sign-in set back to its record")] += 1

    def complete(self, method: str, path: str, token: str, body: Any, headers: dict[str, str], before: Any) -> Any:
        """After a 503: the same request with its key, or (when the data says so) the operator's
        drift repair. Either leaves the invariant whole."""
        before_retry = self.snapshot()
        retry = self.request(method, path, token, body, **headers)
        if retry.status_code == 409 and "in progress" in retry.body.decode():
            # The key stayed locked: DynamoDB was what failed, so it could not be released. It unlocks
            # after 30 s; the operator's repair finishes the job meanwhile. The 409 itself changed
            # nothing; the repair may (it deletes a never-used console sign-in, say), and is judged
            # by its own check, not as the 409's doing.
            SEEN[(self.current, "409 in progress")] += 1
            self.unchanged(before_retry, f"a 409 changed something: {retry.body!r}")
            self.repair()
            return retry
        assert retry.status_code != 503, retry.body
        if 400 <= retry.status_code < 500:
            # Refused in the end: the whole request changed nothing, but for one residue the retry
            # cannot tell from a sign-in made in the console: the never-invited sign-in of a create
            # whose take-back failed too (docs/DESIGN.md, invariant 4), which the repair removes.
            after = self.snapshot()
            if after != before and method == "POST" and path == "/users":
                assert after[0] == before[0], f"a refused retry left changes: {retry.body!r}"
                left = set(after[1]) - set(before[1])
                assert set(before[1]) <= set(after[1]) and all(
                    status == "FORCE_CHANGE_PASSWORD"
                    and not admin
                    and email_key(dict(attrs)["email"]) == email_key(body["email"])
                    for _, _, status, attrs, admin in left
                ), (left, retry.body)
                self.count(self.current, "refused retry, its failed take-back's sign-in repaired")
                self.repair()
                after = self.snapshot()
            if after != before:
                self.unchanged(before, f"a refused retry left changes: {retry.body!r}")
        return retry

    def repair(self) -> None:
        """`make drift FIX=1`: the sign-ins follow their records."""
        with self.lock:
            report = self.drift.check()
            self.drift.fix(report)
            after = self.drift.check()
        self.resync()
        left = after.findings()
        self.diverted = {sub: email for sub, email in self.diverted.items() if (sub, "email") in left}
        assert not {kind for _, kind in left} - {"no record"}, list(after.lines())

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
                    if result.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
                        # After an admin's reset (RESET_REQUIRED): the emulator checks no code, so
                        # the user sets their new password through the challenge.
                        result = self.cognito.respond_to_auth_challenge(
                            ClientId=self.client_id,
                            ChallengeName="NEW_PASSWORD_REQUIRED",
                            Session=result["Session"],
                            ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": session.password},
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
        found = [m["temporaryPassword"] for m in sent if m["userId"] == sub and m["kind"] == "invitation"]
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

    @rule(who=st.integers(0, 99), email=st.sampled_from(EMAILS), verify=st.booleans())
    def own_email_change(self, who: int, email: str, verify: bool) -> None:
        """A member changes their sign-in's address with their own access token (Cognito lets the
        app client write `email`: the pool requires it), and, when `verify`, confirms it with the
        code mailed to the new address; until then the pool holds the change."""
        sub = self.pick(who, lambda sub: sub in self.sessions and self.sessions[sub].access is not None)
        if sub is None:
            return
        self.current = "own email change" + (", verified" if verify else "")
        self.count(self.current, self.change_own_email(sub, email, verify))

    def change_own_email(self, sub: str, email: str, verify: bool) -> str:
        """UpdateUserAttributes (and VerifyUserAttribute); Cognito's answer."""
        access = self.sessions[sub].access
        with self.lock:
            try:
                self.cognito.update_user_attributes(
                    AccessToken=access, UserAttributes=[{"Name": "email", "Value": email}]
                )
                code = mailed_code(self.pool, sub)
                if not verify or code is None:
                    return "held" if code is not None else "accepted"
                self.cognito.verify_user_attribute(AccessToken=access, AttributeName="email", Code=code)
            except self.cognito.exceptions.ClientError as refused:
                return str(refused.response["Error"]["Code"])
            # The code confirms the change the pool held, which is not `email` when `email` was the
            # address the sign-in already had (a write of it holds nothing new: an earlier held
            # change stays, and its code is the one mailed).
            sign_in = self.sign_in_of(sub)
            assert sign_in is not None
            now = next(a["Value"] for a in sign_in["UserAttributes"] if a["Name"] == "email")
            record = self.records().get(sub)
            if record is not None and email_key(record["email"]["S"]) != email_key(now):
                self.diverted[sub] = now
            elif record is not None:
                self.diverted.pop(sub, None)
        return "verified"

    @rule()
    def operator_repair(self) -> None:
        """`make drift FIX=1` at any moment: it repairs whatever it finds, and finds nothing else
        than what the model tolerates."""
        self.current = "make drift FIX=1"
        self.count(self.current, f"{len(self.diverted)} diverted")
        self.repair()

    @rule(
        who=st.tuples(st.integers(0, 99), st.integers(0, 99)),
        first=st.sampled_from(CONCURRENT),
        second=st.sampled_from(CONCURRENT),
        email=st.sampled_from(EMAILS),
    )
    def two_at_once(self, who: tuple[int, int], first: str, second: str, email: str) -> None:
        """Two requests released together (moto serves one AWS call at a time, in whatever order
        the threads reach it)."""
        subs = [self.pick(index) for index in who]
        if None in subs:
            return
        kinds = (first, second)
        requests = [self.concurrent_request(kind, str(sub), email) for kind, sub in zip(kinds, subs, strict=True)]
        before = self.snapshot()
        barrier = threading.Barrier(2)
        answers: list[Any] = [None, None]
        own: list[str | None] = [None, None]

        def send(index: int) -> None:
            barrier.wait()
            if kinds[index] == "own email" and self.sessions.get(str(subs[index]), Session("")).access is not None:
                # The member's own change, verified, racing the other request.
                own[index] = self.change_own_email(str(subs[index]), email, verify=True)
                answers[index] = own[index]
                return
            method, path, token, body = requests[index]
            answers[index] = self.request(method, path, token, body)

        threads = [threading.Thread(target=send, args=(index,)) for index in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        statuses = []
        for answer in answers:
            if isinstance(answer, str):
                statuses.append(answer)
                continue
            assert answer is not None and answer.status_code in {200, 201, 401, 403, 404, 409, 412}, answer.body
            statuses.append(str(answer.status_code))
        self.count(f"at once: {first} + {second}", "+".join(statuses))
        if all(status.isdigit() and 400 <= int(status) < 500 for status in statuses):
            assert self.snapshot() == before, [answer.body for answer in answers]
        self.resync()
        self.reconsider_diverted()

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
        call=st.integers(1, 6),
        kind=st.sampled_from(FAULTS),
        email=st.sampled_from(EMAILS),
        role=st.sampled_from(("member", "admin")),
        repair=st.booleans(),
    )
    def with_a_fault(
        self, who: int, which: int, action: str, call: int, kind: str, email: str, role: str, repair: bool
    ) -> None:
        """One request with a fault at its `call`-th AWS request (NthCall); after a 503, its keyed
        retry or the operator's repair."""
        self.current = f"{action} with {kind}"
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
                {"email": email, "role": role, "enabled": which % 2 == 0},
            ]
            body = bodies[which % len(bodies)]
            method, path = "PUT", f"/users/{sub}"
        fault = nth_call(call, kind)
        self.act(method, path, ADMIN, body, {200, 201, 404, 409, 412}, {}, fault, repair)
        self.count("fault landed at", fault.hit or "(the request sent fewer)")

    def act(
        self,
        method: str,
        path: str,
        token: str,
        body: Any,
        allowed: set[int],
        headers: dict[str, str] | None = None,
        fault: NthCall | None = None,
        repair: bool = False,
    ) -> Any:
        """One request (with an Idempotency-Key, so a 503 can be completed), judged."""
        # A fresh key, unless the step brings its own (to send it again itself).
        headers = {"Idempotency-Key": f"model-{uuid.uuid4()}", **(headers or {})}
        before = self.snapshot()
        if fault is not None:
            self.retries(spent=not fault.resent)
            for faults in self.app_faults.values():
                faults.inject(ANY, fault)
        try:
            response = self.request(method, path, token, body, **headers)
        finally:
            for faults in self.app_faults.values():
                faults.clear()
            self.retries(spent=False)
        self.judge(response, before, allowed)
        if response.status_code == 503:
            if repair:
                self.count(self.current, "503, then make drift FIX=1")
                self.repair()
                return None
            self.count(self.current, "503, then its keyed retry")
            response = self.complete(method, path, token, body, headers, before)
            locked = response.status_code == 409 and "in progress" in response.body.decode()
            # A locked key's 409 was judged before the repair that followed it (`complete`).
            self.judge(response, self.snapshot() if locked else before, allowed | {409})
            self.resync()
        self.learn(response)
        return response

    # --- sign-in actions and the user's own email change (issue 21) ------------------------------

    @rule(who=st.integers(0, 99), action=st.sampled_from(SIGN_IN_ACTIONS), keyed_twice=st.booleans())
    def sign_in_action(self, who: int, action: str, keyed_twice: bool) -> None:
        """An admin resends the invitation, resets the password or signs the user out; with the
        same Idempotency-Key twice, the second is the first's answer and acts no more."""
        sub = self.pick(who)
        if sub is None:
            return
        self.current = action
        headers = {"Idempotency-Key": f"model-{uuid.uuid4()}"}
        before_version = self.version_of(sub)
        response = self.act("POST", f"/users/{sub}/{action}", ADMIN, None, {200, 404, 409}, headers)
        if response is None or response.status_code != 200:
            return
        assert response.json_body["user"]["version"] == before_version + 1, (before_version, response.body)
        if keyed_twice:
            again = self.request("POST", f"/users/{sub}/{action}", ADMIN, None, **headers)
            assert again.status_code == 200 and again.json_body == response.json_body, again.body
            assert self.version_of(sub) == before_version + 1
        if action != "invitation" and response.json_body["user"]["enabled"]:
            self.sign_in_now(sub)  # a token issued after the answer is accepted

    def version_of(self, sub: str) -> int:
        record = self.records().get(sub)
        return int(record["version"]["N"]) if record is not None else 0

    @rule(
        who=st.integers(0, 99),
        step=st.sampled_from(EMAIL_STEPS),
        email=st.sampled_from(EMAILS),
        stale=st.booleans(),
    )
    def email_change_through_the_api(self, who: int, step: str, email: str, stale: bool) -> None:
        """A user asks for another address, confirms it with the mailed code or a wrong one (with
        a fresh or a stale token), or lets it expire."""
        sub = self.pick(who, lambda sub: sub in self.sessions and bool(self.sessions[sub].tokens))
        if sub is None:
            return
        self.current = f"own email: {step}" + (", stale token" if stale else "")
        held = self.sessions[sub].tokens
        token = (held[0] if stale else held[-1]).value
        if step == "expire":
            self.expire_pending(sub)
            return
        if step == "request":
            self.act("PUT", "/users/me", token, {"email": email}, {200, 400, 401, 404, 409})
            return
        code = self.email_code(sub)
        if code is None:
            return
        if step == "wrong code":
            code = f"{(int(code) + 1) % 1_000_000:06d}"
        response = self.act("POST", "/users/me/email-verification", token, {"code": code}, {200, 400, 401, 404, 409})
        if response is not None and response.status_code == 200:
            assert "pendingEmail" not in response.json_body["user"]
            self.sign_in_now(sub)  # a token issued after the answer (with the new address) is accepted

    @rule(
        who=st.integers(0, 99),
        step=st.sampled_from(("request", "verify")),
        call=st.integers(1, 6),
        kind=st.sampled_from(FAULTS),
        email=st.sampled_from(EMAILS),
        repair=st.booleans(),
    )
    def email_change_with_a_fault(self, who: int, step: str, call: int, kind: str, email: str, repair: bool) -> None:
        """A user's email change through the API (its request or its code) with a fault at its
        `call`-th AWS request; after a 503, its keyed retry or the operator's repair."""
        sub = self.pick(who, lambda sub: sub in self.sessions and bool(self.sessions[sub].tokens))
        if sub is None:
            return
        self.current = f"own email: {step} with {kind}"
        token = self.sessions[sub].tokens[-1].value
        if step == "request":
            method, path, body = "PUT", "/users/me", {"email": email}
        else:
            code = self.email_code(sub)
            if code is None:
                return
            method, path, body = "POST", "/users/me/email-verification", {"code": code}
        fault = nth_call(call, kind)
        self.act(method, path, token, body, {200, 400, 401, 404, 409}, {}, fault, repair)
        self.count("fault landed at", fault.hit or "(the request sent fewer)")

    @rule(
        who=st.integers(0, 99),
        action=st.sampled_from(SIGN_IN_ACTIONS),
        call=st.integers(1, 6),
        kind=st.sampled_from(FAULTS),
        repair=st.booleans(),
    )
    def sign_in_action_with_a_fault(self, who: int, action: str, call: int, kind: str, repair: bool) -> None:
        """An admin's sign-in action with a fault at its `call`-th AWS request."""
        sub = self.pick(who)
        if sub is None:
            return
        self.current = f"{action} with {kind}"
        fault = nth_call(call, kind)
        self.act("POST", f"/users/{sub}/{action}", ADMIN, None, {200, 404, 409}, {}, fault, repair)
        self.count("fault landed at", fault.hit or "(the request sent fewer)")

    def email_code(self, sub: str) -> str | None:
        outbox = self.world.outbox
        if not outbox.exists():
            return None
        sent = [json.loads(line) for line in outbox.read_text().splitlines()]
        found = [m["code"] for m in sent if m["kind"] == "emailVerification" and m["userId"] == sub]
        return str(found[-1]) if found else None

    def expire_pending(self, sub: str) -> None:
        """Time passes beyond a pending change's validity (record and reservation say so)."""
        record = self.records().get(sub)
        if record is None or "pendingEmailKey" not in record:
            return
        past = {"S": "2020-01-01T00:00:00.000Z"}
        key = {"userId": {"S": f"EMAIL#{record['pendingEmailKey']['S']}"}}
        with self.lock:
            self.ddb.update_item(
                TableName=TABLE,
                Key={"userId": {"S": sub}},
                UpdateExpression="SET pendingUntil = :p",
                ExpressionAttributeValues={":p": past},
            )
            reservation = self.ddb.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")
            if (
                reservation is not None
                and reservation.get("ownerId", {}).get("S") == sub
                and "pendingUntil" in reservation
            ):
                self.ddb.update_item(
                    TableName=TABLE,
                    Key=key,
                    UpdateExpression="SET pendingUntil = :p",
                    ExpressionAttributeValues={":p": past},
                )
        self.count("own email: expire", "expired")

    @invariant()
    def addresses_are_reserved_by_their_holders(self) -> None:
        """Every record's email is reserved for it, and its pending one while pending; every
        reservation belongs to a record that holds or awaits that address. So a pending change
        never splits record, reservation and sign-in (which agree with the record: one_truth)."""
        with self.lock:
            items = self.ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        reservations = {i["userId"]["S"][len("EMAIL#") :]: i for i in items if i["userId"]["S"].startswith("EMAIL#")}
        users = {i["userId"]["S"]: i for i in items if "listingId" in i}
        now = self.clock.iso()
        for sub, item in users.items():
            assert reservations.get(item["emailKey"]["S"], {}).get("ownerId", {}).get("S") == sub, (sub, item)
            pending = item.get("pendingEmailKey", {}).get("S")
            if pending is not None and item["pendingUntil"]["S"] > now:
                assert reservations[pending]["ownerId"]["S"] == sub, (sub, item)
        for key, reservation in reservations.items():
            owner = users.get(reservation["ownerId"]["S"])
            assert owner is not None, (key, reservation)
            assert key in (owner["emailKey"]["S"], owner.get("pendingEmailKey", {}).get("S")), (key, owner)

    # --- after every step -------------------------------------------------------------------------

    def reconsider_diverted(self) -> None:
        """A concurrent step may have set a diverted sign-in's email again (or diverted one): ask
        the pool what the address is now."""
        records = self.records()
        for sub in list(self.sessions):
            found, record = self.sign_in_of(sub), records.get(sub)
            if found is None or record is None:
                self.diverted.pop(sub, None)
                continue
            email = next(a["Value"] for a in found["UserAttributes"] if a["Name"] == "email")
            if email_key(email) != email_key(record["email"]["S"]):
                self.diverted[sub] = email
            else:
                self.diverted.pop(sub, None)

    def disagreements(self) -> set[tuple[str, str]]:
        """The model's own reading of the invariant, from the table and the pool as they are: each
        (user id, kind) where record and sign-in disagree, as ops/drift.py's Report.findings names
        them."""
        with self.lock:
            items = self.ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
            users = self.cognito.list_users(UserPoolId=self.pool, Limit=60)["Users"]
            admins = {
                u["Username"]
                for u in self.cognito.list_users_in_group(UserPoolId=self.pool, GroupName=ADMIN_GROUP, Limit=60)[
                    "Users"
                ]
            }
        records = {item["userId"]["S"]: item for item in items if "listingId" in item}
        traces = {item["userId"]["S"] for item in items if "deletedAt" in item and "listingId" not in item}
        sign_ins = {u["Username"]: u for u in users}
        found: set[tuple[str, str]] = set()
        for sub, user in sign_ins.items():
            if sub not in records:
                found.add((sub, "sign-in of a deleted user" if sub in traces else "no record"))
                continue
            record = records[sub]
            email = next(a["Value"] for a in user["Attributes"] if a["Name"] == "email")
            if email_key(email) != email_key(record["email"]["S"]):
                found.add((sub, "email"))
            if (sub in admins) != (record["role"]["S"] == "admin"):
                found.add((sub, "group"))
            if user["Enabled"] != record["enabled"]["BOOL"]:
                found.add((sub, "enabled"))
        found |= {(sub, "no sign-in") for sub in records if sub not in sign_ins}
        counted = sum(r["role"]["S"] == "admin" and r["enabled"]["BOOL"] for r in records.values())
        stored: dict[str, Any] = next((i for i in items if i["userId"] == ADMIN_COUNT_KEY["userId"]), {})
        if int(stored.get(ADMIN_COUNT, {}).get("N", "0")) != counted:
            found.add(("", "counter"))
        return found

    # --- after every step -------------------------------------------------------------------------

    @invariant()
    def one_truth(self) -> None:
        """The invariant of docs/DESIGN.md, read by the model itself and by `make drift`'s own check
        (its second opinion: both must find the same). Tolerated: sign-ins made in the console that
        await their first PUT /users/me, and the addresses members changed around the API (until
        the API or the operator's repair sets them back)."""
        found = self.disagreements()
        with self.lock:
            report = self.drift.check()
        assert report.findings() == found, (sorted(found), list(report.lines()))
        tolerated = {(sub, "no record") for sub in self.console}
        tolerated |= {(sub, "email") for sub in self.diverted}
        assert found <= tolerated, (sorted(found - tolerated), list(report.lines()))
        # A diverted sign-in the API has set back since is no longer tolerated; one still diverted
        # holds the address its member verified, nothing else.
        self.diverted = {sub: email for sub, email in self.diverted.items() if (sub, "email") in found}
        for sub, email in self.diverted.items():
            found_sign_in = self.sign_in_of(sub)
            assert found_sign_in is not None
            now = next(a["Value"] for a in found_sign_in["UserAttributes"] if a["Name"] == "email")
            assert now == email, (sub, now, email)

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


# `make fuzz` spreads its sequences over SHARDS processes (pytest-xdist), each its own random run.
SHARDS = int(os.environ.get("MODEL_SHARDS", "1"))


@pytest.mark.parametrize("shard", range(SHARDS))
def test_one_user_one_truth_over_random_sequences(api: Api, emulator: Emulator, outbox: Path, shard: int) -> None:
    UserModel.world = World(api, emulator, outbox)
    profile = settings.get_profile("fuzz" if FUZZ else "ci")
    started = time.monotonic()
    run_state_machine_as_test(UserModel, settings=profile)
    report_dir = os.environ.get("MODEL_REPORT_DIR")
    if report_dir:
        # What the run tried (make fuzz prints it: xdist keeps a worker's output to itself).
        took = time.monotonic() - started
        lines = [f"model (shard {shard}): {profile.max_examples} sequences of up to {STEPS} steps in {took:.0f} s"]
        lines += [f"  {times:6d}  {step}: {outcome}" for (step, outcome), times in sorted(SEEN.items())]
        Path(report_dir).mkdir(parents=True, exist_ok=True)
        (Path(report_dir) / f"shard-{shard}.txt").write_text("\n".join(lines) + "\n")


def test_tokens_valid_after_is_what_the_model_expects() -> None:
    """The model's oracle for revocation reads the record's tokensValidAfter; this pins its meaning."""
    assert tokens_valid_after("2030-01-01T00:00:00.950Z") == tokens_valid_after("2030-01-01T00:00:01.000Z")


def test_a_locked_keys_409_is_judged_apart_from_the_repair_after_it(api: Api, emulator: Emulator, outbox: Path) -> None:
    """Found by `make fuzz` (docs/TESTING.md): an invite whose claim of its key was applied but
    never answered (503, the key stays locked), its keyed retry (409 "in progress"), then the
    operator's repair, which deletes the never-used console sign-in of the same address. The
    model blamed the repair's change on the 409; the 409 is now checked before the repair."""
    UserModel.world = World(api, emulator, outbox)
    state = UserModel()
    try:
        state.console_sign_in(admin=False, email="ann@m.test", used=False)
        state.delete(who=0)  # 404: the console sign-in has no record yet
        state.with_a_fault(
            action="invite",
            call=1,
            email="ann@m.test",
            kind="slow success on every attempt",
            repair=False,
            role="member",
            which=0,
            who=0,
        )
        state.one_truth()
        assert SEEN[("invite with slow success on every attempt", "409 in progress")] >= 1
        assert state.console == set()  # the repair deleted the never-used sign-in
    finally:
        state.teardown()


def test_a_refused_change_sets_a_diverted_sign_in_back_to_its_records_address(
    api: Api, emulator: Emulator, outbox: Path
) -> None:
    """Found by `make fuzz`: the only admin moved their sign-in's address around the API; an
    admin's change that re-cases the record's address and disables them is refused (the last
    enabled admin), and its give-back sets the sign-in to the record's address, not the diverted
    one (DESIGN.md invariant 3)."""
    UserModel.world = World(api, emulator, outbox)
    state = UserModel()
    try:
        state.invite(email="ann@m.test", role="admin")
        state.sign_in(who=0)
        state.own_email_change(email="bob@m.test", verify=True, who=0)
        state.one_truth()
        assert set(state.diverted.values()) == {"bob@m.test"}
        # bodies[5]: the email re-cased, the role, and enabled False (which is odd).
        state.with_a_fault(
            action="update", call=50, email="Ann@m.test", kind="error once", repair=False, role="admin", which=5, who=0
        )
        state.one_truth()
        assert SEEN[("update with error once", "refused, a diverted sign-in set back to its record")] >= 1
        assert state.diverted == {}
    finally:
        state.teardown()


def test_a_code_confirms_the_change_the_pool_held_whatever_was_written_last(
    api: Api, emulator: Emulator, outbox: Path
) -> None:
    """Found by `make fuzz`: a member's write of the address their sign-in already has holds
    nothing new, so the code mailed (and confirmed) is that of their earlier held change; the
    model now reads where the sign-in went instead of assuming."""
    UserModel.world = World(api, emulator, outbox)
    state = UserModel()
    try:
        state.invite(email="ann@m.test", role="member")
        state.sign_in(who=0)
        state.own_email_change(email="bob@m.test", verify=False, who=0)
        state.own_email_change(email="ann@m.test", verify=True, who=0)
        state.one_truth()
        assert set(state.diverted.values()) == {"bob@m.test"}
    finally:
        state.teardown()


def test_a_token_from_before_a_sign_out_that_answered_503_is_refused_at_once(
    api: Api, emulator: Emulator, outbox: Path
) -> None:
    """Found by `make fuzz`: a sign-out whose record write applied but was never answered (503)
    left this container remembering the user's standing from before it, so the member's older
    token was accepted until that memory expired. A 503 of a revoking write now drops it."""
    UserModel.world = World(api, emulator, outbox)
    state = UserModel()
    try:
        state.invite(email="ann@m.test", role="member")
        state.sign_in(who=0)
        state.profile_edit(name="Ann", stale=False, who=0)  # the container now remembers her standing
        state.sign_in_action_with_a_fault(
            action="sign-out", call=4, kind="slow success on every attempt", repair=True, who=0
        )
        assert SEEN[("sign-out with slow success on every attempt", "503, then make drift FIX=1")] >= 1
        state.profile_edit(name="Ann", stale=False, who=0)  # her token from before: refused
        assert SEEN[("profile edit", "401")] >= 1
    finally:
        state.teardown()
