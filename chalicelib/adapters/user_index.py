"""The search indexes of the users table: the attributes a user item carries for them, and how a
page of a query is read from them (chalicelib/adapters/table_schema.py defines them; docs/DESIGN.md,
"Finding users", says why they are shaped so).

A page reads the partitions of the query's states (1, 2 or 4 of `role#enabled`; a `q` search reads
each of them twice, by name and by email) and merges them in the order of the query's sort key.
What it reads depends on the page, never on the rest of the table:
- a single partition is read with one Query of `Limit` = the page size;
- several partitions are first each read a few items (a chunk that stays under 4 KB, what one
  read unit covers); from then on the partition whose known part ends first is read up to the
  next item or known end of any other partition (a key range), at most as many items as the page
  still needs: everything such a Query returns belongs to the page. When such a range held less
  than a chunk (the partitions interleave), that partition's next read is a chunk again, to
  save requests. So every Query either returns only the page's own users or is a chunk, which
  costs half a unit whatever it holds: a page costs what it costs on a table that holds nothing
  else, and makes the same requests (bench/search_pages.py measures both).
The next page continues after the last user's sort key (its position), in every partition: a user
whose role or state changed meanwhile moved to another partition under the same key, so it is
neither read twice nor skipped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.adapters.table_schema import (
    BY_CREATED_INDEX,
    BY_EMAIL_INDEX,
    BY_NAME_INDEX,
    CREATED_ATTRIBUTE,
    EMAIL_ATTRIBUTE,
    NAME_ATTRIBUTE,
    STATE_ATTRIBUTE,
)
from chalicelib.domain.models import User
from chalicelib.domain.search import (
    SORT_NAME,
    SORT_NEWEST,
    UserQuery,
    email_prefix_key,
    matched_key,
    name_key,
    user_created_key,
    user_name_key,
)

Item = dict[str, dict[str, Any]]
# A Query: its parameters in, (items, whether DynamoDB stopped at Limit: LastEvaluatedKey) out.
QueryFn = Callable[..., dict[str, Any]]

# Items a first read of a partition asks for: with users of up to about 680 bytes, 6 stay within
# the 4 KB that one read unit covers, so the chunk costs half a unit however many it holds.
FIRST_CHUNK = 6
READ_UNIT_BYTES = 4096
# Above every character of a key (keys are ASCII where they are read backwards: creation times).
_TOP = "\U0010ffff"
# Immediately after a key in UTF-8 order: no key holds U+0000, so nothing sorts in between.
_NEXT = "\x01"


def item_size(item: Item) -> int:
    """The size DynamoDB bills an item at: attribute names plus values (strings in UTF-8, numbers
    about one byte per two digits plus one, booleans one byte)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        kind, data = next(iter(value.items()))
        if kind == "S":
            size += len(str(data).encode())
        elif kind == "N":
            size += (len(str(data).lstrip("-").replace(".", "")) + 1) // 2 + 1
        elif kind == "B":
            size += len(data)
        else:
            size += 1  # BOOL, NULL; user items hold no sets, lists or maps
    return size


def state(role: str, enabled: bool) -> str:
    """The partition a user is in: its role and whether it is enabled."""
    return f"{role}#{'enabled' if enabled else 'disabled'}"


def search_attributes(user: User) -> dict[str, str]:
    """The attributes the search indexes are keyed on (besides `emailKey`, which every user item
    has had from the start)."""
    return {
        STATE_ATTRIBUTE: state(user.role, user.enabled),
        CREATED_ATTRIBUTE: user_created_key(user),
        NAME_ATTRIBUTE: user_name_key(user),
    }


def _prefix_end(prefix: str) -> str | None:
    """The smallest string above every string starting with `prefix` (None: there is none)."""
    text = prefix.rstrip(_TOP)
    if not text:
        return None
    last = ord(text[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are not characters: skip to the next one
        last = 0xE000
    return text[:-1] + chr(last)


def _before(key: str) -> str:
    """The largest key below `key` among keys of ASCII characters (creation-time keys)."""
    return key[:-1] + chr(ord(key[-1]) - 1) + _TOP


@dataclass
class _Stream:
    """One partition of one index, read in the query's direction from a position on."""

    index: str
    sort_attribute: str
    partition: str
    kind: str  # "name" or "email" for a q search, else ""
    prefix: str | None = None
    buffer: deque[tuple[str, User]] = field(default_factory=deque)  # read, to emit, in order
    frontier: str | None = None  # every item up to it (in the query's direction) has been read
    done: bool = False
    # Its last read up to another partition's next item held less than a chunk (the partitions
    # interleave): its next read is a chunk rather than another short range, one request fewer.
    behind: bool = False

    def head(self) -> str | None:
        return self.buffer[0][0] if self.buffer else None


class PageReader:
    """Reads one page of a query from the search indexes through `query` (the repository's
    Query call, so it is timed, traced and its failures mapped like any other)."""

    def __init__(self, table: str, query: QueryFn, to_user: Callable[[Item], User | None]):
        self._table = table
        self._query = query
        self._to_user = to_user
        self._search = UserQuery()
        self._passed = 0  # items of this page's reads a q search passed over (listed under another key)

    def page(self, search: UserQuery, limit: int, after: str | None) -> tuple[list[User], str | None]:
        forward = search.q is not None or search.sort != SORT_NEWEST
        streams = list(self._streams(search, after))
        self._search = search
        self._passed = 0
        out: list[tuple[str, User]] = []
        # Where a page that stops early continues: everything up to it has been read and listed.
        resume: str | None = None

        def before(a: str, b: str) -> bool:  # a comes before b in the query's order
            return a < b if forward else a > b

        def best(keys: Iterable[str]) -> str | None:
            listed = list(keys)
            if not listed:
                return None
            return min(listed) if forward else max(listed)

        while len(out) < limit:
            live = [s for s in streams if not s.done]
            # Every live partition has been read up to `known` at least: what lies there is final.
            frontiers = [s.frontier for s in live]
            known: str | None = None
            if live and None not in frontiers:
                known = best(f for f in frontiers if f is not None)
            while len(out) < limit:
                heads = [s for s in streams if s.buffer]
                if not heads:
                    break
                first = (
                    min(heads, key=lambda s: s.head() or "") if forward else max(heads, key=lambda s: s.head() or "")
                )
                key, _ = first.buffer[0]
                if live and (known is None or before(known, key)):
                    break  # a live partition may still hold something before it
                out.append(first.buffer.popleft())
            if len(out) == limit or not live:
                break
            if self._passed >= limit and known is not None:
                # A q search passes over the second key of users it lists under the first (both
                # their name and email start with q). Many of them in a row (an "Anna" block of
                # names, then the block of their "anna." emails) would make one page read them all,
                # however many: it stops after as many as its size, shorter, and the next goes on.
                resume = known
                break
            lows = [s for s in live if s.frontier == known]
            if len(lows) == 1:
                low = lows[0]
                # Up to the nearest thing known in any other partition (its next item, or how far it
                # has been read): everything of `low` before it comes next, so all of it, up to what
                # the page still needs, belongs to the page.
                bounds = [
                    t.head() if t.buffer else t.frontier for t in streams if t is not low and (t.buffer or not t.done)
                ]
                upto = best(b for b in bounds if b is not None)
                if low.behind:
                    low.behind = False
                    self._read(low, forward, None, FIRST_CHUNK)
                else:
                    before_read = len(low.buffer)
                    self._read(low, forward, upto, limit - len(out))
                    low.behind = upto is not None and len(low.buffer) - before_read < FIRST_CHUNK and not low.done
            else:
                for stream in lows:
                    self._read(stream, forward, None, FIRST_CHUNK)
        if resume is not None:
            return [user for _, user in out], resume
        more = any(s.buffer or not s.done for s in streams)
        last = out[-1][0] if out and len(out) == limit and more else None
        return [user for _, user in out], last

    def _emitted(self, key: str, item: Item) -> User | None:
        """The user an item read under `key` is emitted as, or None: a q search finds a user under
        its smaller matching key only (once, even if both its name and its email match), so the
        other occurrence is dropped as it is read (it still moves its partition's frontier)."""
        user = self._to_user(item)
        if user is None or (self._search.q is not None and matched_key(self._search.q, user) != key):
            return None
        return user

    def _streams(self, search: UserQuery, after: str | None) -> Iterable[_Stream]:
        partitions = [state(role, enabled) for role, enabled in search.states()]
        if search.q is not None:
            email = email_prefix_key(search.q)
            for partition in partitions:
                yield _Stream(BY_NAME_INDEX, NAME_ATTRIBUTE, partition, "name", name_key(search.q), frontier=after)
                if email is not None:
                    yield _Stream(BY_EMAIL_INDEX, EMAIL_ATTRIBUTE, partition, "email", email, frontier=after)
            return
        index, attribute = (
            (BY_NAME_INDEX, NAME_ATTRIBUTE) if search.sort == SORT_NAME else (BY_CREATED_INDEX, CREATED_ATTRIBUTE)
        )
        for partition in partitions:
            yield _Stream(index, attribute, partition, "", frontier=after)

    def _read(self, stream: _Stream, forward: bool, upto: str | None, limit: int) -> None:
        """Read up to `limit` items of `stream` after its frontier and up to `upto` (inclusive;
        None: no bound)."""
        low: str | None
        high: str | None
        if forward:
            low = stream.frontier + _NEXT if stream.frontier is not None else None
            high = upto
            if stream.prefix is not None:
                low = max(low, stream.prefix) if low is not None else stream.prefix
                end = _prefix_end(stream.prefix)
                high = min(high, end) if high is not None and end is not None else (high or end)
        else:
            low, high = upto, (_before(stream.frontier) if stream.frontier is not None else None)
        if low is not None and high is not None and low > high:
            # Nothing can lie in between: no request needed.
            self._advance(stream, [], stopped=False, upto=upto)
            return
        names = {"#p": STATE_ATTRIBUTE}
        values: dict[str, Any] = {":p": {"S": stream.partition}}
        if low is not None or high is not None:
            names["#k"] = stream.sort_attribute
        condition = "#p = :p"
        if low is not None and high is not None:
            condition += " AND #k BETWEEN :lo AND :hi"
            values.update({":lo": {"S": low}, ":hi": {"S": high}})
        elif low is not None:
            condition += " AND #k >= :lo"
            values[":lo"] = {"S": low}
        elif high is not None:
            condition += " AND #k <= :hi"
            values[":hi"] = {"S": high}
        result = self._query(
            TableName=self._table,
            IndexName=stream.index,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ScanIndexForward=forward,
            Limit=limit,
        )
        items: list[Item] = result.get("Items", [])
        self._advance(stream, items, stopped="LastEvaluatedKey" in result, upto=upto)

    def _advance(self, stream: _Stream, items: list[Item], stopped: bool, upto: str | None) -> None:
        for item in items:
            key = item[stream.sort_attribute]["S"]
            # A key equal to the prefix's end (BETWEEN includes it) does not start with the prefix.
            if stream.prefix is not None and not key.startswith(stream.prefix):
                continue
            user = self._emitted(key, item)
            if user is not None:
                stream.buffer.append((key, user))
            else:
                self._passed += 1
        if stopped and items:
            stream.frontier = items[-1][stream.sort_attribute]["S"]
        elif upto is not None and (stream.prefix is None or not _beyond_prefix(stream.prefix, upto)):
            stream.frontier = upto  # everything up to the bound has been read
        else:
            stream.done = True


def _beyond_prefix(prefix: str, key: str) -> bool:
    """Whether every key starting with `prefix` comes before `key` (forward searches only)."""
    end = _prefix_end(prefix)
    return end is not None and key >= end
