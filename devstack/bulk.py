"""`make import` and `make export` against the running stack, and the stand-alone job worker.

- `python -m devstack import --file users.csv [--no-invite]`: the file goes in the request when it
  fits the API's body limit, else through the presigned upload form; then the job is followed with
  a progress bar on stderr (when stderr is a terminal), each failed row as one line on stderr
  (`row 17: email: must be a valid email address`) and one summary line on stdout. Exit status: 0
  when every row was created or exists already, 1 when a row failed or the job did not finish
  (failed, cancelled): a script can tell a clean import from one to look at.
- `python -m devstack export [--format csv] [--out PATH]`: start an export, wait for it, download it.
- `python -m devstack worker`: the job worker threads of `make run`, in a process of their own, for a
  stack started with DEVSTACK_JOBS_WORKER=external (the bulk bench kills one mid-import).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from chalicelib.adapters import private_files
from devstack import lifecycle

POLL_S = 0.25
BAR_WIDTH = 30
FORMATS_BY_SUFFIX = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
# The API's body limit (MAX_BODY_BYTES): a larger file goes through the upload form.
INLINE_MAX_BYTES = 8192
FINAL = ("done", "failed", "cancelled")


class CommandFailed(Exception):
    """Said in one line on stderr, exit status 1."""


def _session() -> Any:
    import requests

    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy from the environment may reroute the call
    return session


def _admin(info: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from devstack import resources

    token = resources.id_token(
        info["aws_endpoint_url"],
        info["region"],
        info["user_pool_client_id"],
        info["admin_username"],
        info["admin_password"],
    )
    return str(info["api_url"]), {"Authorization": f"Bearer {token}"}


def _answer(response: Any, expected: int, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != expected:
        details = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in body.get("details", []))
        error = body.get("error") or response.text[:200]
        raise CommandFailed(f"{what}: {response.status_code} {error}{' (' + details + ')' if details else ''}")
    return dict(body)


def _bar(done: int, total: int | None, started: float, extra: str) -> str:
    elapsed = max(time.monotonic() - started, 1e-6)
    if total:
        filled = int(BAR_WIDTH * done / total)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return f"\r[{bar}] {done:,}/{total:,} {extra} {done / elapsed:,.0f}/s "
    return f"\r[{'.' * BAR_WIDTH}] {extra} {elapsed:,.0f} s "


def import_file(info: dict[str, Any], path: Path, invite: bool, progress: bool) -> int:
    fmt = FORMATS_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise CommandFailed(f"{path}: name a .csv, .jsonl or .ndjson file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandFailed(f"{path}: {exc.strerror}") from exc
    api, headers = _admin(info)
    http = _session()
    started = time.monotonic()
    if len(data) <= INLINE_MAX_BYTES:
        response = http.post(
            f"{api}/users/imports?invite={'true' if invite else 'false'}",
            data=data,
            headers={**headers, "Content-Type": MEDIA_TYPES[fmt]},
            timeout=30,
        )
        job = _answer(response, 202, "the API refused the file")
    else:
        asked = {"upload": True, "format": fmt, "invite": invite}
        job = _answer(http.post(f"{api}/users/imports", json=asked, headers=headers, timeout=30), 202, "import")
        form = job["upload"]
        with path.open("rb") as file:
            uploaded = http.post(form["url"], data=form["fields"], files={"file": (path.name, file)}, timeout=600)
        if uploaded.status_code not in (200, 201, 204):
            raise CommandFailed(f"the upload was refused: {uploaded.status_code} {uploaded.text[:200]}")
    job_id = job["jobId"]
    try:
        while job["status"] not in FINAL:
            time.sleep(POLL_S)
            job = _answer(http.get(f"{api}/users/imports/{job_id}", headers=headers, timeout=30), 200, "status")
            if progress:
                counts = job["counts"]
                extra = f"created {counts['created']:,} exists {counts['exists']:,} failed {counts['failed']:,}"
                print(_bar(counts["processed"], counts["total"], started, extra), end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        raise CommandFailed(f"stopped following; the import goes on: GET /users/imports/{job_id}") from None
    if progress:
        print(file=sys.stderr)
    failed_rows = _print_errors(http, api, headers, job_id)
    counts, elapsed = job["counts"], time.monotonic() - started
    rate = counts["processed"] / elapsed if elapsed > 0 else 0.0
    print(
        f"import {job_id} {job['status']}: {counts['processed']:,} of {counts['total'] or 0:,} rows, "
        f"{counts['created']:,} created, {counts['exists']:,} exist already, {counts['failed']:,} failed "
        f"({elapsed:.1f} s, {rate:,.0f} rows/s)"
    )
    if job["status"] != "done":
        print(f"the import {job['status']}: {job.get('error', '')}".rstrip(": "), file=sys.stderr)
    return 0 if job["status"] == "done" and not failed_rows else 1


def _print_errors(http: Any, api: str, headers: dict[str, str], job_id: str) -> int:
    """Every failed row's problems, one line each, on stderr; how many lines."""
    cursor: str | None = None
    printed = 0
    while True:
        query = "?limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = _answer(http.get(f"{api}/users/imports/{job_id}{query}", headers=headers, timeout=30), 200, "errors")
        for error in page["errors"]:
            field = f"{error['field']}: " if error.get("field") else ""
            print(f"row {error['row']}: {field}{error['message']}", file=sys.stderr)
            printed += 1
        cursor = page.get("nextCursor")
        if not cursor:
            return printed


def export_users(info: dict[str, Any], fmt: str, out: Path | None, progress: bool) -> int:
    api, headers = _admin(info)
    http = _session()
    started = time.monotonic()
    job = _answer(http.post(f"{api}/users/exports", json={"format": fmt}, headers=headers, timeout=30), 202, "export")
    job_id = job["jobId"]
    while job["status"] not in FINAL:
        time.sleep(POLL_S)
        job = _answer(http.get(f"{api}/users/exports/{job_id}", headers=headers, timeout=30), 200, "status")
        if progress:
            print(_bar(0, None, started, f"{job['users']:,} users written"), end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    if job["status"] != "done":
        raise CommandFailed(f"the export {job['status']}: {job.get('error', '')}")
    target = out or Path(f"users-{job['createdAt'][:10]}-{job_id[:8]}.{fmt}")
    with http.get(job["download"]["url"], stream=True, timeout=60) as download:
        if download.status_code != 200:
            raise CommandFailed(f"the download failed: {download.status_code}")
        # Every user's email and phone: owner-only from the first byte.
        with private_files.open_truncated(target) as file:
            for chunk in download.iter_content(1024 * 1024):
                file.write(chunk)
    elapsed = time.monotonic() - started
    print(f"export {job_id} done: {job['users']:,} users, {job['bytes']:,} bytes in {target} ({elapsed:.1f} s)")
    return 0


def worker_environment(info: dict[str, Any]) -> dict[str, str]:
    """What the worker function's environment would hold, for the stack described by `info`."""
    return {
        "STAGE": "local",
        "AWS_ENDPOINT_URL": str(info["aws_endpoint_url"]),
        "AWS_REGION": str(info["region"]),
        "AWS_DEFAULT_REGION": str(info["region"]),
        "TABLE_NAME": str(info["table_name"]),
        "USER_POOL_ID": str(info["user_pool_id"]),
        "USER_POOL_CLIENT_ID": str(info["user_pool_client_id"]),
        "AVATAR_BUCKET": str(info["bucket_name"]),
        "JOBS_TABLE_NAME": str(info["jobs_table_name"]),
        "JOBS_QUEUE": str(info["jobs_queue_name"]),
        "JOBS_QUEUE_URL": str(info["jobs_queue_url"]),
        "OUTBOX_FILE": str(info["outbox_file"]),
        "IMPORT_ROWS_PER_SECOND": "0",
        "EXPORT_READ_UNITS_PER_SECOND": "0",
    }


def run_worker(info: dict[str, Any], workers: int) -> None:
    """The stack's job worker threads, here, until SIGINT or SIGTERM."""
    os.environ.update(worker_environment(info))
    from app import app
    from devstack import jobs

    lifecycle.stop_on_signals()
    running = jobs.poller(
        app, info["aws_endpoint_url"], info["region"], info["jobs_queue_url"], info["jobs_queue_name"], workers
    ).start()
    print(f"job worker running ({workers} threads); Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        running.stop()


def main(command: str, info: dict[str, Any], args: Any) -> None:
    try:
        if command == "import":
            if not args.file:
                raise CommandFailed("FILE=<path> is required, e.g. make import FILE=docs/users-sample.csv")
            sys.exit(import_file(info, Path(args.file), not args.no_invite, sys.stderr.isatty()))
        elif command == "export":
            sys.exit(export_users(info, args.format, Path(args.out) if args.out else None, sys.stderr.isatty()))
        else:
            run_worker(info, args.workers)
    except CommandFailed as exc:
        sys.exit(f"make {command}: {exc}")
    except OSError as exc:  # the stack's API or emulator did not answer
        sys.exit(f"make {command}: the stack did not answer: {exc}")
