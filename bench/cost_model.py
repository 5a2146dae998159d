"""Section "Cost per million requests": API Gateway, Lambda, DynamoDB and CloudWatch Logs for one
million requests of a stated mix, on a REST API (what this deployment uses) and on an HTTP API;
and what the change consumer adds per million changes to users (Lambda, EventBridge, the audit
table; reading the stream is free for a Lambda trigger).

Runs last: it prices what the other sections measured. Reads from `context.measured`:
- "warm_get_us", "warm_post_us" (request_overhead): the warm pipeline time per request on this
  machine; stated defaults when absent (e.g. `--only cost_model`);
- "dynamodb.OP.requests", "dynamodb.OP.read_units", "dynamodb.OP.write_units" (dynamodb_requests);
  measured here, on moto, when absent;
- "search.KEY.read_units", "search.KEY.requests", "search.item_bytes" (search_pages): a page of
  GET /users per filter, which costs the same whatever the table holds, priced at 10 million
  users with the indexes' storage; measured here on a smaller table when absent.
Sets nothing. Every price is a list price; nothing here is checked against a bill.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.context import PACKAGE_STAGE, PROJECT_DIR, Context
from bench.report import Figure
from chalicelib.domain.models import PAGE_DEFAULT

SECTION = "Cost per million requests"

# --- Prices: us-east-1 list prices in USD, first tier, as of this writing (not checked against a bill) ---
REST_API_PER_MILLION = 3.50  # API Gateway REST API, per million requests (first 333 million a month)
HTTP_API_PER_MILLION = 1.00  # API Gateway HTTP API, per million requests of up to 512 KB (first 300 million)
LAMBDA_PER_MILLION = 0.20  # Lambda, per million invocations
LAMBDA_GB_SECOND = 0.0000166667  # Lambda duration on x86, per GB-second, billed per 1 ms
DYNAMODB_READ_PER_MILLION = 0.125  # DynamoDB on demand, per million read request units
DYNAMODB_WRITE_PER_MILLION = 0.625  # DynamoDB on demand, per million write request units
DYNAMODB_STORAGE_GB_MONTH = 0.25  # DynamoDB Standard table class, per GB-month (first 25 GB free: ignored)
# DynamoDB adds 100 bytes of overhead to each item it stores, in the table and in each index.
DYNAMODB_ITEM_OVERHEAD_BYTES = 100
# The directory size the issue prices a search page at.
DIRECTORY_USERS = 10_000_000
LOGS_PER_GB = 0.50  # CloudWatch Logs, per GB ingested (standard log class)
EVENTBRIDGE_PER_MILLION = 1.00  # EventBridge, per million custom events published (each up to 64 KB)
DYNAMODB_STREAM_READS_FOR_LAMBDA = 0.0  # GetRecords by a Lambda trigger is not billed
GB = 1024**3  # AWS bills data in binary gigabytes

# --- Assumptions ---
# What a million requests are made of: mostly reads, as for a user directory. Updates keep the email.
MIX = {"get": 0.70, "list_page": 0.10, "update": 0.10, "create": 0.05, "delete": 0.05}
# Which measured pipeline time each operation is priced at (request_overhead times GET and POST).
PIPELINE = {"get": "get", "list_page": "get", "update": "post", "create": "post", "delete": "post"}
# ASSUMED: the wait for one DynamoDB answer from a Lambda function in the same region. botocore's
# CPU work (serialising, signing, parsing) is in the measured request time, which the request
# overhead section takes against its stand-in. Nothing here reaches AWS.
DYNAMODB_ROUND_TRIP_MS = 4.0
# Used when request_overhead has not run: a deliberately high guess, in µs on this machine.
DEFAULT_WARM_US = {"get": 500.0, "post": 500.0}
# Lambda gives a function one full vCPU at 1,769 MB and a proportional share below that.
FULL_VCPU_MB = 1769
CHALICE_DEFAULT_MEMORY_MB = 128
# ESTIMATED bytes of CloudWatch Logs one request writes, by source (the access log is computed).
LOG_BYTES = {
    "Lambda START, END and REPORT lines (X-Ray trace id included)": 330,
    # about 640 bytes measured for a GET; a call's latency metric adds about 100
    "the app's request line, which is also its EMF metrics": 750,
}
# Typical values of the access log's variables, to size one line of infra/limits.json's format.
_ACCESS_LOG_SAMPLES = {
    "$context.requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "$context.identity.sourceIp": "203.0.113.42",
    "$context.identity.caller": "-",
    "$context.identity.user": "-",
    "$context.requestTime": "01/Jan/2025:12:00:00 +0000",
    "$context.httpMethod": "GET",
    "$context.resourcePath": "/users/{userId}",
    "$context.status": "200",
    "$context.protocol": "HTTP/1.1",
    "$context.responseLength": "260",
}


# --- The change consumer (chalicelib/domain/change_consumer.py), per change to a user ---
# Its DynamoDB and EventBridge requests for one change: GetItem (is the entry written?), PutEvents,
# PutItem; and the request units: one strongly consistent read and one write of an entry < 1 KB.
CONSUMER_CALLS_PER_CHANGE = 3
CONSUMER_READ_UNITS_PER_CHANGE = 1.0
CONSUMER_WRITE_UNITS_PER_CHANGE = 1.0
# ASSUMED: CPU time to read one record and shape its event and entry, generously (the API's whole
# warm pipeline measures well under 0.1 ms per request).
CONSUMER_CPU_MS_PER_CHANGE = 0.5
# Conservative: a quiet table delivers each change in its own batch (one invocation per change);
# under load the mapping batches up to 100 records, which divides the invocations and their logs.
CONSUMER_RECORDS_PER_INVOCATION = 1
# ESTIMATED log bytes: START/END/REPORT per invocation, and the consumer's "change event" line per change.
CONSUMER_LOG_BYTES_PER_INVOCATION = 330
CONSUMER_LOG_BYTES_PER_CHANGE = 130


@dataclass(frozen=True)
class ConsumerCosts:
    """USD per million changes (billed_ms: per invocation)."""

    lambda_requests: float
    lambda_duration: float
    billed_ms: float
    eventbridge: float
    audit_reads: float
    audit_writes: float
    logs: float

    @property
    def total(self) -> float:
        return (
            self.lambda_requests
            + self.lambda_duration
            + self.eventbridge
            + self.audit_reads
            + self.audit_writes
            + self.logs
        )


def consumer_price(
    records_per_invocation: int, memory_mb: int, cpu_scale: float, round_trip_ms: float
) -> ConsumerCosts:
    """What the consumer costs for a million changes delivered `records_per_invocation` at a time."""
    invocations = 1_000_000 / records_per_invocation
    per_change_ms = CONSUMER_CPU_MS_PER_CHANGE * cpu_scale + CONSUMER_CALLS_PER_CHANGE * round_trip_ms
    billed = billed_ms(per_change_ms * records_per_invocation)
    log_bytes = invocations * CONSUMER_LOG_BYTES_PER_INVOCATION + 1_000_000 * CONSUMER_LOG_BYTES_PER_CHANGE
    return ConsumerCosts(
        lambda_requests=invocations / 1_000_000 * LAMBDA_PER_MILLION,
        lambda_duration=invocations * lambda_duration_usd(billed, memory_mb),
        billed_ms=billed,
        eventbridge=EVENTBRIDGE_PER_MILLION,
        audit_reads=CONSUMER_READ_UNITS_PER_CHANGE * DYNAMODB_READ_PER_MILLION,
        audit_writes=CONSUMER_WRITE_UNITS_PER_CHANGE * DYNAMODB_WRITE_PER_MILLION,
        logs=log_bytes / GB * LOGS_PER_GB,
    )


@dataclass(frozen=True)
class Operation:
    """What one request of an operation costs to serve."""

    dynamodb_requests: float
    read_units: float
    write_units: float
    pipeline_us: float  # warm pipeline time measured on this machine


@dataclass(frozen=True)
class Costs:
    """USD per million requests of the mix (billed_ms: the mix's average billed Lambda duration)."""

    rest_api: float
    http_api: float
    lambda_requests: float
    lambda_duration: float
    billed_ms: float
    dynamodb_reads: float
    dynamodb_writes: float
    logs: float

    @property
    def common(self) -> float:
        """Everything but the gateway."""
        return self.lambda_requests + self.lambda_duration + self.dynamodb_reads + self.dynamodb_writes + self.logs

    @property
    def rest_total(self) -> float:
        return self.rest_api + self.common

    @property
    def http_total(self) -> float:
        return self.http_api + self.common

    @property
    def ratio(self) -> float:
        return self.http_total / self.rest_total


def billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the whole millisecond, 1 ms at least."""
    # Rounded first, so 4.000000000001 (float noise) bills 4 ms, not 5.
    return max(1, math.ceil(round(duration_ms, 6)))


def duration_ms(operation: Operation, cpu_scale: float, round_trip_ms: float) -> float:
    """Time one request runs on Lambda: the pipeline's CPU time, stretched by the CPU share, plus
    the DynamoDB round trips it waits for."""
    return operation.pipeline_us / 1000 * cpu_scale + operation.dynamodb_requests * round_trip_ms


def lambda_duration_usd(billed: int, memory_mb: int) -> float:
    """The duration charge of one invocation billed `billed` ms at `memory_mb`."""
    return memory_mb / 1024 * billed / 1000 * LAMBDA_GB_SECOND


def price(
    operations: Mapping[str, Operation],
    mix: Mapping[str, float],
    memory_mb: int,
    cpu_scale: float,
    round_trip_ms: float,
    log_bytes: float,
) -> Costs:
    if not math.isclose(sum(mix.values()), 1.0):
        raise ValueError(f"the mix must add up to 1, not {sum(mix.values())}")
    billed = {name: billed_ms(duration_ms(operations[name], cpu_scale, round_trip_ms)) for name in mix}
    per_request = sum(share * lambda_duration_usd(billed[name], memory_mb) for name, share in mix.items())
    reads = sum(share * operations[name].read_units for name, share in mix.items())
    writes = sum(share * operations[name].write_units for name, share in mix.items())
    return Costs(
        rest_api=REST_API_PER_MILLION,
        http_api=HTTP_API_PER_MILLION,
        lambda_requests=LAMBDA_PER_MILLION,
        lambda_duration=per_request * 1_000_000,
        billed_ms=sum(share * billed[name] for name, share in mix.items()),
        dynamodb_reads=reads * DYNAMODB_READ_PER_MILLION,
        dynamodb_writes=writes * DYNAMODB_WRITE_PER_MILLION,
        logs=log_bytes * 1_000_000 / GB * LOGS_PER_GB,
    )


def lambda_memory_mb(
    config_file: Path = PROJECT_DIR / ".chalice" / "config.json",
    stage: str = PACKAGE_STAGE,
    function: str | None = None,
) -> int:
    """`lambda_memory_size` of the function in the stage (when named), else of the stage, else of
    the config, else Chalice's default."""
    config = json.loads(config_file.read_text())
    stage_config = config.get("stages", {}).get(stage, {})
    default = int(stage_config.get("lambda_memory_size", config.get("lambda_memory_size", CHALICE_DEFAULT_MEMORY_MB)))
    if function is None:
        return default
    return int(stage_config.get("lambda_functions", {}).get(function, {}).get("lambda_memory_size", default))


def access_log_bytes(limits_file: Path = PROJECT_DIR / "infra" / "limits.json") -> int:
    """One API Gateway access log line in the deployed format, with typical values."""
    line = json.loads(limits_file.read_text())["access_log_format"]
    filled = {key: _ACCESS_LOG_SAMPLES.get(value, "x" * 20) for key, value in line.items()}
    return len(json.dumps(filled, separators=(",", ":")).encode()) + 1


def _operations(measured: Mapping[str, float]) -> dict[str, Operation]:
    return {
        name: Operation(
            dynamodb_requests=measured[f"dynamodb.{name}.requests"],
            read_units=measured[f"dynamodb.{name}.read_units"],
            write_units=measured[f"dynamodb.{name}.write_units"],
            pipeline_us=measured.get(f"warm_{PIPELINE[name]}_us", DEFAULT_WARM_US[PIPELINE[name]]),
        )
        for name in MIX
    }


def _usd(value: float) -> str:
    return f"${value:,.4f}".rstrip("0").rstrip(".") if value < 0.01 else f"${value:,.2f}"


def run(context: Context) -> list[Figure]:
    counted = "the DynamoDB requests section"
    if "dynamodb.get.requests" not in context.measured:
        from bench import dynamodb_requests

        dynamodb_requests.store(dynamodb_requests.measure(), context.measured)
        counted = "counted here on moto, as the DynamoDB requests section does (it did not run)"
    timed = "warm request CPU times (pipeline and botocore) measured by the request overhead section"
    if any(f"warm_{kind}_us" not in context.measured for kind in ("get", "post")):
        timed = (
            f"NO warm pipeline time measured (the request overhead section did not run): ASSUMED "
            f"{DEFAULT_WARM_US['get']:g} µs per GET and {DEFAULT_WARM_US['post']:g} µs per write on this machine"
        )
    memory = lambda_memory_mb()
    # Conservative: below 1,769 MB a function gets a share of one vCPU, so CPU work takes longer there
    # than on this machine's core (taken as one full vCPU).
    cpu_scale = max(1.0, FULL_VCPU_MB / memory)
    logs = {**LOG_BYTES, "API Gateway access log line": access_log_bytes()}
    log_bytes = sum(logs.values())
    operations = _operations(context.measured)
    costs = price(operations, MIX, memory, cpu_scale, DYNAMODB_ROUND_TRIP_MS, log_bytes)

    mix = ", ".join(f"{share:.0%} {name}" for name, share in MIX.items())
    per_op = "; ".join(
        f"{name}: {op.pipeline_us:,.0f} µs x {cpu_scale:.2f} + {op.dynamodb_requests:g} x "
        f"{DYNAMODB_ROUND_TRIP_MS:g} ms -> {billed_ms(duration_ms(op, cpu_scale, DYNAMODB_ROUND_TRIP_MS))} ms billed"
        for name, op in operations.items()
    )
    unscaled = price(operations, MIX, memory, 1.0, DYNAMODB_ROUND_TRIP_MS, log_bytes)
    units = "; ".join(f"{name}: {op.read_units:g} read, {op.write_units:g} write" for name, op in operations.items())
    fixed = (
        "Not included: WAF ($0.60 per million requests plus the web ACL and rules monthly), X-Ray traces, "
        "CloudWatch custom metrics and alarms, the stage cache (hourly), the cursor secret, provisioned "
        "concurrency, data transfer: fixed or separate costs, see docs/DEPLOY.md, 'What it costs'."
    )
    http_lacks = (
        "Same Lambda, DynamoDB and logs behind an HTTP API. It lacks what this deployment uses: usage plans "
        "and API keys, the stage cache, a WAF web ACL association and X-Ray tracing at the gateway; and "
        "Chalice cannot deploy one (aws/chalice#1321), so moving means another deployer as well."
    )

    def figure(name: str, value: float, unit: str = "USD/M", note: str = "") -> Figure:
        return Figure(SECTION, name, value, unit, note=note)

    consumer_memory = lambda_memory_mb(function="user_changes")
    consumer_scale = max(1.0, FULL_VCPU_MB / consumer_memory)
    changes = consumer_price(CONSUMER_RECORDS_PER_INVOCATION, consumer_memory, consumer_scale, DYNAMODB_ROUND_TRIP_MS)
    batched = consumer_price(10, consumer_memory, consumer_scale, DYNAMODB_ROUND_TRIP_MS)
    consumer_figures = [
        figure(
            "change consumer, per million changes: Lambda requests",
            changes.lambda_requests,
            note=f"USD per million changes to users (creates, updates that change a public field, deletes), "
            f"each delivered alone ({CONSUMER_RECORDS_PER_INVOCATION} record per invocation: a quiet table; the "
            f"mapping's filter keeps reservation, idempotency and counter records from invoking it). Reading the "
            f"stream is free for a Lambda trigger.",
        ),
        figure(
            "change consumer, per million changes: Lambda duration",
            changes.lambda_duration,
            note=f"{consumer_memory} MB; per change an ASSUMED {CONSUMER_CPU_MS_PER_CHANGE:g} ms of CPU x "
            f"{consumer_scale:.2f} plus {CONSUMER_CALLS_PER_CHANGE} requests (GetItem, PutEvents, PutItem) at the "
            f"ASSUMED {DYNAMODB_ROUND_TRIP_MS:g} ms -> {changes.billed_ms:g} ms billed per invocation.",
        ),
        figure(
            "change consumer, per million changes: EventBridge",
            changes.eventbridge,
            note=f"${EVENTBRIDGE_PER_MILLION:.2f} per million custom events; one per change.",
        ),
        figure(
            "change consumer, per million changes: audit reads",
            changes.audit_reads,
            note="one strongly consistent GetItem per change (is its entry written already?)",
        ),
        figure(
            "change consumer, per million changes: audit writes", changes.audit_writes, note="one PutItem per change"
        ),
        figure(
            "change consumer, per million changes: CloudWatch Logs",
            changes.logs,
            note=f"ESTIMATED {CONSUMER_LOG_BYTES_PER_INVOCATION} bytes per invocation and "
            f"{CONSUMER_LOG_BYTES_PER_CHANGE} per change",
        ),
        figure(
            "change consumer, per million changes: total",
            changes.total,
            note=f"{_usd(batched.total)} when changes arrive 10 to a batch (busy periods). Audit storage is "
            "separate: about 150 bytes per entry, kept a year ($0.25 per GB-month).",
        ),
    ]
    main = [
        figure(
            "API Gateway REST API",
            costs.rest_api,
            note=f"USD per million requests; us-east-1 list prices, first tier, not checked against a bill. "
            f"Mix: {mix} (updates keep the email; a list request is one page of the default size, priced at "
            f"the GET's pipeline time though it shapes up to {PAGE_DEFAULT} users).",
        ),
        figure("API Gateway HTTP API", costs.http_api),
        figure("Lambda requests", costs.lambda_requests),
        figure(
            "Lambda duration",
            costs.lambda_duration,
            note=f"{memory} MB (lambda_memory_size, stage {PACKAGE_STAGE}) at ${LAMBDA_GB_SECOND:.10f} per GB-s, "
            f"each request rounded up to whole ms; {timed}. This machine's core is not Lambda's: a {memory} MB "
            f"function gets {memory}/{FULL_VCPU_MB} of a vCPU, so the CPU time is scaled by {cpu_scale:.2f} "
            f"(the conservative choice; unscaled: {_usd(unscaled.lambda_duration)}, "
            f"{unscaled.billed_ms:.1f} ms average). DynamoDB latency ASSUMED {DYNAMODB_ROUND_TRIP_MS:g} ms per "
            f"request in-region (the wait; botocore's CPU is in the measured time), Cognito's on a create not "
            f"counted: nothing here reaches AWS. {per_op}.",
        ),
        figure("Lambda billed duration, mix average", costs.billed_ms, "ms"),
        figure(
            "DynamoDB reads",
            costs.dynamodb_reads,
            note=f"on demand; request units per operation as sent, {counted}: {units}",
        ),
        figure("DynamoDB writes", costs.dynamodb_writes),
        figure(
            "CloudWatch Logs",
            costs.logs,
            note=f"ESTIMATED {log_bytes:,.0f} bytes per request ingested: "
            + ", ".join(f"{source} {size}" for source, size in logs.items())
            + f"; ${LOGS_PER_GB:.2f} per GB (binary).",
        ),
        figure("total, REST API", costs.rest_total, note=fixed),
        figure("total, HTTP API", costs.http_total, note=http_lacks),
        figure("HTTP API / REST API", costs.ratio, "x"),
    ]
    return [*main, *consumer_figures, *_search_figures(context, memory, cpu_scale, log_bytes)]


def search_page_usd_per_million(
    read_units: float, requests: float, pipeline_us: float, memory_mb: int, cpu_scale: float, log_bytes: float
) -> float:
    """USD per million pages of a search: the REST API, Lambda (its CPU time plus a wait per Query)
    and its logs, and the read units of its Queries."""
    billed = billed_ms(pipeline_us / 1000 * cpu_scale + requests * DYNAMODB_ROUND_TRIP_MS)
    return (
        REST_API_PER_MILLION
        + LAMBDA_PER_MILLION
        + 1_000_000 * lambda_duration_usd(billed, memory_mb)
        + read_units * DYNAMODB_READ_PER_MILLION
        + log_bytes * 1_000_000 / GB * LOGS_PER_GB
    )


def index_storage_usd_month(users: int, item_bytes: float, indexes: int) -> float:
    """A month of the search indexes' storage: each user once in each index (projection ALL)."""
    return users * indexes * (item_bytes + DYNAMODB_ITEM_OVERHEAD_BYTES) / GB * DYNAMODB_STORAGE_GB_MONTH


def _search_figures(context: Context, memory: int, cpu_scale: float, log_bytes: float) -> list[Figure]:
    from bench import search_pages
    from chalicelib.adapters.table_schema import SEARCH_INDEXES

    where = "the Search pages section"
    if "search.item_bytes" not in context.measured:
        search_pages.store(search_pages.measure(search_pages.make_users(search_pages.QUICK_USERS)), context.measured)
        where = f"measured here on {search_pages.QUICK_USERS:,} users (the Search pages section did not run)"
    pipeline = context.measured.get("warm_get_us", DEFAULT_WARM_US["get"])
    keys = sorted(
        {name.split(".")[1] for name in context.measured if name.startswith("search.") and name.count(".") == 2}
    )
    prices = {
        key: search_page_usd_per_million(
            context.measured[f"search.{key}.read_units"],
            context.measured[f"search.{key}.requests"],
            pipeline,
            memory,
            cpu_scale,
            log_bytes,
        )
        for key in keys
    }
    costliest = max(prices, key=lambda key: prices[key])
    listing = ", ".join(
        f"{key} {context.measured[f'search.{key}.read_units']:g} units / "
        f"{context.measured[f'search.{key}.requests']:g} Queries -> {_usd(prices[key])}"
        for key in keys
    )
    item = context.measured["search.item_bytes"]
    storage = index_storage_usd_month(DIRECTORY_USERS, item, len(SEARCH_INDEXES))
    return [
        Figure(
            SECTION,
            "search page at 10 million users: default listing",
            prices["newest"],
            "USD/M",
            note=f"USD per million first pages of 50 users, REST API, Lambda (pipeline time of a GET x "
            f"{cpu_scale:.2f}, plus the ASSUMED {DYNAMODB_ROUND_TRIP_MS:g} ms per Query, which are made one after "
            f"another), reads, logs. A page costs the same on any table size ({where}: equal within 10 % on "
            f"100,000 users and on a table holding only the page), so this is its price at "
            f"{DIRECTORY_USERS:,} users too. Per filter: {listing}.",
        ),
        Figure(
            SECTION,
            "search page at 10 million users: costliest filter",
            prices[costliest],
            "USD/M",
            note=f"{costliest}: the most Queries or read units of the filters measured",
        ),
        Figure(
            SECTION,
            "search indexes' storage at 10 million users",
            storage,
            "USD/month",
            note=f"{len(SEARCH_INDEXES)} indexes, projection ALL: each user once in each, {item:,.0f} bytes on average "
            f"plus DynamoDB's {DYNAMODB_ITEM_OVERHEAD_BYTES} bytes per entry, ${DYNAMODB_STORAGE_GB_MONTH:.2f} per "
            f"GB-month ({DIRECTORY_USERS * len(SEARCH_INDEXES) * (item + DYNAMODB_ITEM_OVERHEAD_BYTES) / GB:.1f} GB)",
        ),
    ]
