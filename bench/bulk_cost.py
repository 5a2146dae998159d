"""The price of importing and of exporting a million users (`make bulk-bench` prints it; docs/BENCHMARKS.md
states it). List prices of us-east-1 (bench/cost_model.py's, plus SQS, S3 and SES below), none
checked against a bill.

The requests and units per row are counted from the code path (chalicelib/domain/import_rows.py,
service.create_user, chalicelib/adapters/dynamodb.py and job_store.py), not measured on AWS:
- users table: one TransactWriteItems of the user and its email reservation (each item < 1 KB, a
  transactional write costs 2 units per item: 4), and one write to each index holding the user
  (the three search indexes and, this release, the legacy listing index: 4);
- jobs table: the row's outcome and the job's counts in one transaction (4), and per batch of
  BATCH_ROWS rows a few strongly consistent reads (the job, its done rows: about 2 units a row);
- Cognito: AdminCreateUser, and a second one (RESEND) that mails the invitation: Cognito bills
  monthly active users, not calls (below);
- the worker's Lambda time is the pacing: ROWS_PER_SECOND rows a second per invocation, billed
  while it waits, at the worker's memory; one SQS message (send, receive, delete) per batch;
- each created user is one change to the stream consumer (bench/cost_model.py consumer_price).
An export reads the users table once (the read units the bench measured per user, or the default
below), writes one file to S3 in parts, kept JOB_RETENTION_DAYS, downloaded once.
"""

from __future__ import annotations

from bench.cost_model import (
    CONSUMER_RECORDS_PER_INVOCATION,
    DYNAMODB_READ_PER_MILLION,
    DYNAMODB_ROUND_TRIP_MS,
    DYNAMODB_WRITE_PER_MILLION,
    FULL_VCPU_MB,
    LAMBDA_GB_SECOND,
    LAMBDA_PER_MILLION,
    consumer_price,
)
from bench.report import Figure
from chalicelib.domain.exports import PAGE_USERS
from chalicelib.domain.jobs import BATCH_ROWS, JOB_RETENTION_DAYS
from chalicelib.domain.pacing import EXPORT_READ_UNITS_PER_SECOND, ROWS_PER_SECOND

SECTION = "bulk jobs: cost of a million users"
USERS = 1_000_000
SQS_PER_MILLION = 0.40  # standard queue requests
S3_PUT_PER_THOUSAND = 0.005
S3_GET_PER_THOUSAND = 0.0004
S3_GB_MONTH = 0.023
DATA_OUT_PER_GB = 0.09  # the download, to the internet
SES_PER_THOUSAND = 0.10  # invitations through SES (Cognito's own email sends only a few a day)
# ASSUMED: the Essentials tier (what a new pool gets), $0.015 a monthly active user after 10,000
# free; and that a user created by an admin counts as active in the month it is created. Whether it
# does is for AWS's bill to say: shown apart, not added in.
COGNITO_MAU_USD = 0.015
COGNITO_FREE_MAU = 10_000
WORKER_MEMORY_MB = 512  # app.py's bulk_jobs (Chalice's lambda_memory_size for the stage)
CONSUMER_MEMORY_MB = 128
USERS_TABLE_WRITE_UNITS_PER_ROW = 8
JOBS_TABLE_WRITE_UNITS_PER_ROW = 4
JOBS_TABLE_READ_UNITS_PER_ROW = 2
# ASSUMED when the bench did not measure it: read units per exported user (about 240 bytes a user
# and a reservation of about 100 bytes, 0.5 units per 4 KB).
DEFAULT_EXPORT_UNITS_PER_USER = 0.5 * (240 + 100) / 4096
EXPORT_BYTES_PER_USER = 245  # JSON Lines, measured by make export on the local stack
# ASSUMED: CPU time to write one user to the file, generously.
EXPORT_CPU_MS_PER_USER = 0.02
GB = 1024**3


def import_usd(users: int = USERS, invite: bool = True) -> dict[str, float]:
    batches = users / BATCH_ROWS
    worker_seconds = users / ROWS_PER_SECOND
    consumer = consumer_price(
        CONSUMER_RECORDS_PER_INVOCATION,
        CONSUMER_MEMORY_MB,
        FULL_VCPU_MB / CONSUMER_MEMORY_MB,
        DYNAMODB_ROUND_TRIP_MS,
    )
    return {
        "DynamoDB writes": users
        * (USERS_TABLE_WRITE_UNITS_PER_ROW + JOBS_TABLE_WRITE_UNITS_PER_ROW)
        / 1e6
        * DYNAMODB_WRITE_PER_MILLION,
        "DynamoDB reads": users * JOBS_TABLE_READ_UNITS_PER_ROW / 1e6 * DYNAMODB_READ_PER_MILLION,
        "worker Lambda": batches / 1e6 * LAMBDA_PER_MILLION
        + worker_seconds * WORKER_MEMORY_MB / 1024 * LAMBDA_GB_SECOND,
        "SQS": 3 * batches / 1e6 * SQS_PER_MILLION,
        "S3 (file and its reads)": S3_PUT_PER_THOUSAND / 1000 + batches * S3_GET_PER_THOUSAND / 1000,
        "stream consumer (a change per user)": consumer.total * users / 1e6,
        "SES invitations": (users * SES_PER_THOUSAND / 1000) if invite else 0.0,
    }


def export_usd(users: int = USERS, units_per_user: float = DEFAULT_EXPORT_UNITS_PER_USER) -> dict[str, float]:
    units = users * units_per_user
    pages = users / PAGE_USERS
    # Paced at EXPORT_READ_UNITS_PER_SECOND, and never faster than its reads and CPU allow.
    seconds = max(units / EXPORT_READ_UNITS_PER_SECOND, pages * DYNAMODB_ROUND_TRIP_MS / 1000) + (
        users * EXPORT_CPU_MS_PER_USER / 1000
    )
    file_gb = users * EXPORT_BYTES_PER_USER / GB
    parts = max(1.0, file_gb * 1024 / 8)  # 8 MB parts
    return {
        "DynamoDB reads": units / 1e6 * DYNAMODB_READ_PER_MILLION,
        "worker Lambda": (seconds / 120 + 1) / 1e6 * LAMBDA_PER_MILLION
        + seconds * WORKER_MEMORY_MB / 1024 * LAMBDA_GB_SECOND,
        "S3 (parts, storage, download)": (parts + 2) * S3_PUT_PER_THOUSAND / 1000
        + S3_GET_PER_THOUSAND / 1000
        + file_gb * S3_GB_MONTH * JOB_RETENTION_DAYS / 30
        + file_gb * DATA_OUT_PER_GB,
    }


def figures(units_per_user: float | None = None, given: str = "as measured by this run") -> list[Figure]:
    """`given` says where a units_per_user came from: the bench's own run, or the command line."""
    if units_per_user is not None and not units_per_user > 0:
        raise ValueError("read units per user must be a positive number")
    measured = units_per_user is not None
    imported = import_usd()
    quiet = import_usd(invite=False)
    exported = export_usd(units_per_user=units_per_user or DEFAULT_EXPORT_UNITS_PER_USER)
    mau = (USERS - COGNITO_FREE_MAU) * COGNITO_MAU_USD

    def listed(parts: dict[str, float]) -> str:
        return "; ".join(f"{name} ${value:,.4g}" for name, value in parts.items())

    return [
        Figure(
            SECTION, "import 1,000,000 users, with invitations", sum(imported.values()), "USD", note=listed(imported)
        ),
        Figure(SECTION, "import 1,000,000 users, invite: false", sum(quiet.values()), "USD"),
        Figure(
            SECTION,
            "Cognito, if each imported user counts as active that month",
            mau,
            "USD",
            note=f"ASSUMED Essentials tier ${COGNITO_MAU_USD}/MAU after {COGNITO_FREE_MAU:,} free; not added above",
        ),
        Figure(
            SECTION,
            "export 1,000,000 users",
            sum(exported.values()),
            "USD",
            note=listed(exported) + f"; read units per user {given if measured else 'ASSUMED'}: "
            f"{units_per_user or DEFAULT_EXPORT_UNITS_PER_USER:.4g}",
        ),
        Figure(
            SECTION,
            "import 1,000,000 users: time at the paced rate",
            USERS / (ROWS_PER_SECOND * 2) / 3600,
            "h",
            note=f"{ROWS_PER_SECOND:g} rows/s per worker, 2 workers (Cognito's UserCreation quota)",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from bench.report import Report

    parser = argparse.ArgumentParser(prog="python -m bench.bulk_cost", description=__doc__)
    parser.add_argument(
        "--units-per-user", type=float, help="read units per exported user, as make bulk-bench measured"
    )
    args = parser.parse_args(argv)
    try:
        priced = figures(args.units_per_user, given="as given")
    except ValueError:
        parser.error("--units-per-user must be a positive number")
    report = Report()
    report.add(priced)
    sys.stdout.write(report.table() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
