"""`python -m bench.local_stack_scale` (`make localstack-bench`): the local stack's cost as its table
grows, its memory after a load run, and how long Ctrl-C takes to stop it; each against its target.

1. Start a stack as `make run` does (devstack.process.start_stack) and time `POST /users` over HTTP
   as the admin: the p50 on an empty table, then again once the table holds 10,000 users (filled
   straight through the emulator with items shaped as the app writes them: a user and its email
   reservation). Target: the second within 1.5x of the first. Then Ctrl-C it, timed.
2. Start a fresh stack and run what `make loadtest` runs (20 clients, 60 s) against it; then the
   stack process's RSS (target under 600 MB) and the time Ctrl-C takes to stop it (target within 2 s).

Exit status 1 if a target is missed. Linux only (RSS is read from /proc).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import requests

from bench.report import Figure, Report
from chalicelib.adapters.dynamodb import user_to_item
from chalicelib.adapters.table_schema import EMAIL_KEY_PREFIX
from chalicelib.domain.models import User, email_key
from devstack.process import Stack, start_stack
from loadtest.runner import percentile, require_loopback, run_load

SECTION = "Local stack at scale"
USERS = 10_000
CREATES = 200
WARMUP = 20
QUICK_USERS, QUICK_CREATES, QUICK_DURATION_S = 2_000, 50, 10.0
CLIENTS, DURATION_S = 20, 60.0  # what `make loadtest` runs
GROWTH_TARGET = 1.5
RSS_TARGET_MB = 600
STOP_TARGET_S = 2.0
STOP_GIVE_UP_S = 120
BATCH = 25  # BatchWriteItem's limit
TIMEOUT_S = 30


def create_p50_ms(stack: Stack, count: int) -> float:
    """p50 of `count` sequential creates by the admin over one keep-alive connection, after a warm-up."""
    url = stack.url.rstrip("/")
    require_loopback(url)
    latencies: list[float] = []
    with requests.Session() as session:
        # Loopback only: no proxy or netrc from the environment may reroute or decorate a request.
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {stack.token()}"
        for n in range(WARMUP + count):
            body = {"name": "Bench User", "email": f"bench-{uuid.uuid4().hex[:12]}@example.com"}
            started = time.perf_counter()
            response = session.post(f"{url}/users", json=body, timeout=TIMEOUT_S)
            elapsed_ms = (time.perf_counter() - started) * 1000
            if response.status_code != 201:
                raise RuntimeError(f"POST /users answered {response.status_code}: {response.text[:300]}")
            if n >= WARMUP:
                latencies.append(elapsed_ms)
    return percentile(sorted(latencies), 50) or 0.0


def _filler_items(count: int) -> Iterator[dict[str, Any]]:
    """A user and its email reservation per user, as the repository's create writes them."""
    now = "2024-01-01T00:00:00.000Z"
    for n in range(count):
        user_id = str(uuid.uuid4())
        email = f"fill-{n}-{user_id[:8]}@example.com"
        user = User(user_id=user_id, name=f"Filler {n}", email=email, created_at=now, updated_at=now, version=1)
        yield user_to_item(user)
        yield {"userId": {"S": EMAIL_KEY_PREFIX + email_key(email)}, "ownerId": {"S": user_id}}


def fill(stack: Stack, users: int) -> None:
    """Add `users` users straight through the emulator (BatchWriteItem), not through the API."""
    info = stack.info
    require_loopback(str(info["aws_endpoint_url"]))
    client = stack.client("dynamodb", proxies={})
    batch: list[dict[str, Any]] = []
    for item in _filler_items(users):
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == BATCH:
            _write(client, info["table_name"], batch)
            batch = []
    if batch:
        _write(client, info["table_name"], batch)


def _write(client: Any, table: str, batch: list[dict[str, Any]]) -> None:
    unprocessed = client.batch_write_item(RequestItems={table: batch})["UnprocessedItems"]
    if unprocessed:
        raise RuntimeError(f"the emulator left {sum(len(v) for v in unprocessed.values())} items unprocessed")


def table_users(stack: Stack) -> int:
    info = stack.info
    client = stack.client("dynamodb", proxies={})
    return sum(
        page["Count"]
        for page in client.get_paginator("scan").paginate(
            # Users carry listingId (chalicelib/adapters/table_schema.py); the bench may scan, the API never does.
            TableName=info["table_name"],
            FilterExpression="attribute_exists(listingId)",
            Select="COUNT",
        )
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def ctrl_c_seconds(stack: Stack) -> float:
    """Seconds from SIGINT (what Ctrl-C sends) until the stack process has exited."""
    started = time.monotonic()
    stack.process.send_signal(signal.SIGINT)
    try:
        stack.process.wait(timeout=STOP_GIVE_UP_S)
    except Exception:
        stack.process.kill()
        stack.process.wait()
        raise
    return time.monotonic() - started


def _stop_quietly(stack: Stack) -> None:
    if stack.process.poll() is None:
        stack.process.kill()
        stack.process.wait()


def growth(folder: Path, users: int, creates: int) -> list[Figure]:
    stack = start_stack(folder)
    try:
        empty = create_p50_ms(stack, creates)
        fill(stack, users - table_users(stack))
        held = table_users(stack)
        full = create_p50_ms(stack, creates)
        rss_full = rss_mb(stack.process.pid)
        stop_s = ctrl_c_seconds(stack)
    finally:
        _stop_quietly(stack)
    ratio = full / empty
    how = (
        f"{creates} sequential POST /users as the admin over one keep-alive connection after {WARMUP} "
        f"warm-up creates; nearest-rank p50. The table filled to {users:,} users (each with its email "
        f"reservation) by BatchWriteItem straight to the emulator."
    )
    return [
        Figure(SECTION, "create p50, empty table", empty, "ms", note=how),
        Figure(SECTION, f"create p50, {held:,} users", full, "ms"),
        Figure(
            SECTION,
            f"create p50 at {held:,} users / empty",
            ratio,
            "x",
            target=f"<= {GROWTH_TARGET:g}x",
            passed=ratio <= GROWTH_TARGET and held >= users,
        ),
        Figure(SECTION, f"stack RSS at {held:,} users", rss_full, "MB"),
        Figure(
            SECTION,
            f"Ctrl-C to exit, {held:,} users",
            stop_s,
            "s",
            target=f"<= {STOP_TARGET_S:g} s",
            passed=stop_s <= STOP_TARGET_S,
        ),
    ]


def after_load(folder: Path, clients: int, duration_s: float) -> list[Figure]:
    stack = start_stack(folder)
    try:
        report = run_load(stack.info, clients, duration_s)
        rss = rss_mb(stack.process.pid)
        stop_s = ctrl_c_seconds(stack)
    finally:
        _stop_quietly(stack)
    sys.stderr.write(report.summary() + "\n")
    name = f"after a {clients}-client, {duration_s:g} s load run"
    return [
        Figure(
            SECTION,
            f"load run ({report.requests:,} requests) failures",
            len(report.failures),
            "kinds",
            target="= 0",
            passed=report.ok,
            note="what `make loadtest` runs and checks, on a fresh stack; its summary is on stderr",
        ),
        Figure(SECTION, f"stack RSS {name}", rss, "MB", target=f"< {RSS_TARGET_MB} MB", passed=rss < RSS_TARGET_MB),
        Figure(
            SECTION,
            f"Ctrl-C to exit {name}",
            stop_s,
            "s",
            target=f"<= {STOP_TARGET_S:g} s",
            passed=stop_s <= STOP_TARGET_S,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_stack_scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer users, creates and seconds")
    args = parser.parse_args(argv)
    users, creates, duration = (
        (QUICK_USERS, QUICK_CREATES, QUICK_DURATION_S) if args.quick else (USERS, CREATES, DURATION_S)
    )
    report = Report()
    # Fake credentials for this process's calls to the emulator (sign-in, the fill); the stack takes its own.
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, fake), tempfile.TemporaryDirectory(prefix="localstack-bench-") as tmp:
        os.environ.pop("AWS_SESSION_TOKEN", None)
        for part, measure in (
            ("growth", partial(growth, users=users, creates=creates)),
            ("after load", partial(after_load, clients=CLIENTS, duration_s=duration)),
        ):
            folder = Path(tmp) / part.replace(" ", "-")
            folder.mkdir()
            started = time.monotonic()
            report.add(measure(folder))
            sys.stderr.write(f"[localstack-bench] {part}: {time.monotonic() - started:.1f} s\n")
    sys.stdout.write(report.table() + "\n")
    if report.failed:
        names = ", ".join(f.name for f in report.failed)
        if args.quick:  # a smoke run reports; too short to tell a miss from noise
            sys.stdout.write(f"outside their targets in this smoke run (not a verdict): {names}\n")
            return 0
        sys.stdout.write(f"targets missed: {names}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
