"""The bulk job routes through the app and Chalice's test client, the worker through app.py's
`bulk_jobs` handler (as its event source mapping calls it), DynamoDB, S3, SQS and Cognito on moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from chalicelib.config import DEFAULT_MAX_BODY_BYTES
from chalicelib.domain.imports import MAX_UPLOAD_BYTES, UPLOAD_EXPIRES_S
from chalicelib.domain.jobs import new_job_id
from tests.functional.conftest import JOBS_TABLE, TABLE, Api
from tests.functional.test_users_api import ADMIN, MEMBER, all_users, assert_error, create
from tests.support.presigned import exact_conditions, list_conditions, policy_expiry, post_policy

CSV = "text/csv"
JSONL = "application/x-ndjson"


def start(api: Api, body: str | bytes, media_type: str = CSV, query: str = "", **headers: str) -> Any:
    return api.request(
        "POST", f"/users/imports{query}", ADMIN, raw=body, headers={"Content-Type": media_type, **headers}
    )


def started(api: Api, body: str, media_type: str = CSV, query: str = "") -> dict[str, Any]:
    response = start(api, body, media_type, query)
    assert response.status_code == 202, response.body
    return dict(response.json_body)


def job(api: Api, job_id: str, query: str = "") -> dict[str, Any]:
    response = api.request("GET", f"/users/imports/{job_id}{query}", ADMIN)
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def rows(api: Api, job_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.request("GET", f"/users/imports/{job_id}/rows{query}", ADMIN).json_body
        found += page["rows"]
        cursor = page["nextCursor"]
        if cursor is None:
            return found


def items(ddb: Any, table: str) -> list[str]:
    return sorted(map(str, ddb.scan(TableName=table, ConsistentRead=True)["Items"]))


FILE = "name,email,phone,role\nAda,ada@example.com,+14155550123,\nBad,not-an-email,,\nGrace,grace@example.com,,admin\n"


def test_an_import_creates_each_row_as_post_users_does_and_reports_each_row(
    api: Api, run_jobs: Callable[[], int], pool: str, outbox: Any
) -> None:
    response = start(api, FILE)
    assert response.status_code == 202
    body = response.json_body
    assert response.headers["Location"] == f"/users/imports/{body['jobId']}"
    assert (body["status"], body["kind"], body["format"], body["invite"], body["source"]) == (
        "queued",
        "import",
        "csv",
        True,
        "inline",
    )
    run_jobs()
    done = job(api, body["jobId"])
    assert done["status"] == "done"
    assert done["counts"] == {"total": 3, "processed": 3, "created": 2, "exists": 0, "failed": 1}
    assert done["errors"] == [{"row": 2, "field": "email", "message": "must be a valid email address"}]
    users = {u["email"]: u for u in all_users(api)}
    assert users["ada@example.com"]["phone"] == "+14155550123" and users["ada@example.com"]["role"] == "member"
    assert users["grace@example.com"]["role"] == "admin"
    outcomes = rows(api, body["jobId"])
    assert [(r["row"], r["outcome"]) for r in outcomes] == [(1, "created"), (2, "failed"), (3, "created")]
    assert outcomes[0]["userId"] == users["ada@example.com"]["userId"]
    # Invited as POST /users invites (locally: the outbox), and Grace is in the admins group.
    invited = [json.loads(line)["to"] for line in outbox.read_text().splitlines()]
    assert sorted(invited) == ["ada@example.com", "grace@example.com"]
    import boto3

    group = boto3.client("cognito-idp", region_name="us-east-1").list_users_in_group(
        UserPoolId=pool, GroupName="admins"
    )
    assert [u["Username"] for u in group["Users"]] == [users["grace@example.com"]["userId"]]


def test_a_rerun_of_the_same_file_creates_nobody_and_reports_the_existing_users(
    api: Api, run_jobs: Callable[[], int]
) -> None:
    first = started(api, FILE)
    run_jobs()
    before = {u["userId"] for u in all_users(api)}
    second = started(api, FILE)
    run_jobs()
    assert job(api, second["jobId"])["counts"] == {"total": 3, "processed": 3, "created": 0, "exists": 2, "failed": 1}
    assert {u["userId"] for u in all_users(api)} == before
    created = {r["row"]: r["userId"] for r in rows(api, first["jobId"]) if r["outcome"] == "created"}
    assert {r["row"]: r["userId"] for r in rows(api, second["jobId"]) if r["outcome"] == "exists"} == created


def test_invite_false_sends_no_invitation(api: Api, run_jobs: Callable[[], int], outbox: Any) -> None:
    body = started(api, FILE, query="?invite=false")
    assert body["invite"] is False
    run_jobs()
    assert job(api, body["jobId"])["counts"]["created"] == 2
    assert not outbox.exists() or outbox.read_text() == ""


def test_json_lines_rows_are_checked_like_post_users_bodies(api: Api, run_jobs: Callable[[], int]) -> None:
    lines = [
        '{"name": "Ada", "email": "ada@example.com"}',
        '{"name": "Ada", "email": "ada2@example.com", "userId": "ignored", "createdAt": "ignored"}',
        '{"name": "X", "email": "x@example.com", "groups": ["admins"]}',
        "not json",
        "[1, 2]",
        '{"name": "\\ud800", "email": "s@example.com"}',
        '{"name": "Ann", "email": "ADA@example.com"}',
    ]
    body = started(api, "\n".join(lines) + "\n", JSONL)
    run_jobs()
    report = job(api, body["jobId"])
    assert report["counts"] == {"total": 7, "processed": 7, "created": 2, "exists": 1, "failed": 4}
    assert report["errors"] == [
        {"row": 3, "field": "groups", "message": "unknown field"},
        {"row": 4, "field": None, "message": "The row is not valid JSON"},
        {"row": 5, "field": None, "message": "The row is not a JSON object"},
        {"row": 6, "field": None, "message": "The row holds a string that is not valid Unicode (a lone surrogate)"},
    ]


def test_errors_are_paged_with_a_signed_cursor_bound_to_the_job(api: Api, run_jobs: Callable[[], int]) -> None:
    bad = "name,email\n" + "".join(f"N{i},bad-{i}\n" for i in range(5))
    body = started(api, bad)
    run_jobs()
    first = job(api, body["jobId"], "?limit=2")
    assert [e["row"] for e in first["errors"]] == [1, 2] and first["count"] == 2
    second = job(api, body["jobId"], f"?limit=2&cursor={first['nextCursor']}")
    assert [e["row"] for e in second["errors"]] == [3, 4]
    # A cursor of another list, of another job, or of the users list is refused.
    other = started(api, bad)
    assert_error(api.request("GET", f"/users/imports/{other['jobId']}?cursor={first['nextCursor']}", ADMIN), 400)
    rows_cursor = api.request("GET", f"/users/imports/{body['jobId']}/rows?limit=1", ADMIN).json_body["nextCursor"]
    assert_error(api.request("GET", f"/users/imports/{body['jobId']}?cursor={rows_cursor}", ADMIN), 400)
    create(api, "a@example.com")
    create(api, "b@example.com")
    users_cursor = api.request("GET", "/users?limit=1", ADMIN).json_body["nextCursor"]
    assert_error(api.request("GET", f"/users/imports/{body['jobId']}?cursor={users_cursor}", ADMIN), 400)
    assert_error(api.request("GET", f"/users/imports/{body['jobId']}?limit=0", ADMIN), 400)


@pytest.mark.parametrize(
    ("body", "media_type", "status", "message"),
    [
        ("email,name\n", CSV, 400, "The file has no rows"),
        ("name,mail\nAda,ada@example.com\n", CSV, 400, "The CSV header must name"),
        ("Ada,ada@example.com\n", CSV, 400, "The CSV header must name"),
        ("", CSV, 400, "Request body is required"),
        ("name,email\nAda,a@example.com\n", "text/plain", 415, ""),
        ("x" * (DEFAULT_MAX_BODY_BYTES + 1), CSV, 413, "ask for an upload form"),
        ('{"upload": false}', "application/json", 400, "Invalid import request"),
        ('{"upload": true, "format": "xml"}', "application/json", 400, "Invalid import request"),
        ('{"upload": true, "extra": 1}', "application/json", 400, "Invalid import request"),
        ("name,email\nAda,a@example.com\n", CSV, 400, "Invalid import request"),  # ?bogus=1 below
    ],
)
def test_a_refused_import_is_a_4xx_and_changes_nothing(
    api: Api, ddb: Any, body: str, media_type: str, status: int, message: str
) -> None:
    before = items(ddb, JOBS_TABLE), items(ddb, TABLE)
    query = "?bogus=1" if message == "Invalid import request" and media_type == CSV else ""
    error = assert_error(start(api, body, media_type, query), status)
    assert error["error"].startswith(message) or message in error["error"]
    assert (items(ddb, JOBS_TABLE), items(ddb, TABLE)) == before
    assert_error(start(api, "name,email\nAda,a@example.com\n", CSV, "?invite=maybe"), 400)


@pytest.mark.parametrize(("body", "query", "invite"), [("true", "?invite=false", False), ("false", "", False)])
def test_invite_false_in_the_body_or_the_query_of_an_upload_request_sends_none(
    api: Api, body: str, query: str, invite: bool
) -> None:
    """Never ignored: an ignored ?invite=false would send the invitations the caller asked not to send."""
    answer = started(api, f'{{"upload": true, "invite": {body}}}', "application/json", query)
    assert answer["invite"] is invite


@pytest.mark.parametrize("query", ["?invite=maybe", "?bogus=1"])
def test_an_upload_request_with_a_bad_query_is_400_and_changes_nothing(api: Api, ddb: Any, query: str) -> None:
    before = items(ddb, JOBS_TABLE), items(ddb, TABLE)
    error = assert_error(start(api, '{"upload": true}', "application/json", query), 400)
    assert error["details"][0]["field"] == query[1:].split("=")[0]
    assert (items(ddb, JOBS_TABLE), items(ddb, TABLE)) == before


def test_import_routes_are_for_admins_only(api: Api, run_jobs: Callable[[], int]) -> None:
    body = started(api, FILE)
    for method, path in (
        ("POST", "/users/imports"),
        ("GET", f"/users/imports/{body['jobId']}"),
        ("GET", f"/users/imports/{body['jobId']}/rows"),
        ("DELETE", f"/users/imports/{body['jobId']}"),
        ("POST", "/users/exports"),
        ("GET", f"/users/exports/{body['jobId']}"),
    ):
        raw = FILE if path == "/users/imports" else "{}"
        headers = {"Content-Type": CSV if path == "/users/imports" else "application/json"}
        assert_error(api.request(method, path, MEMBER, raw=raw, headers=headers), 403)
        assert_error(api.request(method, path, None, raw=raw, headers=headers), 401)
    assert job(api, body["jobId"])["status"] == "queued"


def test_unknown_ids_of_jobs_are_404_and_kinds_do_not_mix(api: Api) -> None:
    body = started(api, FILE)
    export = api.request("POST", "/users/exports", ADMIN).json_body
    for path in (
        "/users/imports/not-a-job",
        f"/users/imports/{new_job_id('nobody')}",
        f"/users/imports/{export['jobId']}",
        f"/users/exports/{body['jobId']}",
        f"/users/imports/{new_job_id('nobody')}/rows",
    ):
        assert assert_error(api.request("GET", path, ADMIN), 404)["error"] == "Job not found"
    assert_error(api.request("DELETE", f"/users/imports/{export['jobId']}", ADMIN), 404)


def test_an_idempotency_key_starts_one_job_and_replays_its_answer(api: Api, ddb: Any) -> None:
    first = start(api, FILE, **{"Idempotency-Key": "import-1"})
    again = start(api, FILE, **{"Idempotency-Key": "import-1"})
    assert first.status_code == again.status_code == 202
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json_body["jobId"] == first.json_body["jobId"]
    assert assert_error(start(api, FILE + "Kay,kay@example.com,,\n", **{"Idempotency-Key": "import-1"}), 422)
    jobs = [i for i in ddb.scan(TableName=JOBS_TABLE)["Items"] if i["item"]["S"] == "JOB"]
    assert len(jobs) == 1


def test_cancel_stops_between_batches_and_a_finished_job_cannot_be_cancelled(
    api: Api, run_jobs: Callable[[], int]
) -> None:
    queued = started(api, FILE)
    cancelled = api.request("DELETE", f"/users/imports/{queued['jobId']}", ADMIN)
    assert cancelled.status_code == 200 and cancelled.json_body["status"] == "cancelled"
    assert api.request("DELETE", f"/users/imports/{queued['jobId']}", ADMIN).json_body["status"] == "cancelled"
    run_jobs()
    assert job(api, queued["jobId"])["counts"]["processed"] == 0
    assert all_users(api) == []
    finished = started(api, FILE)
    run_jobs()
    assert_error(api.request("DELETE", f"/users/imports/{finished['jobId']}", ADMIN), 409)


def test_an_upload_form_takes_a_file_larger_than_the_body_limit_and_the_job_starts_when_it_lands(
    api: Api, run_jobs: Callable[[], int]
) -> None:
    asked = api.request("POST", "/users/imports", ADMIN, {"upload": True, "format": "jsonl", "invite": False})
    assert asked.status_code == 202
    body = asked.json_body
    form = body["upload"]
    assert (body["source"], body["invite"], form["contentType"]) == ("upload", False, JSONL)
    assert form["key"] == f"imports/{body['jobId']}.jsonl"
    # Few rows (mock_aws copies a table per transaction), each long enough to pass the body limit.
    name = "Name " + "x" * 90
    lines = "".join(json.dumps({"name": f"{name} {i}", "email": f"u{i}@example.com"}) + "\n" for i in range(70))
    assert len(lines) > DEFAULT_MAX_BODY_BYTES
    run_jobs()
    assert job(api, body["jobId"])["status"] == "queued"  # nothing landed yet
    # What S3 enforces (moto does not): this key, this content type, 1 byte to 128 MiB, for 15 minutes.
    policy = post_policy(form["fields"])
    assert exact_conditions(policy).items() >= {"key": form["key"], "Content-Type": JSONL}.items()
    assert list_conditions(policy)["content-length-range"] == [1, MAX_UPLOAD_BYTES]
    remaining = (policy_expiry(policy) - datetime.now(UTC)).total_seconds()
    assert UPLOAD_EXPIRES_S - 60 < remaining <= UPLOAD_EXPIRES_S
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("u.jsonl", lines, JSONL)}, timeout=10)
    assert posted.status_code == 204
    run_jobs()
    report = job(api, body["jobId"])
    assert report["counts"] == {"total": 70, "processed": 70, "created": 70, "exists": 0, "failed": 0}
    assert report["status"] == "done" and len(all_users(api)) == 70


def test_an_export_writes_every_user_and_gives_a_link_that_expires(api: Api, run_jobs: Callable[[], int]) -> None:
    for n in range(3):
        create(api, f"u{n}@example.com", name=f"=U{n}")
    response = api.request("POST", "/users/exports", ADMIN, {"format": "csv"})
    assert response.status_code == 202
    body = response.json_body
    assert response.headers["Location"] == f"/users/exports/{body['jobId']}"
    pending = api.request("GET", f"/users/exports/{body['jobId']}", ADMIN).json_body
    assert pending["status"] == "queued" and "download" not in pending
    run_jobs()
    done = api.request("GET", f"/users/exports/{body['jobId']}", ADMIN).json_body
    assert (done["status"], done["users"]) == ("done", 3)
    assert "X-Amz-Expires=900" in done["download"]["url"]
    text = requests.get(done["download"]["url"], timeout=10).text
    lines = text.splitlines()
    assert lines[0] == "userId,name,email,phone,role,enabled,createdAt,updatedAt,version"
    # A name a spreadsheet would run as a formula is quoted.
    assert sorted(line.split(",")[1] for line in lines[1:]) == ["'=U0", "'=U1", "'=U2"]
    jsonl = api.request("POST", "/users/exports", ADMIN).json_body  # no body: JSON Lines
    run_jobs()
    url = api.request("GET", f"/users/exports/{jsonl['jobId']}", ADMIN).json_body["download"]["url"]
    exported = [json.loads(line) for line in requests.get(url, timeout=10).text.splitlines()]
    assert {u["email"] for u in exported} == {f"u{n}@example.com" for n in range(3)}
    assert {u["userId"] for u in exported} == {u["userId"] for u in all_users(api)}


@pytest.mark.parametrize("raw", ['{"format": "xml"}', '{"fmt": "csv"}', "[1]"])
def test_a_refused_export_is_400_and_starts_nothing(api: Api, ddb: Any, raw: str) -> None:
    before = items(ddb, JOBS_TABLE)
    assert_error(
        api.request("POST", "/users/exports", ADMIN, raw=raw, headers={"Content-Type": "application/json"}), 400
    )
    assert items(ddb, JOBS_TABLE) == before


def test_an_exported_csv_imports_back_as_existing_users(api: Api, run_jobs: Callable[[], int]) -> None:
    for n in range(3):
        create(api, f"u{n}@example.com", name=f"@U{n}")
    export = api.request("POST", "/users/exports", ADMIN, {"format": "csv"}).json_body
    run_jobs()
    url = api.request("GET", f"/users/exports/{export['jobId']}", ADMIN).json_body["download"]["url"]
    back = started(api, requests.get(url, timeout=10).text)
    run_jobs()
    assert job(api, back["jobId"])["counts"] == {"total": 3, "processed": 3, "created": 0, "exists": 3, "failed": 0}
    assert sorted(u["name"] for u in all_users(api)) == ["@U0", "@U1", "@U2"]
