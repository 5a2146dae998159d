"""Section "Search pages": the read units and requests of a page of GET /users for each filter and
sort, on a table of 100,000 users and on a table holding only that page's users.

"The empty table's figure", read as: a page of N users must cost the same whatever else the table
holds, so each page is measured twice, on the full table and on a table that holds exactly the
users of that page (and their email reservations), and the two must be within 10 %. A page that
cost more on the full table would be paying for users it does not show, which is what grows with
the table (a Scan with a filter does; a Query of one partition for a page does not).

How: the app's own DynamoUserRepository (chalicelib/adapters/dynamodb.py) pages through an
in-memory table that answers its requests through botocore (bench/search_table.py: DynamoDB's
semantics, held to moto by tests/integration/test_bench_search.py), filled directly with items in
the repository's own format (`user_to_item`), not through the API. Read units are counted from
what each request returned, as DynamoDB bills them: a Query on the total size of the items it
read, rounded up to 4 KB, halved for the eventually consistent reads every index read is; a
GetItem on its item's size, rounded up to 4 KB; at least one unit each. (moto's ConsumedCapacity
counts 0.5 per eventually consistent request whatever it returns: not what a bill says.)

Sets in `context.measured`: "search.<key>.read_units" and "search.<key>.requests" for each
filter (the full table's first page), and "search.item_bytes", the mean size of a user item;
the cost model prices a page at 10 million users from them.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.context import Context
from bench.report import Figure
from bench.search_table import IndexedTable, read_units
from chalicelib.adapters.dynamodb import DynamoUserRepository, user_to_item
from chalicelib.adapters.table_schema import EMAIL_KEY_PREFIX, SEARCH_INDEXES, STATE_ATTRIBUTE
from chalicelib.adapters.user_index import item_size
from chalicelib.domain.models import ADMIN, MEMBER, PAGE_DEFAULT, User, Write, email_key
from chalicelib.domain.search import UserQuery, sort_key

SECTION = "Search pages"
TABLE = "users-bench"
USERS = 100_000
QUICK_USERS = 10_000
SEED = 20260101
# The target: a page costs the same, within 10 %, whatever else the table holds.
TOLERANCE = 0.10
# A realistic directory: a few admins, some disabled users.
ADMIN_SHARE, DISABLED_SHARE = 0.05, 0.10
FIRST = (
    "Ada Alan Alice Amir Anna Ava Ben Bo Carla Chen Dana David Élodie Emma Erik Eva Farah Grace Hana Ian Ines "
    "Jana Jon José Julia Kai Karin Lea Leo Li Lin Lucía Maja Mara Mateo Mia Noah Nora Olga Omar Pia Raj Rosa Sam "
    "Sara Søren Tom Uma Vera Yara Yuki Zoë"
).split()
LAST = (
    "Abe Adams Akins Bauer Brown Chen Costa Dahl Dubois Díaz Eklund Fischer García Gupta Haas Hughes Ito Jansen "
    "Kim Kowalski Lee López Martin Meyer Müller Nakamura Nguyen Novak Olsen Park Patel Perez Quinn Rossi Sato "
    "Schmidt Silva Smith Straße Tanaka Torres Vogel Wagner Wang Weber Wilson Yamada Young Zimmer"
).split()


@dataclass(frozen=True)
class Case:
    key: str
    name: str
    query: UserQuery


def cases(users: list[User]) -> list[Case]:
    """Every filter alone, each sort, and combinations; the email cases name a user of the table."""
    someone = users[len(users) // 3]
    admin = next(user for user in users[len(users) // 2 :] if user.role == ADMIN)
    return [
        Case("newest", "default (newest first)", UserQuery()),
        Case("oldest", "sort=createdAt", UserQuery(sort="createdAt")),
        Case("name", "sort=name", UserQuery(sort="name")),
        Case("admins", "role=admin", UserQuery(role=ADMIN)),
        Case("members", "role=member", UserQuery(role=MEMBER)),
        Case("enabled", "enabled=true", UserQuery(enabled=True)),
        Case("disabled", "enabled=false", UserQuery(enabled=False)),
        Case("enabled_admins", "role=admin&enabled=true", UserQuery(role=ADMIN, enabled=True)),
        Case(
            "disabled_members_by_name",
            "role=member&enabled=false&sort=name",
            UserQuery(role=MEMBER, enabled=False, sort="name"),
        ),
        Case("q_name", "q=jo (name or email prefix)", UserQuery(q="jo")),
        Case("q_unicode", "q=SØR (a name prefix, folded)", UserQuery(q="SØR")),
        Case("q_email", "q=sara.k", UserQuery(q="sara.k")),
        Case("q_admins", "q=an&role=admin", UserQuery(q="an", role=ADMIN)),
        Case("q_disabled", "q=ma&enabled=false", UserQuery(q="ma", enabled=False)),
        Case("email", "email=<someone's, re-cased>", UserQuery(email=someone.email.upper())),
        Case("email_role", "email=<an admin's>&role=admin", UserQuery(email=admin.email, role=ADMIN)),
    ]


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def make_users(count: int, seed: int = SEED) -> list[User]:
    """`count` users of a plausible directory: names from two lists (some accented), an email made
    of them and a number, 5 % admins, 10 % disabled, created over three years."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable directory, not a secret
    start = datetime(2023, 1, 1, tzinfo=UTC)
    users = []
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        created = start + timedelta(milliseconds=rng.randrange(3 * 365 * 86_400_000))
        at = created.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        users.append(
            User(
                user_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                name=f"{first} {last}",
                email=f"{_ascii(first)}.{_ascii(last)}{n}@example.com",
                created_at=at,
                updated_at=at,
                version=1 + rng.randrange(5),
                phone=f"+1415555{n % 10_000:04d}" if rng.random() < 0.5 else None,
                role=ADMIN if rng.random() < ADMIN_SHARE else MEMBER,
                enabled=rng.random() >= DISABLED_SHARE,
            )
        )
    return users


def _items(users: list[User]) -> Iterator[dict[str, dict[str, Any]]]:
    """Each user's item as the repository writes it (with a create's stamps), and its reservation."""
    for user in users:
        write = Write(token=f"bench-{user.user_id[:13]}", actor="0" * 36, at=user.created_at)
        yield user_to_item(user, write, created=True)
        yield {"userId": {"S": EMAIL_KEY_PREFIX + email_key(user.email)}, "ownerId": {"S": user.user_id}}


def _client() -> Any:
    import boto3

    # The stand-in answers every request: no credentials are used, but botocore signs with some.
    session = boto3.session.Session(
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - a placeholder, nothing is sent
        region_name="us-east-1",
    )
    return session.client("dynamodb")


@dataclass
class Page:
    users: list[User]
    after: str | None
    read_units: float
    requests: int
    read: list[str]  # the user ids of every item the requests returned


def passed_over(query: UserQuery, page: Page, after: str | None, users: dict[str, User]) -> list[User]:
    """The users a q page read but did not list because it listed them on an earlier page, under
    their other key (their name and email both start with q): what the page reads besides its own
    users, at most as many as the page's size (chalicelib/adapters/user_index.py)."""
    if query.q is None or after is None:
        return []
    listed = {user.user_id for user in page.users}
    passed = {key for key in page.read if key not in listed and key in users}
    return [users[key] for key in sorted(passed) if sort_key(query, users[key]) <= after]


_CLIENTS: list[Any] = []


def _client_for(table: IndexedTable) -> Any:
    """A client answered by `table`: one client (its endpoint rules loaded once) moved from table to table."""
    if not _CLIENTS:
        _CLIENTS.append(_client())
    client = _CLIENTS[0]
    client.meta.events.unregister("before-send.dynamodb", unique_id="search-bench-table")
    client.meta.events.register("before-send.dynamodb", table, unique_id="search-bench-table")
    return client


def read_page(table: IndexedTable, query: UserQuery, limit: int, after: str | None) -> Page:
    repo = DynamoUserRepository(TABLE, client=_client_for(table))
    table.take()
    if query.email is not None:
        found = repo.find_by_email(email_key(query.email))
        users = [found] if found is not None and query.matches(found) else []
        last = None
    else:
        users, last = repo.search(query, limit, after)
    answered = table.take()
    read = [key for a in answered for key in a.keys]
    return Page(users, last, sum(a.read_units for a in answered), len(answered), read)


@dataclass
class Measured:
    case: Case
    full: list[Page]  # first page, and the next where there is one
    alone: list[Page]  # the same pages on tables holding only their users
    passed: list[int]  # per page: users a q page passed over (listed on an earlier page)

    def ratio(self, n: int = 0) -> float:
        return self.full[n].read_units / self.alone[n].read_units


def measure(
    users: list[User], limit: int = PAGE_DEFAULT, clock: Callable[[], float] = time.monotonic
) -> dict[str, Any]:
    started = clock()
    full = IndexedTable(_items(users))
    filled = clock() - started
    by_id = {user.user_id: user for user in users}
    results = []
    for case in cases(users):
        pages = [read_page(full, case.query, limit, None)]
        if pages[0].after is not None:
            pages.append(read_page(full, case.query, limit, pages[0].after))
        alone, passed = [], []
        for n, page in enumerate(pages):
            after = None if n == 0 else pages[0].after
            over = passed_over(case.query, page, after, by_id)
            only = IndexedTable(_items(page.users + over))
            alone.append(read_page(only, case.query, limit, after))
            passed.append(len(over))
            if [u.user_id for u in alone[-1].users] != [u.user_id for u in page.users]:
                raise RuntimeError(f"{case.name}: the page differs on a table holding only its users")
        results.append(Measured(case, pages, alone, passed))
    return {"results": results, "filled_s": filled, "users": len(users), "took_s": clock() - started}


def projection_costs(page: list[User]) -> dict[str, float]:
    """What one page would cost with each projection the indexes could have (docs/DESIGN.md):
    ALL (the users themselves), INCLUDE of the public fields, KEYS_ONLY and a BatchGetItem of the
    page (billed per item, at least half a unit each)."""
    items = [user_to_item(user, Write("x" * 22, "0" * 36, user.created_at), created=True) for user in page]
    public = ("userId", "name", "email", "phone", "role", "enabled", "createdAt", "updatedAt", "version")
    keys = ("userId", STATE_ATTRIBUTE, *SEARCH_INDEXES.values())
    include = [item_size({k: v for k, v in item.items() if k in public or k in keys}) for item in items]
    keys_only = [item_size({k: v for k, v in item.items() if k in keys}) for item in items]
    return {
        "ALL": read_units("Query", [item_size(item) for item in items], consistent=False),
        "INCLUDE": read_units("Query", include, consistent=False),
        "KEYS_ONLY + BatchGetItem": read_units("Query", keys_only, consistent=False)
        + sum(read_units("GetItem", [item_size(item)], consistent=False) for item in items),
    }


def store(measured: dict[str, Any], into: dict[str, float]) -> None:
    for result in measured["results"]:
        into[f"search.{result.case.key}.read_units"] = result.full[0].read_units
        into[f"search.{result.case.key}.requests"] = result.full[0].requests
    users = [u for r in measured["results"] for u in r.full[0].users]
    sizes = [item_size(user_to_item(u, Write("x" * 22, "0" * 36, u.created_at), created=True)) for u in users]
    into["search.item_bytes"] = sum(sizes) / len(sizes)


def run(context: Context) -> list[Figure]:
    count = QUICK_USERS if context.quick else USERS
    measured = measure(make_users(count))
    store(measured, context.measured)
    figures = []
    for result in measured["results"]:
        for n, (full, alone) in enumerate(zip(result.full, result.alone, strict=True)):
            ratio = full.read_units / alone.read_units
            which = "first page" if n == 0 else "next page"
            passed = (
                f" and the {result.passed[n]} users it passed over (listed on an earlier page under their other key)"
                if result.passed[n]
                else ""
            )
            figures.append(
                Figure(
                    section=SECTION,
                    name=f"{result.case.name}, {which}",
                    value=full.read_units,
                    unit="read units",
                    target=f"within {TOLERANCE:.0%} of the page-only table",
                    passed=abs(ratio - 1) <= TOLERANCE,
                    note=f"{count:,} users: {full.read_units:g} read units in {full.requests} requests for "
                    f"{len(full.users)} users; a table holding only them{passed}: {alone.read_units:g} units in "
                    f"{alone.requests} requests ({ratio:.2f}x)",
                )
            )
    default = measured["results"][0].full[0].users
    costs = projection_costs(default)
    figures.append(
        Figure(
            section=SECTION,
            name="default page with other projections",
            value=costs["ALL"],
            unit="read units",
            note="the first page of the default listing, priced as its items would be read with each projection: "
            + "; ".join(f"{name} {units:g}" for name, units in costs.items())
            + ". ALL is what the indexes use (docs/DESIGN.md, 'Finding users').",
        )
    )
    figures.append(
        Figure(
            section=SECTION,
            name="filling the table",
            value=measured["filled_s"],
            unit="s",
            note=f"{count:,} users written directly in the repository's item format (user_to_item), with their email "
            f"reservations, into the in-memory table; the whole section took {measured['took_s']:.1f} s",
        )
    )
    return figures


def ratios_within(measured: dict[str, Any], tolerance: float = TOLERANCE) -> list[str]:
    """The pages whose cost on the full table is not within `tolerance` of the page-only table's."""
    out = []
    for result in measured["results"]:
        for n in range(len(result.full)):
            if not math.isclose(result.ratio(n), 1.0, abs_tol=tolerance):
                out.append(f"{result.case.name} page {n + 1}: {result.ratio(n):.2f}x")
    return out
