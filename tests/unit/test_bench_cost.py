"""The benchmark's cost arithmetic and DynamoDB capacity accounting, on fixed inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import cost_model
from bench.context import Context
from bench.cost_model import GB, Operation, billed_ms, duration_ms, lambda_duration_usd, price
from bench.dynamodb_requests import Call, index_write_units, item_bytes, request_units


@pytest.mark.parametrize(
    ("duration", "billed"),
    [(0.0, 1), (0.2, 1), (1.0, 1), (4.0, 4), (4.000000000001, 4), (4.01, 5), (8.6, 9)],
)
def test_lambda_bills_whole_milliseconds_rounded_up_and_at_least_one(duration: float, billed: int) -> None:
    assert billed_ms(duration) == billed


def test_duration_is_scaled_cpu_time_plus_round_trips() -> None:
    operation = Operation(dynamodb_requests=2, read_units=1, write_units=4, pipeline_us=300)
    assert duration_ms(operation, cpu_scale=2.0, round_trip_ms=4.0) == pytest.approx(8.6)


def test_duration_charge_is_gb_seconds_at_the_list_price() -> None:
    # 512 MB for 5 ms: 0.5 GB x 0.005 s x $0.0000166667
    assert lambda_duration_usd(5, 512) == pytest.approx(4.166675e-08, rel=1e-12)
    assert lambda_duration_usd(1, 1024) == pytest.approx(1.66667e-08, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "size", "units"),
    [
        (Call("GetItem", consistent=True), 239, (1.0, 0.0)),
        (Call("GetItem", consistent=False), 239, (0.5, 0.0)),
        (Call("GetItem", consistent=True), 4097, (2.0, 0.0)),
        # A Query on what it returned: 50 items of 490 bytes = 24,500 bytes, 6 blocks of 4 KB, eventually
        # consistent; an empty answer still costs one block.
        (Call("Query", limit=50, returned=[490] * 50), 239, (3.0, 0.0)),
        (Call("Query", limit=6, returned=[]), 239, (0.5, 0.0)),
        (Call("UpdateItem"), 239, (0.0, 1.0)),
        (Call("UpdateItem"), 1025, (0.0, 2.0)),
        (Call("PutItem"), 1024, (0.0, 1.0)),
        (Call("DeleteItem"), 300, (0.0, 1.0)),
        (Call("TransactWriteItems", items=2), 239, (0.0, 4.0)),
        (Call("TransactWriteItems", items=3), 239, (0.0, 6.0)),
        (Call("TransactWriteItems", items=2), 1500, (0.0, 8.0)),
        (Call("TransactGetItems", items=2), 239, (4.0, 0.0)),
    ],
)
def test_request_units_follow_dynamodb_on_demand_rules(call: Call, size: int, units: tuple[float, float]) -> None:
    assert request_units(call, size) == units


def test_index_writes_count_each_index_an_item_enters_changes_in_or_leaves() -> None:
    """DynamoDB writes an item again in each index it is in: one write of the entry (per KB) when it
    enters, changes or leaves, two when its key there changes; nothing for an index it is not in."""
    user = {
        "userId": {"S": "u1"},
        "listState": {"S": "member#enabled"},
        "listCreated": {"S": "2026#u1"},
        "listName": {"S": "ada\x1fu1"},
        "emailKey": {"S": "ada@example.com"},
        "version": {"N": "1"},
    }
    reservation = {"userId": {"S": "EMAIL#ada@example.com"}, "ownerId": {"S": "u1"}}
    assert index_write_units({}, {"u1": user, "EMAIL#": reservation}) == 3  # enters 3 indexes
    touched = {**user, "version": {"N": "2"}}
    assert index_write_units({"u1": user}, {"u1": touched}) == 3  # changes in 3 (projection ALL)
    renamed = {**touched, "listName": {"S": "bo\x1fu1"}}
    assert index_write_units({"u1": touched}, {"u1": renamed}) == 2 + 1 + 1  # its name key moves
    disabled = {**renamed, "listState": {"S": "member#disabled"}}
    assert index_write_units({"u1": renamed}, {"u1": disabled}) == 6  # moves partition in all 3
    trace = {"userId": {"S": "u1"}, "deletedAt": {"S": "2026"}}
    assert index_write_units({"u1": disabled}, {"u1": trace}) == 3  # leaves all 3
    assert index_write_units({"EMAIL#": reservation}, {}) == 0  # in no index


def test_an_unpriced_kind_of_call_is_refused_rather_than_priced_at_zero() -> None:
    with pytest.raises(ValueError, match="BatchWriteItem"):
        request_units(Call("BatchWriteItem"), 100)


def test_call_reads_what_capacity_depends_on_from_the_request_body() -> None:
    body: dict[str, Any] = {"TransactItems": [{"Put": {}}, {"Delete": {}}, {"Put": {}}]}
    assert Call.of("TransactWriteItems", body) == Call("TransactWriteItems", items=3)
    assert Call.of("GetItem", {"ConsistentRead": True}) == Call("GetItem", consistent=True)
    assert Call.of("Scan", {"Limit": 51}) == Call("Scan", limit=51)


def test_item_size_counts_names_and_values() -> None:
    # names 6 + 4 + 7; values "abc" 3, "Ada" 3, number 12: (2 digits + 1) // 2 + 1 = 2
    assert item_bytes({"userId": {"S": "abc"}, "name": {"S": "Ada"}, "version": {"N": "12"}}) == 25
    assert item_bytes({"n": {"S": "\U0001f600"}}) == 5  # UTF-8 bytes, not characters


def operations() -> dict[str, Operation]:
    return {
        "get": Operation(dynamodb_requests=1, read_units=1, write_units=0, pipeline_us=200),
        "update": Operation(dynamodb_requests=1, read_units=0, write_units=1, pipeline_us=300),
        "delete": Operation(dynamodb_requests=2, read_units=1, write_units=4, pipeline_us=300),
    }


MIX = {"get": 0.5, "update": 0.25, "delete": 0.25}


def test_price_of_a_million_requests_of_a_mix() -> None:
    # 1 GB, CPU x2, 4 ms per DynamoDB request: get 0.4 + 4 = 4.4 -> 5 ms; update 0.6 + 4 -> 5 ms;
    # delete 0.6 + 8 = 8.6 -> 9 ms. Logs: exactly one GB per million requests.
    costs = price(operations(), MIX, memory_mb=1024, cpu_scale=2.0, round_trip_ms=4.0, log_bytes=GB / 1e6)
    assert costs.billed_ms == pytest.approx(0.5 * 5 + 0.25 * 5 + 0.25 * 9)  # 6.0
    # 1e6 x (0.75 x 5 ms + 0.25 x 9 ms) x 1 GB x $0.0000166667 = 6,000 GB-s
    assert costs.lambda_duration == pytest.approx(6000 * 0.0000166667, rel=1e-12)  # $0.1000002
    assert costs.dynamodb_reads == pytest.approx(0.75 * 0.125)  # 0.5 x 1 + 0.25 x 1 read units
    assert costs.dynamodb_writes == pytest.approx(1.25 * 0.625)  # 0.25 x 1 + 0.25 x 4 write units
    assert costs.logs == pytest.approx(0.50)
    assert costs.lambda_requests == 0.20
    common = 0.20 + 0.1000002 + 0.09375 + 0.78125 + 0.50
    assert costs.rest_total == pytest.approx(3.50 + common, rel=1e-12)  # $5.1750002
    assert costs.http_total == pytest.approx(1.00 + common, rel=1e-12)  # $2.6750002
    assert costs.ratio == pytest.approx(2.6750002 / 5.1750002, rel=1e-12)  # 0.5169


def test_the_mix_must_add_up_to_one() -> None:
    with pytest.raises(ValueError, match="add up to 1"):
        price(operations(), {"get": 0.5, "update": 0.25}, 512, 1.0, 4.0, 800)


def test_memory_comes_from_the_stage_then_the_config_then_chalices_default(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"lambda_memory_size": 256, "stages": {"prod": {"lambda_memory_size": 1024}}}))
    assert cost_model.lambda_memory_mb(config, "prod") == 1024
    assert cost_model.lambda_memory_mb(config, "dev") == 256
    config.write_text(json.dumps({"stages": {}}))
    assert cost_model.lambda_memory_mb(config, "prod") == 128


def test_access_log_line_is_sized_from_the_deployed_format(tmp_path: Path) -> None:
    limits = tmp_path / "limits.json"
    limits.write_text(json.dumps({"access_log_format": {"status": "$context.status", "x": "$context.unknown"}}))
    # {"status":"200","x":"xxxxxxxxxxxxxxxxxxxx"} and its newline
    assert cost_model.access_log_bytes(limits) == len('{"status":"200","x":"' + "x" * 20 + '"}') + 1


def test_section_prices_what_the_other_sections_measured(tmp_path: Path) -> None:
    context = Context(workdir=tmp_path)
    context.measured.update({"warm_get_us": 100.0, "warm_post_us": 200.0, "dynamodb.user_item_bytes": 239})
    units = {"get": (1, 1, 0), "list_page": (1, 1.5, 0), "update": (1, 0, 1), "create": (1, 0, 4), "delete": (2, 1, 4)}
    for name, (requests, read_units, write_units) in units.items():
        context.measured[f"dynamodb.{name}.requests"] = requests
        context.measured[f"dynamodb.{name}.read_units"] = read_units
        context.measured[f"dynamodb.{name}.write_units"] = write_units
    figures = {figure.name: figure for figure in cost_model.run(context)}
    assert all(figure.passed is None and not figure.target for figure in figures.values())
    # 70 % get, 10 % list, 10 % update, 5 % create, 5 % delete
    reads = 0.7 * 1 + 0.1 * 1.5 + 0.05 * 1
    writes = 0.1 * 1 + 0.05 * 4 + 0.05 * 4
    assert figures["DynamoDB reads"].value == pytest.approx(reads * 0.125)
    assert figures["DynamoDB writes"].value == pytest.approx(writes * 0.625)
    # 512 MB: CPU x 1769/512; get 0.1 ms x 3.455 + 4 -> 5 ms, a write 0.2 x 3.455 + 4 -> 5 ms, delete + 4 -> 9 ms
    assert math.isclose(figures["Lambda billed duration, mix average"].value, 0.95 * 5 + 0.05 * 9)
    rest, http = figures["total, REST API"].value, figures["total, HTTP API"].value
    assert rest - http == pytest.approx(2.50)
    assert figures["HTTP API / REST API"].value == pytest.approx(http / rest)
    assert "ASSUMED 4 ms" in figures["Lambda duration"].note
    assert "NO warm pipeline time" not in figures["Lambda duration"].note


def test_the_change_consumer_per_million_changes_one_per_invocation() -> None:
    # 256 MB, CPU x2, 4 ms per request: 0.5 x 2 + 3 x 4 = 13 ms billed per change.
    costs = cost_model.consumer_price(1, memory_mb=256, cpu_scale=2.0, round_trip_ms=4.0)
    assert costs.billed_ms == 13
    assert costs.lambda_requests == pytest.approx(0.20)
    # 1e6 x 13 ms x 0.25 GB = 3,250 GB-s
    assert costs.lambda_duration == pytest.approx(3250 * 0.0000166667, rel=1e-12)
    assert costs.eventbridge == 1.00  # one custom event per change
    assert costs.audit_reads == pytest.approx(0.125)  # one strongly consistent GetItem
    assert costs.audit_writes == pytest.approx(0.625)  # one PutItem
    assert costs.logs == pytest.approx((330 + 130) * 1e6 / GB * 0.50)
    assert costs.total == pytest.approx(0.20 + 3250 * 0.0000166667 + 1.00 + 0.125 + 0.625 + costs.logs)


def test_batches_divide_the_invocations_not_the_per_change_work() -> None:
    alone = cost_model.consumer_price(1, 256, 2.0, 4.0)
    batched = cost_model.consumer_price(10, 256, 2.0, 4.0)
    assert batched.lambda_requests == pytest.approx(alone.lambda_requests / 10)
    assert batched.billed_ms == 130  # ten changes' work in one invocation
    assert (batched.eventbridge, batched.audit_reads, batched.audit_writes) == (
        alone.eventbridge,
        alone.audit_reads,
        alone.audit_writes,
    )
    assert batched.total < alone.total


def test_the_consumers_memory_is_its_own_setting(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"lambda_memory_size": 512, "stages": {"prod": {"lambda_functions": {"f": {"lambda_memory_size": 256}}}}}
        )
    )
    assert cost_model.lambda_memory_mb(config, "prod", "f") == 256
    assert cost_model.lambda_memory_mb(config, "prod", "g") == 512
    assert cost_model.lambda_memory_mb(config, "prod") == 512
