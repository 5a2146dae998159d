"""Bulk import and export over real HTTP against `make run`'s stack: the file in the request body,
the file through the presigned upload form (its job starts when the embedded S3 notifies the job
queue, as a deployed bucket does), the export's presigned download, and `make import` / `make
export` as docs/LOCAL.md shows them. The worker is the stack's own (devstack/jobs.py), driven by
its queue; each test waits by polling the job, never by sleeping a fixed time."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.process import PROJECT_DIR
from tests.e2e.conftest import Stack, running_stack
from tests.support.local_api import call, shell_env

FINAL = ("done", "failed", "cancelled")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: these tests add users by the dozen, which would slow the session stack's
    listings (the emulator reads its whole table for an index Query) under the tests after them."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with running_stack(tmp_path_factory.mktemp("bulk-stack")) as running:
        yield running


# The longest a small job may take on a loaded machine: a bound on the poll, not an expectation.
WAIT_S = 120


def wait_for(stack: Stack, path: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        response = call(stack, "GET", path, token)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in FINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def emails(run: str, count: int) -> list[str]:
    return [f"bulk-{run}-{n}@example.com" for n in range(count)]


def find(stack: Stack, token: str, email: str) -> list[dict[str, Any]]:
    response = call(stack, "GET", "/users", token, params={"email": email})
    assert response.status_code == 200, response.text
    return list(response.json()["users"])


def test_an_import_in_the_body_creates_each_row_once_and_a_rerun_creates_none(stack: Stack) -> None:
    admin = stack.token()
    run = uuid.uuid4().hex[:8]
    good = emails(run, 3)
    body = "name,email,role\n" + "".join(f"Bulk {n},{email},member\n" for n, email in enumerate(good))
    body += f"Bad Row,not-an-email-{run},member\n"  # row 4: refused as POST /users refuses it
    started = call(stack, "POST", "/users/imports", admin, data=body, headers={"Content-Type": "text/csv"})
    assert started.status_code == 202, started.text
    job_id = started.json()["jobId"]
    assert started.headers["Location"].endswith(f"/users/imports/{job_id}")
    job = wait_for(stack, f"/users/imports/{job_id}", admin)
    assert job["status"] == "done"
    assert job["counts"] == {"total": 4, "processed": 4, "created": 3, "exists": 0, "failed": 1}
    (error,) = job["errors"]
    assert (error["row"], error["field"]) == (4, "email")
    for email in good:
        (user,) = find(stack, admin, email)
        assert user["role"] == "member"
        # A sign-in and its record, as POST /users makes them: the pool has the address.
        sign_in = stack.client("cognito-idp").admin_get_user(UserPoolId=stack.info["user_pool_id"], Username=email)
        assert sign_in["Username"] == user["userId"]

    again = call(stack, "POST", "/users/imports", admin, data=body, headers={"Content-Type": "text/csv"})
    assert again.status_code == 202, again.text
    rerun = wait_for(stack, f"/users/imports/{again.json()['jobId']}", admin)
    assert rerun["counts"] == {"total": 4, "processed": 4, "created": 0, "exists": 3, "failed": 1}
    for email in good:
        assert len(find(stack, admin, email)) == 1


def test_a_file_through_the_upload_form_starts_its_job_when_it_lands(stack: Stack) -> None:
    admin = stack.token()
    run = uuid.uuid4().hex[:8]
    wanted = emails(run, 60)
    # Larger than the request body limit: this is what the form is for.
    lines = [json.dumps({"name": f"Uploaded {n} {'x' * 150}"[:100], "email": e}) for n, e in enumerate(wanted)]
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) > 8192
    asked = call(stack, "POST", "/users/imports", admin, {"upload": True, "format": "jsonl", "invite": False})
    assert asked.status_code == 202, asked.text
    job = asked.json()
    assert job["status"] == "queued" and job["source"] == "upload" and job["invite"] is False
    form = job["upload"]
    posted = requests.post(
        form["url"],
        data=form["fields"],
        files={"file": ("users.jsonl", data, form["contentType"])},
        timeout=30,
    )
    assert posted.status_code in (200, 201, 204), posted.text
    done = wait_for(stack, f"/users/imports/{job['jobId']}", admin)
    assert done["status"] == "done", done
    assert done["counts"] == {"total": 60, "processed": 60, "created": 60, "exists": 0, "failed": 0}
    rows = call(stack, "GET", f"/users/imports/{job['jobId']}/rows", admin, params={"limit": 100}).json()
    assert [row["outcome"] for row in rows["rows"]] == ["created"] * 60
    # invite: false: nobody of this file got an invitation in the outbox.
    outbox = Path(stack.info["outbox_file"]).read_text() if Path(stack.info["outbox_file"]).exists() else ""
    assert not any(email in outbox for email in wanted)


def test_an_export_lists_every_user_once_behind_a_presigned_link(stack: Stack) -> None:
    admin = stack.token()
    run = uuid.uuid4().hex[:8]
    mine = emails(run, 2)
    for n, email in enumerate(mine):
        created = call(stack, "POST", "/users", admin, {"name": f"Exported {n}", "email": email})
        assert created.status_code == 201, created.text
    started = call(stack, "POST", "/users/exports", admin, {"format": "csv"})
    assert started.status_code == 202, started.text
    job_id = started.json()["jobId"]
    assert started.headers["Location"].endswith(f"/users/exports/{job_id}")
    job = wait_for(stack, f"/users/exports/{job_id}", admin)
    assert job["status"] == "done", job
    download = requests.get(job["download"]["url"], timeout=30)
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert len(rows) == job["users"]
    ids = [row["userId"] for row in rows]
    assert len(ids) == len(set(ids))  # nobody twice
    by_email = {row["email"]: row for row in rows}
    for email in mine:
        assert by_email[email]["role"] == "member" and by_email[email]["enabled"] == "true"
    # Members may not export.
    member = stack.token(stack.info["member_username"], stack.info["member_password"])
    assert call(stack, "POST", "/users/exports", member, {}).status_code == 403


def make(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["make", "-s", "--no-print-directory", *args]
    return subprocess.run(
        command,
        cwd=PROJECT_DIR,
        env=shell_env(stack.stack_file),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )


def test_make_import_and_make_export_as_docs_local_shows_them(stack: Stack, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    users = tmp_path / "users.csv"
    users.write_text("name,email\n" + "".join(f"Made {n},{e}\n" for n, e in enumerate(emails(run, 3))))
    imported = make(stack, "import", f"FILE={users}")
    assert imported.returncode == 0, imported.stderr
    assert "3 created, 0 exist already, 0 failed" in imported.stdout
    again = make(stack, "import", f"FILE={users}", "INVITE=0")
    assert again.returncode == 0, again.stderr
    assert "0 created, 3 exist already, 0 failed" in again.stdout

    out = tmp_path / "users.jsonl"
    exported = make(stack, "export", f"OUT={out}")
    assert exported.returncode == 0, exported.stderr
    assert out.stat().st_mode & 0o777 == 0o600  # every user's email: owner-only
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(emails(run, 3)) <= {line["email"] for line in lines}
    assert {"userId", "name", "email", "role", "enabled", "createdAt"} <= set(lines[0])

    # As typed, without OUT: users-<date>-<id>.jsonl in the current folder (the project's here).
    plain = make(stack, "export")
    assert plain.returncode == 0, plain.stderr
    written = PROJECT_DIR / re.search(r" in (users-\S+\.jsonl) ", plain.stdout).group(1)  # type: ignore[union-attr]
    try:
        assert written.stat().st_mode & 0o777 == 0o600
        assert len(written.read_text().splitlines()) >= len(lines)
    finally:
        written.unlink(missing_ok=True)

    bad = tmp_path / "users.txt"
    bad.write_text("x")
    refused = make(stack, "import", f"FILE={bad}")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"make import: {bad}: name a .csv, .jsonl or .ndjson file" in refused.stderr
