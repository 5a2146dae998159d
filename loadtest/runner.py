"""Concurrent clients with a weighted operation mix, their statistics, and the final check of
what each client believes it wrote against what the DynamoDB table holds.

Every client works only on users it created itself (emails `lt-<run>-<client>-<n>@load.example`),
so it knows exactly what each of them must look like and the union of beliefs is exact.
A client stops relying on a user once the API answered it unexpectedly; a write whose outcome
is unknown (transport error, 5xx) makes that user "uncertain" and keeps it out of the
lost/phantom comparison. Either already fails the run.
"""

from __future__ import annotations

import ipaddress
import json
import math
import random
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from chalicelib.adapters.dynamodb import DynamoUserRepository, Inventory
from chalicelib.adapters.table_schema import EMAIL_KEY_PREFIX
from chalicelib.domain.models import User, email_key
from devstack import resources

OPERATIONS = ("create", "read", "update", "list", "delete")
# More creates than deletes, so each client's own set of users grows and never runs dry.
WEIGHTS = (30, 25, 20, 10, 15)
# Some creates reuse a live email of the client's (other case): the API must answer 409.
DUPLICATE_SHARE = 0.05
# Some reads ask for a user the client deleted: the API must answer 404.
READ_DELETED_SHARE = 0.1
PAGE_LIMIT = 50
MAX_EXTRA_PAGES = 2
REQUEST_TIMEOUT_S = 30
SAMPLE_LIMIT = 20
UNTIL_POLL_S = 0.1
EMAIL_DOMAIN = "load.example"
# What a client remembers of a user; the table must hold exactly this.
FIELDS = ("userId", "name", "email", "phone", "createdAt", "updatedAt", "version")
# The table scan is signed: fixed fake credentials (the emulator takes any) keep real ones out of it.
# Sign-in (InitiateAuth) is unsigned, so no credentials are needed for the tokens.

Record = dict[str, Any]


class NotLoopback(ValueError):
    """The target is not on this machine."""


def require_loopback(url: str) -> None:
    """Refuse any target that is not on this machine: the load is for the local stack only."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NotLoopback(f"refusing a non-loopback target: {url!r} (the load test runs against the local stack only)")


def project(user: Mapping[str, Any]) -> Record:
    return {name: user.get(name) for name in FIELDS}


def differing(expected: Mapping[str, Any], actual: Mapping[str, Any], names: tuple[str, ...] = FIELDS) -> list[str]:
    return [
        f"{name}: {expected.get(name)!r} != {actual.get(name)!r}"
        for name in names
        if expected.get(name) != actual.get(name)
    ]


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


@dataclass
class Recorder:
    """One client's measurements; merged after the run, so no locking."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPERATIONS})
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: {op: Counter() for op in OPERATIONS})
    problems: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def problem(self, kind: str, message: str) -> None:
        self.problems[kind] += 1
        if len(self.samples) < SAMPLE_LIMIT:
            self.samples.append(f"{kind}: {message}")

    def merge(self, other: Recorder) -> None:
        for op in OPERATIONS:
            self.latencies[op] += other.latencies[op]
            self.statuses[op] += other.statuses[op]
        self.problems += other.problems
        self.checks += other.checks
        self.samples += other.samples[: max(0, SAMPLE_LIMIT - len(self.samples))]


class Client:
    """One simulated API client: its own session, token, random stream and beliefs."""

    def __init__(self, index: int, base_url: str, token: str, tag: str, seed: int, stop: threading.Event):
        self.index = index
        self.base_url = base_url
        self.tag = tag
        self.rng = random.Random(seed)
        self.stop = stop
        self.session = requests.Session()
        # Loopback only: no proxy or netrc from the environment may reroute or decorate a request.
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.rec = Recorder()
        self.serial = 0
        self.present: dict[str, Record] = {}  # believed present, worked on
        self.retired: dict[str, Record] = {}  # believed present, answered unexpectedly once: left alone
        self.deleted: list[str] = []
        self.uncertain_ids: set[str] = set()
        self.uncertain_emails: set[str] = set()
        self.actions = {
            "create": self.create,
            "read": self.read,
            "update": self.update,
            "list": self.list_pages,
            "delete": self.delete,
        }

    def run(self, start: threading.Barrier) -> None:
        start.wait()
        try:
            while not self.stop.is_set():
                op = self.rng.choices(OPERATIONS, WEIGHTS)[0] if self.present else "create"
                self.actions[op]()
        except Exception:
            # A bug here must fail the run loudly, not silently leave one client fewer.
            self.rec.problem("client crash", traceback.format_exc())
        finally:
            self.session.close()

    # --- HTTP ---------------------------------------------------------------------------------

    def call(self, op: str, method: str, path: str, expected: int, **kwargs: Any) -> requests.Response | None:
        started = time.perf_counter()
        try:
            response = self.session.request(method, self.base_url + path, timeout=REQUEST_TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            self.rec.statuses[op]["transport error"] += 1
            self.rec.problem("transport error", f"{method} {path}: {type(exc).__name__}: {exc}")
            return None
        self.rec.latencies[op].append(time.perf_counter() - started)
        status = response.status_code
        self.rec.statuses[op][str(status)] += 1
        if status != expected:
            kind = "server error" if status >= 500 else "unexpected status"
            self.rec.problem(kind, f"{method} {path}: {status}, expected {expected}: {response.text[:200]}")
        return response

    def user_in(self, response: requests.Response, key: str | None, what: str) -> Record | None:
        """The user record in a 2xx body (under `key`, or the body itself), or None if malformed."""
        try:
            body = response.json()
        except ValueError:
            body = None
        user = body.get(key) if key is not None and isinstance(body, dict) else body
        if not isinstance(user, dict) or not isinstance(user.get("userId"), str):
            self.rec.problem("body mismatch", f"{what}: no user record in {response.text[:200]}")
            return None
        return project(user)

    def forget(self, user_id: str, response: requests.Response | None) -> None:
        """Stop working on a user after an unexpected answer; unknown outcomes make it uncertain."""
        belief = self.present.pop(user_id)
        if response is None or response.status_code >= 500:
            self.uncertain_ids.add(user_id)
        else:
            self.retired[user_id] = belief

    def pick(self) -> str:
        return self.rng.choice(list(self.present))

    def phone(self) -> str:
        return f"+1415555{self.rng.randrange(10_000):04d}"

    # --- operations ----------------------------------------------------------------------------

    def create(self) -> None:
        if self.present and self.rng.random() < DUPLICATE_SHARE:
            self.create_duplicate()
            return
        self.serial += 1
        email = f"{self.tag}{self.index}-{self.serial}@{EMAIL_DOMAIN}"
        body: Record = {"name": f"Load {self.index}-{self.serial}", "email": email}
        if self.rng.random() < 0.5:
            body["phone"] = self.phone()
        response = self.call("create", "POST", "/users", 201, json=body)
        if response is None or response.status_code >= 500:
            self.uncertain_emails.add(email_key(email))
            return
        if response.status_code != 201:
            return
        user = self.user_in(response, "user", f"POST /users {email}")
        if user is None:
            self.uncertain_emails.add(email_key(email))
            return
        wrong = differing(
            {**body, "phone": body.get("phone"), "version": 1}, user, ("name", "email", "phone", "version")
        )
        if wrong:
            self.rec.problem("body mismatch", f"POST /users {email}: {wrong}")
        # What the API says it stored is what the table must hold.
        self.present[user["userId"]] = user

    def create_duplicate(self) -> None:
        taken = self.present[self.pick()]["email"]
        body = {"name": "Duplicate", "email": taken.upper()}
        response = self.call("create", "POST", "/users", 409, json=body)
        self.rec.checks["duplicate email refused"] += response is not None and response.status_code == 409
        if response is not None and response.status_code == 201:
            # The table now really holds a second user with that email: count it as written.
            user = self.user_in(response, "user", f"POST /users {body['email']}")
            if user is not None:
                self.retired[user["userId"]] = user

    def read(self) -> None:
        if self.deleted and self.rng.random() < READ_DELETED_SHARE:
            user_id = self.rng.choice(self.deleted)
            response = self.call("read", "GET", f"/users/{user_id}", 404)
            self.rec.checks["deleted user gone"] += response is not None and response.status_code == 404
            return
        user_id = self.pick()
        response = self.call("read", "GET", f"/users/{user_id}", 200)
        if response is None or response.status_code != 200:
            self.forget(user_id, response)
            return
        user = self.user_in(response, None, f"GET /users/{user_id}")
        wrong = differing(self.present[user_id], user) if user is not None else ["malformed"]
        if wrong:
            self.rec.problem("body mismatch", f"GET /users/{user_id}: {wrong}")
            self.forget(user_id, response)

    def update(self) -> None:
        user_id = self.pick()
        old = self.present[user_id]
        variant = self.rng.randrange(4)
        changes: Record = {}
        if variant in (0, 2) or (variant == 3 and old["phone"] is None):
            changes["name"] = f"Renamed {self.index}-{self.rng.randrange(1_000_000)}"
        if variant in (1, 2):
            changes["phone"] = self.phone()
        if variant == 3 and old["phone"] is not None:
            changes["phone"] = None  # null removes the phone
        response = self.call("update", "PUT", f"/users/{user_id}", 200, json=changes)
        if response is None or response.status_code != 200:
            self.forget(user_id, response)
            return
        user = self.user_in(response, "user", f"PUT /users/{user_id}")
        if user is None:
            self.forget(user_id, response)
            return
        expected = {**old, **changes, "version": old["version"] + 1}
        wrong = differing(expected, user, tuple(name for name in FIELDS if name != "updatedAt"))
        if wrong:
            self.rec.problem("body mismatch", f"PUT /users/{user_id} {changes}: {wrong}")
        self.present[user_id] = user

    def delete(self) -> None:
        user_id = self.pick()
        response = self.call("delete", "DELETE", f"/users/{user_id}", 200)
        if response is None or response.status_code != 200:
            self.forget(user_id, response)
            return
        del self.present[user_id]
        self.deleted.append(user_id)

    def list_pages(self) -> None:
        seen: set[str] = set()
        cursor: str | None = None
        for _ in range(1 + self.rng.randint(0, MAX_EXTRA_PAGES)):
            params = {"limit": str(PAGE_LIMIT), **({"cursor": cursor} if cursor else {})}
            response = self.call("list", "GET", "/users", 200, params=params)
            if response is None or response.status_code != 200:
                return
            try:
                page = response.json()
                users = page["users"]
                ids = [user["userId"] for user in users]
                cursor = page["nextCursor"]
                well_formed = page["count"] == len(ids) <= PAGE_LIMIT and (cursor is None or isinstance(cursor, str))
            except (ValueError, KeyError, TypeError):
                well_formed, ids, cursor = False, [], None
            if not well_formed or len(set(ids)) != len(ids) or seen.intersection(ids):
                self.rec.problem("body mismatch", f"GET /users {params}: malformed page or repeated users")
                return
            seen.update(ids)
            if cursor is None:
                return


# --- the table ---------------------------------------------------------------------------------


@dataclass
class Verification:
    believed_present: int
    believed_deleted: int
    uncertain: int
    table_users: int
    table_reservations: int
    lost: list[str]
    phantom: list[str]
    missing_reservations: list[str]
    orphaned_reservations: list[str]


def scan_table(info: Mapping[str, Any]) -> Inventory:
    """Everything the stack's table holds, read through the repository on the emulator's endpoint."""
    client = resources.emulator_client("dynamodb", info["aws_endpoint_url"], info["region"], proxies={})
    return DynamoUserRepository(info["table_name"], client=client).inventory()


def stored_user(user: User) -> Record:
    return {
        "userId": user.user_id,
        "name": user.name,
        "email": user.email,
        "phone": user.phone,
        "createdAt": user.created_at,
        "updatedAt": user.updated_at,
        "version": user.version,
    }


def verify(table: Inventory, tag: str, clients: list[Client]) -> Verification:
    """Compare this run's users and email reservations in the table with the clients' beliefs."""
    present: dict[str, Record] = {}
    deleted: set[str] = set()
    uncertain_ids: set[str] = set()
    uncertain_emails: set[str] = set()
    for client in clients:
        present |= client.present | client.retired
        deleted.update(client.deleted)
        uncertain_ids |= client.uncertain_ids
        uncertain_emails |= client.uncertain_emails
    # This run's users and reservations only: their emails carry its tag.
    users = {key: stored_user(user) for key, user in table.users.items() if email_key(user.email).startswith(tag)}
    reservations = {key: owner for key, owner in table.reservations.items() if key.startswith(tag)}

    lost = []
    for user_id, belief in present.items():
        stored = users.get(user_id)
        if stored is None:
            lost.append(f"{user_id} ({belief['email']}): missing")
        elif wrong := differing(belief, stored):
            lost.append(f"{user_id} ({belief['email']}): {wrong}")
    phantom = [
        f"{user_id} ({stored['email']}): {'believed deleted' if user_id in deleted else 'never acknowledged'}"
        for user_id, stored in users.items()
        if user_id not in present
        and user_id not in uncertain_ids
        and email_key(stored["email"]) not in uncertain_emails
    ]
    missing = [
        f"{user_id} ({stored['email']}): reservation owner {reservations.get(email_key(stored['email']))!r}"
        for user_id, stored in users.items()
        if reservations.get(email_key(stored["email"])) != user_id
    ]
    orphaned = [
        f"{EMAIL_KEY_PREFIX}{key} -> {owner!r}"
        for key, owner in reservations.items()
        if owner not in users or email_key(users[owner]["email"]) != key
    ]
    return Verification(
        believed_present=len(present),
        believed_deleted=len(deleted),
        uncertain=len(uncertain_ids) + len(uncertain_emails),
        table_users=len(users),
        table_reservations=len(reservations),
        lost=lost,
        phantom=phantom,
        missing_reservations=missing,
        orphaned_reservations=orphaned,
    )


# --- the run and its report ----------------------------------------------------------------------


@dataclass
class OpSummary:
    count: int
    rate_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    statuses: dict[str, int]

    @classmethod
    def of(cls, latencies: list[float], statuses: Counter[str], elapsed_s: float) -> OpSummary:
        ordered = sorted(latencies)
        ms = [None if (value := percentile(ordered, p)) is None else round(value * 1000, 1) for p in (50, 95, 99)]
        count = sum(statuses.values())
        return cls(count, round(count / elapsed_s, 1), ms[0], ms[1], ms[2], dict(sorted(statuses.items())))


@dataclass
class Report:
    run_id: str
    target: str
    clients: int
    duration_s: float
    elapsed_s: float
    requests: int
    throughput_rps: float
    operations: dict[str, OpSummary]
    overall: OpSummary
    problems: dict[str, int]
    checks: dict[str, int]
    samples: list[str]
    verification: Verification

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.overall.statuses.items() if status.startswith("5"))

    @property
    def failures(self) -> list[str]:
        found = [f"{kind}: {n}" for kind, n in sorted(self.problems.items()) if n]
        check = self.verification
        for name, entries in (
            ("lost writes", check.lost),
            ("phantom writes", check.phantom),
            ("users without their email reservation", check.missing_reservations),
            ("orphaned email reservations", check.orphaned_reservations),
        ):
            if entries:
                found.append(f"{name}: {len(entries)}")
        if self.requests == 0:
            found.append("no requests were made")
        return found

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "server_errors": self.server_errors, "failures": self.failures, "ok": self.ok}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        lines = [
            f"Load test {self.run_id}: {self.clients} clients for {self.duration_s:g} s against {self.target}",
            f"{self.requests} requests in {self.elapsed_s:.1f} s: {self.throughput_rps:.1f} req/s",
            "",
            f"{'operation':<10} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  statuses",
        ]
        for name, op in [*self.operations.items(), ("all", self.overall)]:
            ms = " ".join(f"{'-' if v is None else f'{v:.1f}':>8}" for v in (op.p50_ms, op.p95_ms, op.p99_ms))
            statuses = ", ".join(f"{status}: {n}" for status, n in op.statuses.items()) or "-"
            lines.append(f"{name:<10} {op.count:>8} {op.rate_per_s:>7.1f} {ms}  {statuses}")
        check = self.verification
        problems = ", ".join(f"{kind} {n}" for kind, n in sorted(self.problems.items())) or "none"
        lines += [
            "",
            f"5xx responses: {self.server_errors}; problems: {problems}",
            "checks passed: " + (", ".join(f"{name} {n}" for name, n in sorted(self.checks.items())) or "none"),
            f"table: {check.table_users} users and {check.table_reservations} email reservations of this run; "
            f"clients believe {check.believed_present} present, {check.believed_deleted} deleted, "
            f"{check.uncertain} uncertain",
            f"lost {len(check.lost)}, phantom {len(check.phantom)}, "
            f"users without reservation {len(check.missing_reservations)}, "
            f"orphaned reservations {len(check.orphaned_reservations)}",
        ]
        details = [
            *self.samples,
            *check.lost,
            *check.phantom,
            *check.missing_reservations,
            *check.orphaned_reservations,
        ]
        if details:
            lines += ["", "first problems:", *(f"  {line}" for line in details[:SAMPLE_LIMIT])]
        lines += ["", "PASS" if self.ok else "FAIL: " + "; ".join(self.failures)]
        return "\n".join(lines)


def admin_token(info: Mapping[str, Any]) -> str:
    return resources.id_token(
        info["aws_endpoint_url"],
        info["region"],
        info["user_pool_client_id"],
        info["admin_username"],
        info["admin_password"],
    )


def run_load(
    info: Mapping[str, Any],
    clients: int = 20,
    duration_s: float = 60.0,
    seed: int | None = None,
    until: Callable[[list[Recorder]], bool] | None = None,
    max_duration_s: float | None = None,
) -> Report:
    """Run `clients` concurrent admin clients for `duration_s` against the stack described by `info`
    (the stack file's contents), then check the table against what they believe they wrote.

    With `until`, the clients go on after `duration_s` until it holds of their recorders (read
    while they run: counts only) or `max_duration_s` has passed: a run that must have done
    something is not cut short by a slow machine."""
    if clients < 1 or duration_s <= 0:
        raise ValueError("clients and duration must be positive")
    base_url = str(info["api_url"]).rstrip("/")
    require_loopback(base_url)
    require_loopback(str(info["aws_endpoint_url"]))
    run_id = uuid.uuid4().hex[:10]
    tag = f"lt-{run_id}-"
    seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    stop = threading.Event()
    start = threading.Barrier(clients + 1)
    workers = [Client(i, base_url, admin_token(info), tag, seed + i, stop) for i in range(clients)]
    threads = [
        threading.Thread(target=worker.run, args=(start,), name=f"loadtest-client-{worker.index}", daemon=True)
        for worker in workers
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    stop.wait(duration_s)
    deadline = began + max(duration_s, max_duration_s or 0)
    while until is not None and not until([worker.rec for worker in workers]) and time.monotonic() < deadline:
        time.sleep(UNTIL_POLL_S)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began

    total = Recorder()
    for worker in workers:
        total.merge(worker.rec)
    verification = verify(scan_table(info), tag, workers)
    all_latencies = [value for op in OPERATIONS for value in total.latencies[op]]
    all_statuses: Counter[str] = sum(total.statuses.values(), Counter())
    overall = OpSummary.of(all_latencies, all_statuses, elapsed)
    return Report(
        run_id=run_id,
        target=base_url,
        clients=clients,
        duration_s=duration_s,
        elapsed_s=round(elapsed, 2),
        requests=overall.count,
        throughput_rps=overall.rate_per_s,
        operations={op: OpSummary.of(total.latencies[op], total.statuses[op], elapsed) for op in OPERATIONS},
        overall=overall,
        problems=dict(total.problems),
        checks=dict(total.checks),
        samples=total.samples,
        verification=verification,
    )
