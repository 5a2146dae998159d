"""`make bulk-bench`: the bulk jobs on a fresh local stack (`make run`'s, started with its job worker
outside it, so the bench can kill it and inject faults), each figure with how it was measured.

1. Import of IMPORT_ROWS rows (CSV, through the presigned upload form, invitations on), by the
   stack's worker (`python -m devstack worker`, 2 threads as the deployed mapping's concurrency):
   time and rows per second; then the audit: every sign-in has its record and every record its
   sign-in (`make drift`'s check), and the table holds exactly the file's users and the two seeded.
2. The same file again: nobody created, every row `exists`.
3. Fault run: a new file of FAULT_ROWS rows; the worker process is SIGKILLed once a third of the rows
   are done, then a worker in this process takes over with AWS faults injected below botocore's
   retries on every DynamoDB and Cognito call it makes (FAULT_RATE errors: throttling and 500s;
   FAULT_RATE slow successes: applied, then answered after the read timeout, so botocore resends).
   The job must end with every row accounted for and nobody twice (the audit again).
4. Export of EXPORT_USERS users (records written straight to the table, as `make localstack-bench`
   fills it, and their change events delivered before the export starts): time, the worker
   process's peak resident memory (VmHWM) against its size before the export and the file's size,
   and the read units of the export's page stream as the export's own reader
   (chalicelib/adapters/user_pages.py) pages it, priced from the bytes each page read as DynamoDB
   bills them: 0.5 units per 4 KB, eventually consistent (the emulator answers every request with
   one fixed figure, so the units it reports are not these). The export's worker waits up to
   EXPORT_READ_TIMEOUT_S for each answer (the local stage's AWS_READ_TIMEOUT_S): the emulator's Scan
   walks the whole table on every page.

The local stack runs unpaced (IMPORT_ROWS_PER_SECOND=0): the times are the emulator's, on a shared
machine, not AWS's; on AWS the worker paces itself (docs/DESIGN.md, Bulk jobs).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import requests

from bench.local_stack_scale import fill
from bench.report import Figure, Report
from chalicelib.adapters.aws import LOCAL_READ_TIMEOUT_MAX_S, READ_TIMEOUT_ENV
from devstack.process import PROJECT_DIR, Stack, running_stack

IMPORT_ROWS, FAULT_ROWS, EXPORT_USERS = 10_000, 1_000, 100_000
QUICK_IMPORT_ROWS, QUICK_FAULT_ROWS, QUICK_EXPORT_USERS = 300, 200, 5_000
EXPORT_READ_TIMEOUT_S = LOCAL_READ_TIMEOUT_MAX_S
FAULT_RATE = 0.05
FINAL = ("done", "failed", "cancelled")
POLL_S = 0.5
SECTION = "bulk jobs"
SEEDED = 2  # the stack's admin and member
measured: dict[str, float] = {}  # what the cost model takes from the run


def _session(stack: Stack) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {stack.token()}"
    return session


def write_file(folder: Path, rows: int, tag: str) -> Path:
    path = folder / f"{tag}.csv"
    with path.open("w") as out:
        out.write("name,email,phone,role\n")
        for n in range(rows):
            out.write(f"Bulk User {n},{tag}-{n}@example.com,,member\n")
    return path


def start_import(stack: Stack, path: Path) -> str:
    http = _session(stack)
    asked = http.post(f"{stack.url}/users/imports", json={"upload": True, "format": "csv"}, timeout=30)
    asked.raise_for_status()
    job = asked.json()
    form = job["upload"]
    with path.open("rb") as file:
        posted = requests.post(form["url"], data=form["fields"], files={"file": (path.name, file)}, timeout=600)
    if posted.status_code not in (200, 201, 204):
        raise RuntimeError(f"the upload was refused: {posted.status_code} {posted.text[:200]}")
    return str(job["jobId"])


def job(stack: Stack, path: str) -> dict[str, Any]:
    # A fresh token each time: a long run outlives one. The local API serves one request at a time
    # beside a busy emulator: a poll that times out is asked again, and a 503 after its Retry-After,
    # as a client of the API should.
    for _ in range(10):
        try:
            response = _session(stack).get(f"{stack.url}{path}", timeout=60)
        except requests.exceptions.Timeout:
            continue
        if response.status_code == 503:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        response.raise_for_status()
        return dict(response.json())
    raise RuntimeError(f"GET {path}: no answer in 10 tries")


def wait(stack: Stack, path: str, until: Any = None) -> dict[str, Any]:
    while True:
        current = job(stack, path)
        if current["status"] in FINAL or (until is not None and until(current)):
            return current
        time.sleep(POLL_S)


@contextmanager
def worker_process(
    stack: Stack, workers: int = 2, read_timeout_s: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m devstack worker` for the stack (what a developer runs beside a stack started
    with DEVSTACK_JOBS_WORKER=external), in a process group of its own; `read_timeout_s` sets the
    local stage's AWS_READ_TIMEOUT_S for it."""
    env = {**os.environ, "STACK_FILE": str(stack.stack_file)}
    if read_timeout_s is not None:
        env[READ_TIMEOUT_ENV] = str(read_timeout_s)
    process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
        [sys.executable, "-m", "devstack", "worker", "--workers", str(workers)],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def audit(stack: Stack) -> tuple[bool, int, int]:
    """(sign-ins and records agree, records, sign-ins): `make drift`'s check."""
    from ops.drift import Drift

    info = stack.info
    drift = Drift(info["table_name"], info["user_pool_id"], stack.client("dynamodb"), stack.client("cognito-idp"))
    report = drift.check()
    items = [i for i in _scan(stack) if "listingId" in i]
    sign_ins = list(drift._identities.sign_ins())
    return report.clean, len(items), len(sign_ins)


def _scan(stack: Stack) -> Iterator[dict[str, Any]]:
    client = stack.client("dynamodb")
    for page in client.get_paginator("scan").paginate(TableName=stack.info["table_name"]):
        yield from page["Items"]


def import_run(stack: Stack, folder: Path, rows: int) -> list[Figure]:
    path = write_file(folder, rows, f"import-{uuid.uuid4().hex[:6]}")
    with worker_process(stack):
        started = time.monotonic()
        job_id = start_import(stack, path)
        done = wait(stack, f"/users/imports/{job_id}")
        elapsed = time.monotonic() - started
        clean, records, sign_ins = audit(stack)
        again_id = start_import(stack, path)
        again = wait(stack, f"/users/imports/{again_id}")
    counts, rerun = done["counts"], again["counts"]
    exact = done["status"] == "done" and counts["created"] == rows and records == sign_ins == rows + SEEDED
    return [
        Figure(SECTION, f"import {rows:,} rows: time", elapsed, "s", note="upload to `done`, the emulator's speed"),
        Figure(SECTION, f"import {rows:,} rows: rows per second", rows / elapsed, "rows/s"),
        Figure(
            SECTION,
            f"import {rows:,} rows: users made",
            counts["created"],
            "users",
            target=f"= {rows:,}, audit clean",
            passed=exact and clean,
            note=f"records {records:,}, sign-ins {sign_ins:,} (with the 2 seeded); audit clean: {clean}",
        ),
        Figure(
            SECTION,
            "re-run of the same file: created",
            rerun["created"],
            "users",
            target=f"0 (all {rows:,} exist)",
            passed=again["status"] == "done" and rerun["created"] == 0 and rerun["exists"] == rows,
        ),
    ]


class Injector:
    """Faults below botocore's retry handler on the app's own clients (before-send)."""

    def __init__(self, rate: float, seed: int = 22) -> None:
        self.rate, self.random, self.lock = rate, random.Random(seed), threading.Lock()  # noqa: S311 - repeatable faults
        self.errors = self.slow = self.calls = 0
        self.http = requests.Session()
        self.http.trust_env = False

    def hook(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ReadTimeoutError

        with self.lock:
            self.calls += 1
            draw = self.random.random()
        if draw < self.rate:
            with self.lock:
                self.errors += 1
            cognito = "cognito-idp" in request.url
            code = "TooManyRequestsException" if cognito else "ProvisionedThroughputExceededException"
            status = 400 if draw < self.rate / 2 else 500
            code = code if status == 400 else "InternalServerError"
            body = json.dumps({"__type": code, "message": "injected"}).encode()
            return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body))
        if draw < 2 * self.rate:
            with self.lock:
                self.slow += 1
            # Applied by the emulator, then answered too late: botocore resends.
            self.http.post(request.url, data=request.body, headers=dict(request.headers.items()), timeout=30)
            raise ReadTimeoutError(endpoint_url=request.url)
        return None


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def fault_run(stack: Stack, folder: Path, rows: int) -> list[Figure]:
    from devstack import bulk, jobs

    path = write_file(folder, rows, f"faults-{uuid.uuid4().hex[:6]}")
    started = time.monotonic()
    with worker_process(stack) as process:
        job_id = start_import(stack, path)
        wait(stack, f"/users/imports/{job_id}", until=lambda j: j["counts"]["processed"] >= rows // 3)
        os.killpg(process.pid, signal.SIGKILL)  # mid-import, mid-batch as likely as not
    killed_at = job(stack, f"/users/imports/{job_id}")["counts"]["processed"]
    # The rest by a worker in this process, with faults on every DynamoDB and Cognito call it makes.
    os.environ.update(bulk.worker_environment(stack.info))
    from app import app
    from chalicelib.adapters import aws

    injector = Injector(FAULT_RATE)
    for service in ("dynamodb", "cognito-idp"):
        aws.client(service).meta.events.register_first(f"before-send.{_event_name(service)}", injector.hook)
    info = stack.info
    poller = jobs.poller(
        app, info["aws_endpoint_url"], info["region"], info["jobs_queue_url"], info["jobs_queue_name"], 2
    ).start()
    logging.getLogger("devstack.jobs").setLevel(logging.CRITICAL)  # a batch that raised: counted below
    try:
        done = wait(stack, f"/users/imports/{job_id}")
    finally:
        poller.stop()
        for service in ("dynamodb", "cognito-idp"):
            aws.client(service).meta.events.unregister(f"before-send.{_event_name(service)}", injector.hook)
    elapsed = time.monotonic() - started
    counts = done["counts"]
    clean, records, sign_ins = audit(stack)
    mine = sum(1 for item in _scan(stack) if item.get("email", {}).get("S", "").startswith(path.stem))
    accounted = counts["created"] + counts["exists"] + counts["failed"]
    return [
        Figure(
            SECTION,
            f"fault run, {rows:,} rows: rows with an outcome",
            accounted,
            "rows",
            target=f"= {rows:,}, nobody twice, audit clean",
            passed=done["status"] == "done"
            and accounted == rows
            and mine == counts["created"] + counts["exists"]
            and clean,
            note=f"worker SIGKILLed at {killed_at:,} rows done; then {injector.calls:,} AWS calls with "
            f"{injector.errors:,} injected errors and {injector.slow:,} slow successes ({poller.failed} "
            f"batches raised and were handed over again); created "
            f"{counts['created']:,}, exists {counts['exists']:,}, failed {counts['failed']:,}; users with "
            f"the file's emails {mine:,}; records {records:,} = sign-ins {sign_ins:,}: {records == sign_ins}",
        ),
        Figure(SECTION, f"fault run, {rows:,} rows: time", elapsed, "s", note="includes the killed batch's redelivery"),
    ]


def _event_name(service: str) -> str:
    return {"dynamodb": "dynamodb", "cognito-idp": "cognito-identity-provider"}[service]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _export(stack: Stack) -> tuple[dict[str, Any], float]:
    http = _session(stack)
    started = time.monotonic()
    answer = http.post(f"{stack.url}/users/exports", json={"format": "jsonl"}, timeout=30)
    answer.raise_for_status()
    done = wait(stack, f"/users/exports/{answer.json()['jobId']}")
    return done, time.monotonic() - started


def _changes_delivered(stack: Stack, quiet_s: float = 10.0) -> None:
    """Wait until the stack has delivered the change events of the users just filled in (its events
    file stops growing for `quiet_s`). The stack's stream consumer shares the emulator's one
    process with the export's reads, which a backlog of 90,000 changes slows past the read
    timeout; on AWS the consumer is a function of its own and takes nothing from the table."""
    events = Path(str(stack.info["events_file"]))
    size, still_since = -1, time.monotonic()
    while time.monotonic() - still_since < quiet_s:
        now = events.stat().st_size if events.exists() else 0
        if now != size:
            size, still_since = now, time.monotonic()
        time.sleep(1.0)


def _scan_read_units(stack: Stack, page_items: int) -> float:
    """The read units of a Scan of the users table in pages of `page_items` items (the export's own
    page size, chalicelib/adapters/user_pages.py), as DynamoDB bills an eventually consistent Scan:
    0.5 units per 4 KB of the items a page read, those its filter then drops included. Counted here
    from the items' sizes: the emulator answers every request with the same fixed figure."""
    from bench.dynamodb_requests import item_bytes

    units = 0.0
    scan = stack.client("dynamodb").get_paginator("scan")
    for page in scan.paginate(TableName=stack.info["table_name"], PaginationConfig={"PageSize": page_items}):
        units += max(0.5, math.ceil(sum(item_bytes(item) for item in page["Items"]) / 4096) * 0.5)
    return units


def _users(stack: Stack) -> int:
    return sum(1 for item in _scan(stack) if "listingId" in item)


def export_run(stack: Stack, users: int) -> list[Figure]:
    """Two exports by one worker process, of a tenth of the users and of all of them: its peak
    resident memory (VmHWM, which only grows) after each. A worker that streams peaks about as high
    for ten times the users; one that held the file would grow with it."""
    from chalicelib.domain.exports import PAGE_USERS

    fill(stack, max(0, users // 10 - _users(stack)))
    _changes_delivered(stack)
    # The emulator's Scan sorts and walks the whole table on every page: at 100,000 users (and
    # their reservations) a page takes about 5 s of its one process, past the 3 s read timeout
    # a deployed stage waits for DynamoDB's answer. The worker waits out the emulator instead.
    with worker_process(stack, workers=1, read_timeout_s=EXPORT_READ_TIMEOUT_S) as process:
        small, _ = _export(stack)  # also loads the worker's modules and clients
        small_peak = _peak_rss_mb(process.pid)
        fill(stack, users - _users(stack))
        _changes_delivered(stack)
        done, elapsed = _export(stack)
        peak = _peak_rss_mb(process.pid)
    total = _users(stack)
    read_units = _scan_read_units(stack, PAGE_USERS)
    file_mb = done["bytes"] / (1024 * 1024)
    measured["export_units_per_user"] = read_units / total
    return [
        Figure(
            SECTION,
            f"export {total:,} users: users written",
            done["users"],
            "users",
            target=f"= {total:,}",
            passed=done["status"] == "done" and done["users"] == total,
        ),
        Figure(SECTION, f"export {total:,} users: time", elapsed, "s", note="request to `done`, the emulator's speed"),
        Figure(
            SECTION, f"export {total:,} users: worker peak memory", peak, "MB", note=f"the file is {file_mb:.1f} MB"
        ),
        Figure(
            SECTION,
            f"export {total:,} users: peak memory / peak at {small['users']:,} users",
            peak / small_peak,
            "x",
            target="< 1.5 (it streams)",
            passed=peak / small_peak < 1.5,
            note=f"worker VmHWM {small_peak:.0f} MB after exporting {small['users']:,} users, {peak:.0f} MB after "
            f"{done['users']:,} ({file_mb:.1f} MB of JSON Lines)",
        ),
        Figure(
            SECTION,
            f"export {total:,} users: read units",
            read_units,
            "RRU",
            note="the export's Scan of the users table in its pages, priced as DynamoDB bills an eventually "
            "consistent Scan: 0.5 units per 4 KB of the items each page read (reservations included)",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_jobs", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer rows and users")
    args = parser.parse_args(argv)
    rows, fault_rows, users = (
        (QUICK_IMPORT_ROWS, QUICK_FAULT_ROWS, QUICK_EXPORT_USERS)
        if args.quick
        else (IMPORT_ROWS, FAULT_ROWS, EXPORT_USERS)
    )
    report = Report()
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, fake), tempfile.TemporaryDirectory(prefix="bulk-bench-") as tmp:
        os.environ.pop("AWS_SESSION_TOKEN", None)
        folder = Path(tmp)
        with running_stack(folder / "stack", {"DEVSTACK_JOBS_WORKER": "external"}) as stack:
            parts: list[tuple[str, Callable[[], list[Figure]]]] = [
                ("import", partial(import_run, stack, folder, rows)),
                ("faults", partial(fault_run, stack, folder, fault_rows)),
                ("export", partial(export_run, stack, users)),
            ]
            for part, measure in parts:
                started = time.monotonic()
                figures = measure()
                report.add(figures)
                # Each part's figures as soon as it ends: a long run that stops later keeps them.
                done = Report()
                done.add(figures)
                sys.stderr.write(f"[bulk-bench] {part}: {time.monotonic() - started:.1f} s\n{done.table()}\n")
    from bench import bulk_cost

    report.add(bulk_cost.figures(measured.get("export_units_per_user")))
    sys.stdout.write(report.table() + "\n")
    if report.failed:
        sys.stdout.write("targets missed: " + ", ".join(f.name for f in report.failed) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
