"""One user, one truth (issue 20): the sign-in and the record never disagree, whatever the order of
requests. One test per way they used to split, each through the app on moto with the real
adapters; the invariant itself (docs/DESIGN.md) is checked by `make drift`'s own check
(ops/drift.py) and, over random sequences, by tests/functional/test_model.py.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.domain.models import epoch_seconds, timestamp
from chalicelib.domain.revocation import Revoked
from devstack import cognito_emulation
from ops.drift import Drift
from tests.functional.conftest import TABLE, Api, Emulator
from tests.functional.test_lifecycle import in_admins
from tests.functional.test_lifecycle import sign_in as stored_sign_in
from tests.functional.test_users_api import ADMIN, assert_error, create
from tests.support import tokens

Deliver = Callable[[], None]


@pytest.fixture
def drift(ddb: Any, pool: str) -> Drift:
    """`make drift`'s check, on the functional layer's table and pool."""
    return Drift(TABLE, pool, aws.client("dynamodb"), aws.client("cognito-idp"))


def put(api: Api, user: dict[str, Any], body: dict[str, Any], token: str = ADMIN, **headers: str) -> Any:
    return api.request("PUT", f"/users/{user['userId']}", token, body, headers=headers)


def token_for(user: dict[str, Any], issued_at: int, admin: bool = False, email: str | None = None) -> str:
    return tokens.token(
        sub=user["userId"],
        email=email or user["email"],
        groups=["admins"] if admin else None,
        iat=issued_at,
        auth_time=issued_at,
    )


def attributes(pool: str, sub: str) -> dict[str, str]:
    return {a["Name"]: a["Value"] for a in stored_sign_in(pool, sub)["UserAttributes"]}


# --- 1. the record never takes an email from a token ------------------------------------------


def test_a_stale_token_never_undoes_an_admins_email_change(api: Api, pool: str, drift: Drift) -> None:
    ada = create(api)
    stale = token_for(ada, int(time.time()) - 5)  # issued before the change: it says ada@
    assert put(api, ada, {"email": "lovelace@example.com"}).status_code == 200
    saved = api.request("PUT", "/users/me", stale, {"name": "Ada K"})
    assert saved.status_code == 200, saved.body
    assert saved.json_body["user"]["email"] == "lovelace@example.com"
    assert attributes(pool, ada["userId"])["email"] == "lovelace@example.com"
    assert drift.check().clean
    # The old address was released for good: another user can have it.
    assert create(api, email="ada@example.com", name="Another Ada")["userId"] != ada["userId"]


def test_a_first_profile_takes_email_and_role_from_the_sign_in_not_the_token(
    api: Api, pool: str, sign_in: Callable[..., str], drift: Drift
) -> None:
    """A sign-in made outside the API (an operator's first admin): the token may be an hour old."""
    sub = sign_in(str(uuid.uuid4()), "operator@example.com", admin=True)
    stale = tokens.token(sub=sub, email="before@example.com", iat=int(time.time()) - 5)  # no group either
    created = api.request("PUT", "/users/me", stale, {"name": "Op"})
    assert created.status_code == 201, created.body
    assert (created.json_body["user"]["email"], created.json_body["user"]["role"]) == ("operator@example.com", "admin")
    assert drift.check().clean


# --- 2. an email change racing an invite of the same address ----------------------------------


class Race:
    """Two requests, one of them held at an AWS call of the app's clients until the other has done
    what the test lets it do: the order in which their steps reach AWS is the test's choice."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.threads: dict[str, threading.Thread] = {}
        self.hooks: list[tuple[Any, str, Callable[..., None]]] = []

    def start(self, name: str, request: Callable[[], Any]) -> threading.Thread:
        thread = threading.Thread(target=lambda: self.results.__setitem__(name, request()), name=name)
        self.threads[name] = thread
        thread.start()
        return thread

    def on(self, client: Any, when: str, operation: str, thread: str, action: Callable[[], object]) -> None:
        """Run `action` once, when `thread` reaches `operation` (`when`: before-call or after-call)."""
        event = f"{when}.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        fired = threading.Event()

        def hook(**_: Any) -> None:
            if threading.current_thread().name == thread and not fired.is_set():
                fired.set()
                action()

        client.meta.events.register(event, hook)
        self.hooks.append((client, event, hook))


@pytest.fixture
def race() -> Iterator[Race]:
    running = Race()
    yield running
    for thread in running.threads.values():
        thread.join(10)
    for client, event, hook in running.hooks:  # the app's clients outlive the test
        client.meta.events.unregister(event, hook)


ORDERS = (
    # the invite, whole, just before the change's step in Cognito
    "invite before the change's sign-in",
    # the case: the invite's sign-in made after the change's check, its record written after
    # the change's step in Cognito; on the old code both answered 409 and U's record kept the address
    "invite's sign-in, then the change, then the invite's record",
    # the change, whole, between the invite's sign-in and its record
    "change inside the invite",
    # the invite, whole, just before the change's record write
    "invite before the change's record",
)


@pytest.mark.parametrize("order", ORDERS)
def test_an_email_change_racing_an_invite_of_the_address_leaves_one_owner_and_a_409_that_changed_nothing(
    api: Api, pool: str, drift: Drift, race: Race, order: str
) -> None:
    ada = create(api)
    target = "shared@example.com"
    cognito, dynamodb = aws.client("cognito-idp"), aws.client("dynamodb")

    def change() -> Any:
        return put(api, ada, {"email": target})

    def invite() -> Any:
        return api.request("POST", "/users", ADMIN, {"name": "Sam", "email": target})

    created, go_on = threading.Event(), threading.Event()
    if order == "invite before the change's sign-in":
        race.on(
            cognito, "before-call", "AdminUpdateUserAttributes", "change", lambda: race.start("invite", invite).join()
        )
    elif order.startswith("invite's sign-in"):

        def hold_the_invite() -> None:
            created.set()
            go_on.wait(10)

        def start_the_invite() -> None:
            race.start("invite", invite)
            created.wait(10)

        race.on(cognito, "after-call", "AdminCreateUser", "invite", hold_the_invite)
        race.on(cognito, "before-call", "AdminUpdateUserAttributes", "change", start_the_invite)
    elif order == "change inside the invite":
        race.on(dynamodb, "before-call", "TransactWriteItems", "invite", lambda: race.start("change", change).join())
    else:
        race.on(dynamodb, "before-call", "TransactWriteItems", "change", lambda: race.start("invite", invite).join())
    first = race.start(
        "invite" if order == "change inside the invite" else "change",
        invite if order == "change inside the invite" else change,
    )
    first.join(10)
    go_on.set()
    for thread in list(race.threads.values()):
        thread.join(10)

    answered = {name: response.status_code for name, response in race.results.items()}
    assert sorted(answered.values()) in ([200, 409], [201, 409]), {n: r.body for n, r in race.results.items()}
    winner = next(name for name, status in answered.items() if status < 300)
    assert_error(race.results["invite" if winner == "change" else "change"], 409)
    # One owner of the address, record and sign-in; the loser changed nothing.
    users = {u["email"]: u for u in api.request("GET", "/users", ADMIN).json_body["users"]}
    if winner == "change":
        assert set(users) == {target} and users[target]["userId"] == ada["userId"] and users[target]["version"] == 2
    else:
        assert set(users) == {"ada@example.com", target}
        assert users["ada@example.com"] == ada
    owner = users[target]["userId"]
    assert attributes(pool, owner)["email"] == target
    assert attributes(pool, ada["userId"])["email"] == users.get("ada@example.com", users[target])["email"]
    assert drift.check().clean


# --- 3. Cognito's own API, with a member's access token, cannot go around the API ------------


def test_a_members_own_cognito_calls_change_nothing_the_record_holds(
    api: Api, pool: str, emulator: Emulator, outbox: Path, drift: Drift
) -> None:
    """Against the pool and app client as deployed (devstack/resources.py): the client may write
    email only (Cognito requires its pool's required attributes writable), and the pool holds a new
    address until it is verified with the code mailed to it, so nobody takes an address they cannot
    read; nothing else the record owns is writable."""
    ada = create(api)
    cognito = aws.client("cognito-idp")
    invitation = json.loads(outbox.read_text().splitlines()[-1])
    first = cognito.initiate_auth(
        ClientId=emulator.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ada@example.com", "PASSWORD": invitation["temporaryPassword"]},
    )
    done = cognito.respond_to_auth_challenge(
        ClientId=emulator.client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=first["Session"],
        ChallengeResponses={"USERNAME": "ada@example.com", "NEW_PASSWORD": "Ada-passw0rd-2!"},
    )
    access = done["AuthenticationResult"]["AccessToken"]
    before = attributes(pool, ada["userId"])
    for name, value in [("name", "Mallory"), ("phone_number", "+14155550199"), ("email_verified", "false")]:
        with pytest.raises(cognito.exceptions.NotAuthorizedException):
            cognito.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": name, "Value": value}])
    squatted = [{"Name": "email", "Value": "ceo@example.com"}]
    cognito.update_user_attributes(AccessToken=access, UserAttributes=squatted)  # held until verified
    cognito.change_password(AccessToken=access, PreviousPassword="Ada-passw0rd-2!", ProposedPassword="Ada-passw0rd-3!")
    cognito.global_sign_out(AccessToken=access)
    assert attributes(pool, ada["userId"]) == before
    assert drift.check().clean
    assert create(api, email="ceo@example.com", name="The CEO")["email"] == "ceo@example.com"  # still free


def test_a_members_verified_own_email_change_is_found_by_drift_and_set_back_to_the_record(
    api: Api, pool: str, emulator: Emulator, outbox: Path, drift: Drift
) -> None:
    """What a member can still do around the API: change their sign-in's address with their own
    token and confirm it with the code mailed to the new one (the app client must be able to write
    the pool's required `email`). Sign-in and record then differ in email; `make drift` reports it
    and `FIX=1` sets the sign-in back to the record's address, verified; an admin's email change
    through the API sets it too. The model test (test_model.py) runs this among everything else."""
    ada = create(api)
    cognito = aws.client("cognito-idp")
    invitation = json.loads(outbox.read_text().splitlines()[-1])
    first = cognito.initiate_auth(
        ClientId=emulator.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ada@example.com", "PASSWORD": invitation["temporaryPassword"]},
    )
    access = cognito.respond_to_auth_challenge(
        ClientId=emulator.client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=first["Session"],
        ChallengeResponses={"USERNAME": "ada@example.com", "NEW_PASSWORD": "Ada-passw0rd-2!"},
    )["AuthenticationResult"]["AccessToken"]

    def go_around(email: str) -> None:
        cognito.update_user_attributes(AccessToken=access, UserAttributes=[{"Name": "email", "Value": email}])
        code = cognito_emulation.mailed_code(pool, ada["userId"])
        cognito.verify_user_attribute(AccessToken=access, AttributeName="email", Code=code)
        assert attributes(pool, ada["userId"])["email"] == email

    go_around("elsewhere@example.com")
    report = drift.check()
    assert report.findings() == {(ada["userId"], "email")}
    drift.fix(report)
    assert {k: attributes(pool, ada["userId"])[k] for k in ("email", "email_verified")} == {
        "email": "ada@example.com",
        "email_verified": "true",
    }
    assert drift.check().clean
    # The address the member went to is free again.
    assert create(api, email="elsewhere@example.com", name="Else")["email"] == "elsewhere@example.com"

    go_around("again@example.com")
    assert put(api, ada, {"email": "ada2@example.com"}).status_code == 200
    assert attributes(pool, ada["userId"])["email"] == "ada2@example.com"
    assert drift.check().clean


# --- 4. a create adopting a sign-in made outside the API: the group follows the role ----------


@pytest.mark.parametrize(("console_admin", "role"), [(True, "member"), (False, "admin")])
def test_an_adopted_sign_in_takes_the_records_role_both_ways_and_its_state(
    api: Api, pool: str, sign_in: Callable[..., str], drift: Drift, outbox: Any, console_admin: bool, role: str
) -> None:
    sub = sign_in(str(uuid.uuid4()), "console@example.com", admin=console_admin, enabled=False)
    made = create(api, email="console@example.com", role=role)
    assert (made["userId"], made["role"], made["enabled"]) == (sub, role, True)
    assert in_admins(pool, sub) is (role == "admin")
    assert stored_sign_in(pool, sub)["Enabled"] is True
    assert drift.check().clean
    # It has a password already: no invitation resets it.
    assert stored_sign_in(pool, sub)["UserStatus"] == "CONFIRMED" and not outbox.exists()


# --- 5. a no-op changes nothing ---------------------------------------------------------------


def test_an_update_that_changes_nothing_writes_nothing_revokes_nothing_and_says_nothing(
    api: Api, ddb: Any, deliver_changes: Deliver
) -> None:
    ada = create(api)
    token = token_for(ada, int(time.time()) - 5)
    before = ddb.scan(TableName=TABLE)["Items"]
    same = put(api, ada, {"role": "member", "enabled": True, "name": "Ada", "email": "ada@example.com"})
    assert same.status_code == 200
    assert same.json_body["user"] == ada and same.headers["ETag"] == f'"1-{ada["createdAt"]}"'
    assert api.request("PUT", "/users/me", token, {"name": "Ada"}).json_body["user"] == ada
    assert ddb.scan(TableName=TABLE)["Items"] == before
    assert api.request("GET", "/users/me", token).status_code == 200  # not revoked
    deliver_changes()
    history = api.request("GET", f"/users/{ada['userId']}/history", ADMIN).json_body["events"]
    assert [event["type"] for event in history] == ["UserCreated"]
    # Preconditions still apply: a stale If-Match is 412 even when nothing would change.
    assert_error(put(api, ada, {"enabled": True}, **{"If-Match": '"7-2000-01-01T00:00:00.000Z"'}), 412)


# --- 6. tokens issued after a change are accepted, those before refused -----------------------


def start_of_a_second(pass_time: Callable[[float], None]) -> None:
    """Wait for the next whole second, so that a request finishing within the same second as its
    change is what happens (how the old code refused the new token)."""
    pass_time(1 - time.time() % 1 + 0.01)


@pytest.mark.parametrize("change", ["enable", "promote"])
def test_a_token_issued_after_an_enable_or_a_promotion_is_accepted_and_one_issued_before_refused(
    api: Api, change: str, pass_time: Callable[[float], None]
) -> None:
    create(api, email="boss@example.com", role="admin")  # so that Ada may be changed freely
    ada = create(api)
    if change == "enable":
        assert put(api, ada, {"enabled": False}).status_code == 200
    start_of_a_second(pass_time)
    changed = put(api, ada, {"enabled": True} if change == "enable" else {"role": "admin"})
    assert changed.status_code == 200
    second_of_the_change = epoch_seconds(changed.json_body["user"]["updatedAt"])
    admin = change == "promote"
    signed_in_now = token_for(ada, int(time.time()), admin=admin)  # what Cognito issues after the 200
    assert api.request("GET", "/users" if admin else "/users/me", signed_in_now).status_code == 200
    issued_before = token_for(ada, second_of_the_change, admin=admin)  # counts as issued before it
    assert assert_error(api.request("GET", "/users/me", issued_before), 401)["error"] == Revoked.message


# --- 7. updatedAt grows with the version; history is in the order changes were applied -------


def backwards_clock(start: datetime) -> Callable[[], str]:
    """A container whose clock is behind the last writer's, and drifts further behind with each
    request: every call is a second earlier than the one before."""
    now = [start]

    def clock() -> str:
        now[0] -= timedelta(seconds=1)
        return timestamp(now[0])

    return clock


def test_updated_at_grows_with_the_version_and_history_is_in_applied_order(api: Api, deliver_changes: Deliver) -> None:
    ada = create(api)
    wired = bootstrap.current()
    bootstrap.override(identities=wired.identities, verify=wired.verify, clock=backwards_clock(datetime.now(UTC)))
    written = [put(api, ada, {"name": f"Ada {n}"}).json_body["user"] for n in range(12)]
    versions = [user["version"] for user in written]
    stamps = [user["updatedAt"] for user in written]
    assert versions == list(range(2, 14))
    assert stamps == sorted(stamps) and len(set(stamps)) == 12 and stamps[0] > ada["updatedAt"]
    deliver_changes()
    history = api.request("GET", f"/users/{ada['userId']}/history?limit=100", ADMIN).json_body["events"]
    assert [event["at"] for event in history] == [ada["createdAt"], *stamps]


def test_concurrent_updates_stamp_updated_at_in_version_order(api: Api, deliver_changes: Deliver) -> None:
    from tests.support.dynamodb_faults import Faults

    ada = create(api)
    lock = threading.Lock()  # moto takes one request at a time, as the local stack's emulator does
    serialized = [Faults(aws.client(service), lock=lock) for service in ("dynamodb", "cognito-idp")]
    try:
        barrier = threading.Barrier(12)
        results: list[Any] = []

        def write(n: int) -> None:
            barrier.wait()
            results.append(put(api, ada, {"name": f"Ada {n}"}))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for faults in serialized:
            faults.close()
    applied = sorted((r.json_body["user"] for r in results if r.status_code == 200), key=lambda u: u["version"])
    assert applied, [r.body for r in results]
    stamps = [user["updatedAt"] for user in applied]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    deliver_changes()
    history = api.request("GET", f"/users/{ada['userId']}/history?limit=100", ADMIN).json_body["events"]
    assert [event["at"] for event in history][1:] == stamps
