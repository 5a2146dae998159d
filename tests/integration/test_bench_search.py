"""The search benchmark's fast version (bench/search_pages.py): its in-memory table answers as moto
does, and on a smaller table every filter's page costs what it costs on a table holding only that
page's users."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bench import search_pages
from bench.context import Context
from bench.search_table import IndexedTable
from chalicelib.adapters.dynamodb import DynamoUserRepository
from chalicelib.adapters.table_schema import SEARCH_INDEXES
from chalicelib.domain.search import UserQuery
from tests.integration.conftest import TABLE

USERS = search_pages.make_users(150, seed=11)


def _fill(ddb: Any) -> None:
    for item in search_pages._items(USERS):
        ddb.put_item(TableName=TABLE, Item=item)


def _stand_in() -> Any:
    return IndexedTable(search_pages._items(USERS)).install(search_pages._client())


def test_the_in_memory_table_answers_queries_as_moto_does(ddb: Any) -> None:
    """The same Query to both: the same items in the same order. The one difference is DynamoDB's:
    a Query that stops at its Limit says where (LastEvaluatedKey) even when nothing follows, and
    moto only when something does."""
    _fill(ddb)
    stand_in = _stand_in()
    rng = random.Random(5)
    items = [item for item in search_pages._items(USERS) if "listState" in item]
    for _ in range(120):
        index = rng.choice(sorted(SEARCH_INDEXES))
        attribute = SEARCH_INDEXES[index]
        partition = rng.choice(["admin#enabled", "admin#disabled", "member#enabled", "member#disabled"])
        low, high = sorted(item[attribute]["S"] for item in rng.sample(items, 2))
        shape = rng.choice(["all", "between", "from", "upto"])
        names = {"#p": "listState"}
        values: dict[str, Any] = {":p": {"S": partition}}
        condition = "#p = :p"
        if shape != "all":
            names["#k"] = attribute
        if shape == "between":
            condition += " AND #k BETWEEN :lo AND :hi"
            values.update({":lo": {"S": low}, ":hi": {"S": high}})
        elif shape == "from":
            condition += " AND #k >= :lo"
            values[":lo"] = {"S": low}
        elif shape == "upto":
            condition += " AND #k <= :hi"
            values[":hi"] = {"S": high}
        request = {
            "TableName": TABLE,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": rng.random() < 0.5,
            "Limit": rng.choice([1, 3, 6, 50]),
        }
        ours, moto = stand_in.query(**request), ddb.query(**request)
        assert [i["userId"] for i in ours["Items"]] == [i["userId"] for i in moto["Items"]], request
        assert ours["Items"] == moto["Items"]
        if "LastEvaluatedKey" in moto:
            assert ours["LastEvaluatedKey"] == moto["LastEvaluatedKey"]
        else:
            assert "LastEvaluatedKey" not in ours or len(ours["Items"]) == request["Limit"]


@pytest.mark.parametrize(
    "query",
    [UserQuery(), UserQuery(sort="name"), UserQuery(q="ma"), UserQuery(role="admin", q="an")],
    ids=lambda q: q.fingerprint().replace("\x1f", "|"),
)
def test_the_repository_walks_the_same_pages_on_both(ddb: Any, query: UserQuery) -> None:
    _fill(ddb)
    pages = {}
    for name, client in (("moto", ddb), ("stand-in", _stand_in())):
        repo, walked, after = DynamoUserRepository(TABLE, client=client), [], None
        while True:
            page, after = repo.search(query, 17, after)
            walked += [u.user_id for u in page]
            if after is None:
                break
        pages[name] = walked
    assert pages["moto"] == pages["stand-in"] and len(set(pages["moto"])) == len(pages["moto"])


def test_every_filters_page_costs_what_it_costs_on_a_table_of_only_its_users() -> None:
    measured = search_pages.measure(search_pages.make_users(1_500))
    assert search_pages.ratios_within(measured) == []
    keys = {result.case.key for result in measured["results"]}
    assert {"newest", "oldest", "name", "admins", "enabled", "q_name", "email", "email_role"} <= keys
    by_key = {result.case.key: result for result in measured["results"]}
    # One partition: one Query per page; an email: its reservation and its owner.
    assert by_key["enabled_admins"].full[0].requests == 1
    assert by_key["email"].full[0].requests == 2 and len(by_key["email"].full[0].users) == 1


def test_the_section_reports_every_filter_against_its_target(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_pages, "QUICK_USERS", 1_000)
    context = Context(workdir=tmp_path, quick=True)
    figures = search_pages.run(context)
    judged = [figure for figure in figures if figure.passed is not None]
    assert judged and all(figure.passed for figure in judged), [f.name for f in judged if not f.passed]
    assert context.measured["search.newest.requests"] >= 4  # one Query per role#enabled partition at least
    assert 300 < context.measured["search.item_bytes"] < 1024
