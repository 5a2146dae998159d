"""`python -m ops drift <stage> [--fix]`: where sign-ins (Cognito) and records (DynamoDB) of a stage
disagree, and, on request, the repair.

The API keeps them one (the invariant in docs/DESIGN.md), but a request that failed half-way (503)
and was never retried, or an edit in the AWS console, can leave:
- a sign-in without a record: never used (FORCE_CHANGE_PASSWORD: a create whose record write
  failed) -> `--fix` deletes it; used (someone signs in with it, made in the console) -> `--fix`
  gives it a record (a member unless it is in the admins group);
- the sign-in of a deleted user (a delete whose Cognito step failed) -> `--fix` deletes it;
- a record without a sign-in: made by an earlier version of this API, or its sign-in deleted in
  the console (or by its user, with Cognito's DeleteUser) -> reported only: nobody can sign in as
  it, and only a person can tell whether it should be recreated (POST /users, after deleting the
  record) or deleted;
- a sign-in whose email (as an address: letter case aside), group or enabled state differs from
  its record -> `--fix` makes the sign-in follow the record, as the API does;
- an enabled-admin count that differs from the records -> `--fix` sets it.

`assess` is the invariant's one check: `make drift` and the model-based test
(tests/functional/test_model.py, after every step) both ask it.

It runs with the operator's credentials (the API's role may neither list users nor scan the table),
against the stage's table and pool: looked up by name, or the running local stack's.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from chalicelib.adapters.cognito import CognitoIdentityProvider
from chalicelib.adapters.dynamodb import DynamoUserRepository, Inventory
from chalicelib.domain.errors import AppError
from chalicelib.domain.identity import EmailTaken, SignIn, SignInMissing
from chalicelib.domain.models import ADMIN, MEMBER, User, Write, email_key, new_write_token
from chalicelib.domain.service import utc_now

ACTOR = "drift"


@dataclass
class Report:
    sign_ins_without_records: list[SignIn] = field(default_factory=list)
    sign_ins_of_deleted_users: list[SignIn] = field(default_factory=list)
    records_without_sign_ins: list[User] = field(default_factory=list)
    mismatches: list[tuple[User, SignIn, list[str]]] = field(default_factory=list)  # what differs
    admin_count: tuple[int, int] = (0, 0)  # (stored, counted)
    fixed: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        stored, counted = self.admin_count
        return not (
            self.sign_ins_without_records
            or self.sign_ins_of_deleted_users
            or self.records_without_sign_ins
            or self.mismatches
            or stored != counted
        )

    def findings(self) -> set[tuple[str, str]]:
        """Every disagreement as (user id, kind), kind one of: email, group, enabled, no record,
        sign-in of a deleted user, no sign-in; ("", "counter") for the enabled-admin count. What
        the model-based test compares with its own reading."""
        found = {(s.sub, "no record") for s in self.sign_ins_without_records}
        found |= {(s.sub, "sign-in of a deleted user") for s in self.sign_ins_of_deleted_users}
        found |= {(u.user_id, "no sign-in") for u in self.records_without_sign_ins}
        for user, _, differences in self.mismatches:
            for difference in differences:
                kind = "email" if difference.startswith("email") else "group" if "admins" in difference else "enabled"
                found.add((user.user_id, kind))
        if self.admin_count[0] != self.admin_count[1]:
            found.add(("", "counter"))
        return found

    def lines(self) -> Iterator[str]:
        for sign_in in self.sign_ins_without_records:
            yield f"sign-in without a record: {sign_in.sub} {sign_in.email} ({sign_in.status})"
        for sign_in in self.sign_ins_of_deleted_users:
            yield f"sign-in of a deleted user: {sign_in.sub} {sign_in.email} (its delete did not finish)"
        for user in self.records_without_sign_ins:
            yield (
                f"record without a sign-in: {user.user_id} {user.email} (nobody can sign in as it; recreate it with "
                "POST /users after deleting this record, or delete it)"
            )
        for user, _, differences in self.mismatches:
            yield f"sign-in differs from its record: {user.user_id} {user.email}: {', '.join(differences)}"
        stored, counted = self.admin_count
        if stored != counted:
            yield f"enabled-admin count is {stored}, the records hold {counted}"
        yield from (f"fixed: {line}" for line in self.fixed)


def assess(table: Inventory, sign_ins: Iterable[SignIn], admins: set[str]) -> Report:
    """The invariant of docs/DESIGN.md, checked: where records (the table's, as the repository reads
    them) and sign-ins
    (the pool's, and the subs in its admins group) disagree in existence, email (as an address:
    letter case aside), group and enabled state, and whether the enabled-admin count equals the
    records. Pure: `make drift` and the model-based test (tests/functional/test_model.py) give it
    what they read."""
    records, deleted, stored_count = table.users, set(table.deleted), table.admin_count
    by_sub = {sign_in.sub: sign_in for sign_in in sign_ins}
    report = Report(admin_count=(stored_count, sum(user.is_active_admin for user in records.values())))
    without = [s for sub, s in sorted(by_sub.items()) if sub not in records]
    report.sign_ins_without_records = [s for s in without if s.sub not in deleted]
    report.sign_ins_of_deleted_users = [s for s in without if s.sub in deleted]
    report.records_without_sign_ins = [u for user_id, u in sorted(records.items()) if user_id not in by_sub]
    for user_id, user in sorted(records.items()):
        sign_in = by_sub.get(user_id)
        if sign_in is None:
            continue
        differences = []
        if email_key(sign_in.email) != email_key(user.email):
            differences.append(f"email {sign_in.email!r} (record {user.email!r})")
        if (user_id in admins) != (user.role == ADMIN):
            differences.append(f"{'in' if user_id in admins else 'not in'} admins (record: {user.role})")
        if sign_in.enabled != user.enabled:
            differences.append(f"{'enabled' if sign_in.enabled else 'disabled'} (record: enabled={user.enabled})")
        if differences:
            report.mismatches.append((user, sign_in, differences))
    return report


class Drift:
    def __init__(self, table: str, pool_id: str, dynamodb: Any, cognito: Any):
        self._identities = CognitoIdentityProvider(pool_id, cognito)
        self._repo = DynamoUserRepository(table, client=dynamodb)

    def check(self) -> Report:
        """Where the stage's sign-ins and records disagree (see `assess`)."""
        return assess(self._repo.inventory(), list(self._identities.sign_ins()), self._identities.admins())

    def fix(self, report: Report) -> None:
        """Repair towards the records (making records only for used sign-ins that have none). A
        repair that cannot be made now (another sign-in holds the address, say) is reported and
        the rest go on: the next run reports what is left."""
        admins = self._identities.admins()
        for sign_in in report.sign_ins_of_deleted_users:
            what = f"deleted the sign-in {sign_in.sub} {sign_in.email} of a deleted user"
            self._repair(report, what, partial(self._identities.delete, sign_in.sub))
        for sign_in in report.sign_ins_without_records:
            if sign_in.never_used:
                what = f"deleted the never-used sign-in {sign_in.sub} {sign_in.email}"
                self._repair(report, what, partial(self._identities.delete, sign_in.sub))
                continue
            now = utc_now()
            role = ADMIN if sign_in.sub in admins else MEMBER
            name = sign_in.name or sign_in.email.partition("@")[0]
            user = User(sign_in.sub, name, sign_in.email, now, now, 1, role=role, enabled=sign_in.enabled)
            what = f"made a record ({role}) for the sign-in {sign_in.sub} {sign_in.email}"
            self._repair(report, what, partial(self._repo.create, user, Write(new_write_token(), ACTOR, now)))
        for user, sign_in, differences in report.mismatches:

            def follow(user: User = user, sign_in: SignIn = sign_in) -> None:
                if email_key(sign_in.email) != email_key(user.email):
                    self._identities.set_email(user.user_id, user.email)
                self._identities.set_admin(user.user_id, user.role == ADMIN)
                self._identities.set_enabled(user.user_id, user.enabled)

            self._repair(report, f"{user.user_id}: the sign-in follows the record ({', '.join(differences)})", follow)
        stored, counted = self.check().admin_count  # the records just made count too
        if stored != counted:  # a count that agrees is left as it is: a repair of nothing writes nothing
            what = f"enabled-admin count set to {counted}"
            self._repair(report, what, partial(self._repo.set_admin_count, counted, was=stored))

    @staticmethod
    def _repair(report: Report, what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (AppError, EmailTaken, SignInMissing) as refused:
            report.fixed.append(f"could not fix now ({type(refused).__name__}): {what.split(': ', 1)[-1]}")
            return
        report.fixed.append(what)


def _local_stack(stack_file: Path) -> tuple[str, str, str, str]:
    info = json.loads(stack_file.read_text())
    return info["table_name"], info["user_pool_id"], info["aws_endpoint_url"], info["region"]


def _pool_by_name(cognito: Any, name: str) -> str:
    kwargs: dict[str, Any] = {"MaxResults": 60}
    while True:
        page = cognito.list_user_pools(**kwargs)
        for pool in page.get("UserPools", []):
            if pool["Name"] == name:
                return str(pool["Id"])
        if not page.get("NextToken"):
            raise SystemExit(f"no user pool named {name!r} in this account and region")
        kwargs["NextToken"] = page["NextToken"]


def run(stage: str, fix: bool, stack_file: Path, out: Callable[[str], None] = print) -> int:
    """Report (and with `fix`, repair) the drift of `stage`; 0 when nothing is left to report."""
    import boto3

    if stage == "local":
        if not stack_file.exists():
            raise SystemExit(f"{stack_file} not found: start the stack first with `make run`")
        from devstack.resources import emulator_client

        table, pool, endpoint, region = _local_stack(stack_file)
        dynamodb = emulator_client("dynamodb", endpoint, region)
        cognito = emulator_client("cognito-idp", endpoint, region)
    else:
        from infra.stages import load_stage

        settings = load_stage(stage)
        table = settings.table_name
        dynamodb, cognito = boto3.client("dynamodb"), boto3.client("cognito-idp")
        pool = _pool_by_name(cognito, settings.user_pool_name)
    drift = Drift(table, pool, dynamodb, cognito)
    report = drift.check()
    if fix and not report.clean:
        drift.fix(report)
        for line in report.fixed:
            out(f"fixed: {line}")
        report = drift.check()
    for line in report.lines():
        out(line)
    if report.clean:
        out(f"{stage}: sign-ins and records agree")
        return 0
    return 1


def main(stage: str, fix: bool) -> None:
    stack_file = Path(os.environ.get("STACK_FILE", Path(__file__).resolve().parent.parent / ".local" / "stack.json"))
    sys.exit(run(stage, fix, stack_file))
