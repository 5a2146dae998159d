"""Finding users on the emulator: what each filter and sort reads (Queries of the search indexes,
never a Scan), paging that neither skips nor repeats a user while others change, and a property
test: for random users and random queries, a walk of pages returns exactly the matching users in
the query's order, each once (the order the in-memory repository computes from the domain's keys).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.dynamodb import DynamoUserRepository
from chalicelib.adapters.table_schema import SEARCH_INDEXES, create_table_kwargs
from chalicelib.adapters.user_index import FIRST_CHUNK
from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.domain.models import ADMIN, MEMBER, User, UserChanges, Write, new_write_token
from chalicelib.domain.search import SORTS, UserQuery, sort_key
from tests.integration.conftest import TABLE
from tests.unit.fakes import FakeUserRepository

NOW = "2026-01-01T00:00:00.000Z"


def w(at: str = NOW) -> Write:
    return Write(new_write_token(), "tester", at)


def person(n: int, name: str = "", email: str = "", role: str = MEMBER, enabled: bool = True) -> User:
    at = f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z"
    user_id = f"00000000-0000-4000-8000-{n:012d}"
    return User(user_id, name or f"User {n}", email or f"user{n}@example.com", at, at, 1, role=role, enabled=enabled)


class Reads:
    """Every DynamoDB request: (operation, index) and the items each Query returned."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.returned: list[int] = []

    def before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.requests.append((model.name, params.get("IndexName")))

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        if "Items" in parsed:
            self.returned.append(len(parsed["Items"]))

    def take(self) -> list[tuple[str, str | None]]:
        taken, self.requests, self.returned = self.requests, [], []
        return taken


@pytest.fixture
def reads(ddb: Any) -> Iterator[Reads]:
    recorder = Reads()
    ddb.meta.events.register("before-parameter-build.dynamodb", recorder.before)
    ddb.meta.events.register("after-call.dynamodb", recorder.after)
    yield recorder
    ddb.meta.events.unregister("before-parameter-build.dynamodb", recorder.before)
    ddb.meta.events.unregister("after-call.dynamodb", recorder.after)


def walk(repo: Any, query: UserQuery, limit: int, between: Any = None) -> list[list[User]]:
    pages: list[list[User]] = []
    after: str | None = None
    while True:
        page, after = repo.search(query, limit, after)
        pages.append(page)
        if after is None:
            return pages
        assert len(pages) < 500, "paging does not terminate"
        if between is not None:
            between(len(pages))


def expected(users: list[User], query: UserQuery) -> list[str]:
    """The domain's own answer: the matching users in the query's order."""
    newest_first = query.q is None and query.sort == "-createdAt"
    matching = [user for user in users if query.matches(user)]
    return [u.user_id for u in sorted(matching, key=lambda u: sort_key(query, u), reverse=newest_first)]


# --- what each filter reads -------------------------------------------------------------------


QUERIES = [
    UserQuery(),
    UserQuery(sort="createdAt"),
    UserQuery(sort="name"),
    UserQuery(role=ADMIN),
    UserQuery(enabled=False),
    UserQuery(role=MEMBER, enabled=True),
    UserQuery(role=ADMIN, enabled=False, sort="name"),
    UserQuery(q="us"),
    UserQuery(q="user1", role=MEMBER),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.fingerprint().replace("\x1f", "|"))
def test_every_filter_and_sort_is_queries_of_the_search_indexes_never_a_scan(
    repo: DynamoUserRepository, reads: Reads, query: UserQuery
) -> None:
    users = [repo.create(person(n, role=ADMIN if n % 5 == 0 else MEMBER, enabled=n % 7 != 0), w()) for n in range(40)]
    reads.take()
    pages = walk(repo, query, 7)
    requests = reads.take()
    assert {operation for operation, _ in requests} == {"Query"}
    index = "usersByName" if query.q is not None or query.sort == "name" else "usersByCreated"
    assert {name for _, name in requests} <= set(SEARCH_INDEXES) and index in {name for _, name in requests}
    assert [u.user_id for page in pages for u in page] == expected(users, query)
    partitions = len(query.states())
    if partitions == 1 and query.q is None:
        # One partition: one Query of exactly a page for each page.
        assert len(requests) == len(pages)


def test_a_page_of_one_state_is_one_query_of_the_page_whatever_the_table_holds(
    repo: DynamoUserRepository, reads: Reads
) -> None:
    for n in range(60):
        repo.create(person(n, role=ADMIN if n % 3 == 0 else MEMBER), w())
    reads.take()
    page, _ = repo.search(UserQuery(role=MEMBER, enabled=True), 10, None)
    assert reads.take() == [("Query", "usersByCreated")] and len(page) == 10


def test_a_merged_page_reads_past_its_users_only_in_first_chunks(repo: DynamoUserRepository, reads: Reads) -> None:
    """All users: four partitions. What the Queries return beyond the page's own users is at most a
    first chunk per partition (each under 4 KB: half a read unit whatever it holds)."""
    for n in range(64):
        repo.create(person(n, role=ADMIN if n % 4 == 0 else MEMBER, enabled=n % 3 != 0), w())
    reads.take()
    page, _ = repo.search(UserQuery(), 20, None)
    requests = reads.take()
    assert len(page) == 20 and {op for op, _ in requests} == {"Query"}
    assert sum(reads.returned) <= 20 + 4 * FIRST_CHUNK


def test_an_email_is_two_reads_and_no_query(repo: DynamoUserRepository, reads: Reads) -> None:
    for n in range(30):
        repo.create(person(n), w())
    reads.take()
    assert repo.find_by_email("user7@example.com") == person(7)
    assert reads.take() == [("GetItem", None), ("GetItem", None)]
    assert repo.find_by_email("nobody@example.com") is None
    assert reads.take() == [("GetItem", None)]


def test_an_index_that_is_missing_or_backfilling_makes_the_search_unavailable(ddb: Any) -> None:
    """During an upgrade (docs/DEPLOY.md) an index may not exist yet: 503, not a 500 or a 400."""
    kwargs = create_table_kwargs("users-before-upgrade")
    kwargs["GlobalSecondaryIndexes"] = [i for i in kwargs["GlobalSecondaryIndexes"] if i["IndexName"] != "usersByName"]
    kwargs["AttributeDefinitions"] = [a for a in kwargs["AttributeDefinitions"] if a["AttributeName"] != "listName"]
    ddb.create_table(**kwargs)
    repo = DynamoUserRepository("users-before-upgrade", client=ddb)
    repo.create(person(1), w())
    assert repo.search(UserQuery(), 10, None)[0] == [person(1)]
    with pytest.raises(ServiceUnavailable):
        repo.search(UserQuery(sort="name"), 10, None)
    with pytest.raises(ClientError):  # anything else is not hidden
        ddb.query(TableName=TABLE, IndexName="usersByCreated", KeyConditionExpression="nonsense")


# --- paging while others write ------------------------------------------------------------------


def test_no_user_is_skipped_or_repeated_while_others_change_role_state_name_and_email(
    repo: DynamoUserRepository,
) -> None:
    """Newest or oldest first, filtered by nothing: a user whose role or state changes mid-walk
    moves to another partition under the same creation key, so the walk still finds it once."""
    users = [repo.create(person(n, role=ADMIN if n % 4 == 0 else MEMBER), w()) for n in range(28)]
    rng = random.Random(7)
    current = {user.user_id: user for user in users}

    def churn(_: int) -> None:
        for user_id in rng.sample(sorted(current), 4):
            user = current[user_id]
            changes = UserChanges(
                role=MEMBER if user.role == ADMIN else ADMIN,
                enabled=not user.enabled,
                name=f"Renamed {rng.randrange(1000)}",
                email=f"moved{rng.randrange(10**9)}@example.com",
            )
            current[user_id] = repo.change(user, changes, w("2026-02-01T00:00:00.000Z"))

    for sort in ("-createdAt", "createdAt"):
        seen = [u.user_id for page in walk(repo, UserQuery(sort=sort), 5, churn) for u in page]
        assert Counter(seen) == Counter(current.keys()), sort
        assert seen == expected(list(current.values()), UserQuery(sort=sort))


def test_a_name_sorted_walk_finds_every_user_not_renamed_meanwhile_exactly_once(repo: DynamoUserRepository) -> None:
    """By name, a rename moves the user in the order: it may be listed twice (renamed past the
    walk's position) or not at all (renamed behind it). Everyone else is listed exactly once."""
    users = [repo.create(person(n, name=f"{chr(ord('a') + n % 26)}{n}"), w()) for n in range(40)]
    renamed: set[str] = set()
    current = {user.user_id: user for user in users}
    rng = random.Random(3)

    def rename_and_toggle(_: int) -> None:
        for user_id in rng.sample(sorted(current), 3):
            user = current[user_id]
            if rng.random() < 0.5:
                current[user_id] = repo.change(user, UserChanges(enabled=not user.enabled), w())
            else:
                renamed.add(user_id)
                current[user_id] = repo.change(user, UserChanges(name=rng.choice("azm") + user.name), w())

    seen = Counter(u.user_id for page in walk(repo, UserQuery(sort="name"), 3, rename_and_toggle) for u in page)
    for user_id in current:
        if user_id not in renamed:
            assert seen[user_id] == 1, user_id
        else:
            assert seen[user_id] <= 2


def test_a_role_filtered_walk_lists_each_user_that_kept_the_role_exactly_once(repo: DynamoUserRepository) -> None:
    users = [repo.create(person(n, role=ADMIN), w()) for n in range(30)]
    current = {user.user_id: user for user in users}
    toggled: set[str] = set()
    order = iter(sorted(current))

    def toggle_states(_: int) -> None:
        # Disabling keeps them admins: still matching, now in the admin#disabled partition.
        for user_id in itertools.islice(order, 4):
            current[user_id] = repo.change(current[user_id], UserChanges(enabled=False), w())
            toggled.add(user_id)

    seen = [u.user_id for page in walk(repo, UserQuery(role=ADMIN), 4, toggle_states) for u in page]
    assert Counter(seen) == Counter(current.keys())
    assert toggled


def test_a_q_page_passes_over_at_most_its_size_of_users_listed_under_their_other_key(
    repo: DynamoUserRepository, reads: Reads
) -> None:
    """Users whose name and email both start with q are listed once, under the smaller key; the
    other is read and passed over. A block of them (Annas, then their anna. emails) is not read in
    one page: a page stops after as many as its size, shorter, and the walk goes on."""
    users = [repo.create(person(n, name=f"Anna {n:03d}", email=f"anna.{n:03d}@example.com"), w()) for n in range(40)]
    reads.take()
    pages = walk(repo, UserQuery(q="anna"), 5)
    requests = reads.take()
    assert [u.user_id for page in pages for u in page] == [u.user_id for u in users]
    assert len(requests) <= len(pages) * (2 + 10)
    assert all(len(page) <= 5 for page in pages)


# --- the property --------------------------------------------------------------------------------

NAMES = st.text(alphabet="aAbBéÉßsS ", min_size=1, max_size=6).filter(lambda t: t.strip() != "")
EMAILS = st.from_regex(r"[ab]{1,4}\.?[ab]{0,3}@[ab]\.example", fullmatch=True)


@st.composite
def directories(draw: st.DrawFn) -> list[User]:
    count = draw(st.integers(min_value=0, max_value=14))
    users = []
    emails = draw(st.lists(EMAILS, min_size=count, max_size=count, unique_by=str.lower))
    for n, email in enumerate(emails):
        at = f"2026-01-01T00:00:{draw(st.integers(0, 3)):02d}.000Z"  # ties in time: the id breaks them
        users.append(
            User(
                f"{n:08x}-0000-4000-8000-{draw(st.integers(0, 10**6)):012d}",
                draw(NAMES),
                email,
                at,
                at,
                1,
                role=draw(st.sampled_from([ADMIN, MEMBER])),
                enabled=draw(st.booleans()),
            )
        )
    return users


QUERIES_DRAWN = st.builds(
    UserQuery,
    q=st.none() | st.sampled_from(["ab", "ba", "a.", "Ab", "ss", "ß", "bé", "ÉA", "a "]).filter(lambda q: len(q) >= 1),
    role=st.none() | st.sampled_from([ADMIN, MEMBER]),
    enabled=st.none() | st.booleans(),
    sort=st.sampled_from(SORTS),
)
_tables = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=directories(), query=QUERIES_DRAWN, limit=st.integers(min_value=1, max_value=5))
def test_paging_returns_exactly_the_matching_users_in_order_each_once(
    ddb: Any, users: list[User], query: UserQuery, limit: int
) -> None:
    if query.q is not None:
        query = replace(query, sort="-createdAt")  # a q search has its own order
    table = f"users-prop-{next(_tables)}"
    ddb.create_table(**create_table_kwargs(table))
    repo, fake = DynamoUserRepository(table, client=ddb), FakeUserRepository()
    for user in users:
        repo.create(user, w())
        fake.seed(user)
    pages = walk(repo, query, limit)
    listed = [u.user_id for page in pages for u in page]
    assert listed == expected(users, query)
    assert listed == [u.user_id for page in walk(fake, query, limit) for u in page]
    # Every page but the last is full (a q search's may be shorter only after passing over users).
    if query.q is None:
        assert all(len(page) == limit for page in pages[:-1])
    ddb.delete_table(TableName=table)
