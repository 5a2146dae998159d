"""Bulk jobs on DynamoDB, in their own table: nothing of a job ever shares the users table, its
stream or its indexes.

Keyed by `jobId` and `item`:
- `JOB`: the job: kind, status, counts, and how far its worker got (the planner's point, an
  export's multipart upload and parts); the counts and `pending` change only in the same
  transaction that stores a row's outcome;
- `ROW#<row, 10 digits>`: a row's outcome (created / exists with the user's id, failed with its
  problems): written once, conditionally, so a redelivered row is recognised and counted once;
- `ERR#<row>`: the same for a failed row, so the error list is one Query of its own prefix.
Every item expires (TTL) JOB_RETENTION_DAYS after the job was created.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.adapters.table_schema import TTL_ATTRIBUTE
from chalicelib.config import ConfigurationError
from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.domain.jobs import (
    DONE,
    EXPORT,
    OUTCOMES,
    QUEUED,
    ROW_FAILED,
    RUNNING,
    Counts,
    ExportPoint,
    Job,
    Part,
    PlanPoint,
    RowOutcome,
)

JOB_ITEM = "JOB"
ROW_PREFIX, ERROR_PREFIX = "ROW#", "ERR#"
ROW_DIGITS = 10
KEY_SCHEMA = [{"AttributeName": "jobId", "KeyType": "HASH"}, {"AttributeName": "item", "KeyType": "RANGE"}]
ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": "jobId", "AttributeType": "S"},
    {"AttributeName": "item", "AttributeType": "S"},
]
_CONDITION_FAILED = "ConditionalCheckFailedException"
# Cancellation reasons of a transaction that mean "not now".
_UNAVAILABLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})


def create_jobs_table_kwargs(table_name: str) -> dict[str, Any]:
    """CreateTable of the jobs table, as deployed (no stream: nothing reads one)."""
    return {
        "TableName": table_name,
        "KeySchema": KEY_SCHEMA,
        "AttributeDefinitions": ATTRIBUTE_DEFINITIONS,
        "BillingMode": "PAY_PER_REQUEST",
    }


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def _key(job_id: str, item: str = JOB_ITEM) -> dict[str, dict[str, str]]:
    return {"jobId": _s(job_id), "item": _s(item)}


def _row_item(prefix: str, row: int) -> str:
    return f"{prefix}{row:0{ROW_DIGITS}d}"


def job_to_item(job: Job) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_key(job.job_id),
        "kind": _s(job.kind),
        "status": _s(job.status),
        "actor": _s(job.actor),
        "format": _s(job.format),
        "createdAt": _s(job.created_at),
        TTL_ATTRIBUTE: _n(job.expires_at),
    }
    if job.kind == EXPORT:
        item["step"] = _n(0)
    else:
        item["invite"] = {"BOOL": job.invite}
        item["source"] = _s(job.source)
        for name in ("created", "exists", "failed"):
            item[name] = _n(0)
        if job.upload_expires_at is not None:
            item["uploadExpiresAt"] = _n(job.upload_expires_at)
    return item


def _str(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if value else None


def _int(item: dict[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value else default


def item_to_job(item: dict[str, Any]) -> Job:
    total = item.get("total")
    return Job(
        job_id=item["jobId"]["S"],
        kind=item["kind"]["S"],
        status=item["status"]["S"],
        actor=item["actor"]["S"],
        format=item["format"]["S"],
        created_at=item["createdAt"]["S"],
        expires_at=_int(item, TTL_ATTRIBUTE),
        started_at=_str(item, "startedAt"),
        finished_at=_str(item, "finishedAt"),
        error=_str(item, "error"),
        invite=bool(item.get("invite", {}).get("BOOL", True)),
        source=_str(item, "source") or "",
        upload_expires_at=_int(item, "uploadExpiresAt") if "uploadExpiresAt" in item else None,
        counts=Counts(
            total=int(total["N"]) if total else None,
            created=_int(item, "created"),
            exists=_int(item, "exists"),
            failed=_int(item, "failed"),
        ),
        users=_int(item, "users"),
        bytes=_int(item, "bytes"),
        object_key=_str(item, "objectKey"),
    )


def item_to_export_point(item: dict[str, Any]) -> ExportPoint:
    parts = tuple(Part(int(p["M"]["n"]["N"]), p["M"]["etag"]["S"]) for p in item.get("parts", {}).get("L", []))
    return ExportPoint(
        step=_int(item, "step"),
        upload_id=_str(item, "uploadId"),
        parts=parts,
        after=_str(item, "after"),
        users=_int(item, "users"),
        bytes=_int(item, "bytes"),
    )


def _outcome(item: dict[str, Any]) -> RowOutcome:
    problems = json.loads(item["problems"]["S"]) if "problems" in item else []
    return RowOutcome(
        row=int(item["item"]["S"][len(ROW_PREFIX) :]),
        outcome=item["outcome"]["S"],
        user_id=_str(item, "userId"),
        problems=tuple(problems),
    )


class DynamoJobStore(aws.ClientHolder):
    service = "dynamodb"

    def __init__(self, table_name: str, client: Any | None = None):
        if not table_name:
            raise ConfigurationError("environment variable JOBS_TABLE_NAME is required for bulk jobs")
        super().__init__(client)
        self._table = table_name

    def _update(self, job_id: str, update: str, condition: str, names: dict[str, str], values: dict[str, Any]) -> Any:
        """An UpdateItem of the job item; the job after it, or None when `condition` failed."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(job_id),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ReturnValues": "ALL_NEW",
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            return self._call("update_item", **kwargs)["Attributes"]
        except ClientError as exc:
            if aws.error_code(exc) == _CONDITION_FAILED:
                return None
            raise

    # --- jobs ---

    def create(self, job: Job) -> Job:
        try:
            self._call(
                "put_item",
                TableName=self._table,
                Item=job_to_item(job),
                ConditionExpression="attribute_not_exists(jobId)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if aws.error_code(exc) != _CONDITION_FAILED or "Item" not in exc.response:
                raise
            return item_to_job(exc.response["Item"])  # a retry of the request that created it
        return job

    def _get_item(self, job_id: str) -> dict[str, Any] | None:
        result = self._call("get_item", TableName=self._table, Key=_key(job_id), ConsistentRead=True)
        item: dict[str, Any] | None = result.get("Item")
        return item

    def get(self, job_id: str) -> Job | None:
        item = self._get_item(job_id)
        return item_to_job(item) if item else None

    def forget(self, job_id: str) -> None:
        try:
            self._call(
                "delete_item",
                TableName=self._table,
                Key=_key(job_id),
                ConditionExpression="#status = :queued",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":queued": _s(QUEUED)},
            )
        except ClientError as exc:
            if aws.error_code(exc) != _CONDITION_FAILED:
                raise  # else it started meanwhile: it is no longer ours to take back

    def move(self, job_id: str, old: frozenset[str], new: str, at: str, error: str | None = None) -> Job | None:
        names = {"#status": "status", "#stamp": "startedAt" if new == RUNNING else "finishedAt"}
        values: dict[str, Any] = {":new": _s(new), ":at": _s(at)}
        olds = []
        for index, status in enumerate(sorted(old)):
            values[f":old{index}"] = _s(status)
            olds.append(f":old{index}")
        update = "SET #status = :new, #stamp = :at"
        if error is not None:
            update += ", #error = :error"
            names["#error"] = "error"
            values[":error"] = _s(error)
        attributes = self._update(job_id, update, f"#status IN ({', '.join(olds)})", names, values)
        return item_to_job(attributes) if attributes else None

    # --- the import planner ---

    def set_total(self, job_id: str, total: int, point: PlanPoint) -> bool:
        attributes = self._update(
            job_id,
            "SET #total = :total, pending = if_not_exists(pending, :zero) + :total, planRow = :row, "
            "planOffset = :offset, #header = :header, rowsStart = :start",
            "attribute_not_exists(#total) AND #status = :running",
            {"#total": "total", "#header": "header", "#status": "status"},
            {
                ":total": _n(total),
                ":zero": _n(0),
                ":row": _n(point.row),
                ":offset": _n(point.offset),
                ":header": {"L": [_s(name) for name in point.header]},
                ":start": _n(point.rows_start),
                ":running": _s(RUNNING),
            },
        )
        return attributes is not None

    def plan_point(self, job_id: str) -> PlanPoint | None:
        item = self._get_item(job_id)
        if not item or "planRow" not in item:
            return None
        return PlanPoint(
            offset=_int(item, "planOffset"),
            row=_int(item, "planRow"),
            header=tuple(value["S"] for value in item.get("header", {}).get("L", [])),
            rows_start=_int(item, "rowsStart"),
            done=bool(item.get("planned", {}).get("BOOL", False)),
        )

    def save_plan_point(self, job_id: str, old_row: int, point: PlanPoint) -> bool:
        attributes = self._update(
            job_id,
            "SET planRow = :row, planOffset = :offset",
            "planRow = :old",
            {},
            {":row": _n(point.row), ":offset": _n(point.offset), ":old": _n(old_row)},
        )
        return attributes is not None

    def finish_planning(self, job_id: str) -> None:
        self._update(job_id, "SET planned = :yes", "attribute_exists(jobId)", {}, {":yes": {"BOOL": True}})

    # --- rows ---

    def done_rows(self, job_id: str, rows: list[int]) -> set[int]:
        done: set[int] = set()
        keys = [_key(job_id, _row_item(ROW_PREFIX, row)) for row in rows]
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self._table: {"Keys": keys[start : start + 100], "ConsistentRead": True, "ProjectionExpression": "#i"}
            }
            request[self._table]["ExpressionAttributeNames"] = {"#i": "item"}
            for _ in range(10):
                result = self._call("batch_get_item", RequestItems=request)
                for item in result.get("Responses", {}).get(self._table, []):
                    done.add(int(item["item"]["S"][len(ROW_PREFIX) :]))
                request = result.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise ServiceUnavailable()
        return done

    def record(self, job_id: str, outcome: RowOutcome, expires_at: int) -> bool:
        assert outcome.outcome in OUTCOMES
        item: dict[str, Any] = {
            **_key(job_id, _row_item(ROW_PREFIX, outcome.row)),
            "outcome": _s(outcome.outcome),
            TTL_ATTRIBUTE: _n(expires_at),
        }
        if outcome.user_id is not None:
            item["userId"] = _s(outcome.user_id)
        if outcome.problems:
            item["problems"] = _s(json.dumps(list(outcome.problems), ensure_ascii=False))
        new = "attribute_not_exists(jobId)"
        items: list[dict[str, Any]] = [{"Put": {"TableName": self._table, "Item": item, "ConditionExpression": new}}]
        if outcome.outcome == ROW_FAILED:
            error = {**item, "item": _s(_row_item(ERROR_PREFIX, outcome.row))}
            items.append({"Put": {"TableName": self._table, "Item": error, "ConditionExpression": new}})
        items.append(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(job_id),
                    "UpdateExpression": "ADD #outcome :one, pending :less",
                    "ConditionExpression": "attribute_exists(jobId)",
                    "ExpressionAttributeNames": {"#outcome": outcome.outcome},
                    "ExpressionAttributeValues": {":one": _n(1), ":less": _n(-1)},
                }
            }
        )
        # The same for a resend of this very write (DynamoDB then honours it for ten minutes), another
        # for any other outcome of the row, which must meet the condition instead of a reused token.
        content = json.dumps(items, sort_keys=True, separators=(",", ":"))
        token = hashlib.sha256(content.encode()).hexdigest()[:36]
        try:
            self._call("transact_write_items", TransactItems=items, ClientRequestToken=token)
        except ClientError as exc:
            reasons = [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]
            if aws.error_code(exc) != "TransactionCanceledException" or not reasons:
                raise
            if reasons[0] == "ConditionalCheckFailed":
                return False  # the row has its outcome already (a redelivery, or a resend of this write)
            if _UNAVAILABLE_REASONS.intersection(reasons) or "TransactionConflict" in reasons:
                raise ServiceUnavailable() from exc
            return False  # the job item is gone (expired): nothing to count
        return True

    def finish_if_complete(self, job_id: str, at: str) -> Job | None:
        attributes = self._update(
            job_id,
            "SET #status = :done, finishedAt = :at",
            "#status = :running AND planned = :yes AND pending = :zero",
            {"#status": "status"},
            {":done": _s(DONE), ":at": _s(at), ":running": _s(RUNNING), ":yes": {"BOOL": True}, ":zero": _n(0)},
        )
        return item_to_job(attributes) if attributes else None

    def outcomes(
        self, job_id: str, limit: int, after: int | None, failed_only: bool
    ) -> tuple[list[RowOutcome], int | None]:
        prefix = ERROR_PREFIX if failed_only else ROW_PREFIX
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "jobId = :job AND begins_with(#i, :prefix)",
            "ExpressionAttributeNames": {"#i": "item"},
            "ExpressionAttributeValues": {":job": _s(job_id), ":prefix": _s(prefix)},
            # One more tells whether another page exists, so the last page hands out no cursor.
            "Limit": limit + 1,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = _key(job_id, _row_item(prefix, after))
        result = self._call("query", **kwargs)
        items = result.get("Items", [])
        outcomes = [_outcome({**item, "item": _s(ROW_PREFIX + item["item"]["S"][len(prefix) :])}) for item in items]
        if len(outcomes) > limit:
            outcomes = outcomes[:limit]
            return outcomes, outcomes[-1].row
        last = result.get("LastEvaluatedKey")
        return outcomes, (int(last["item"]["S"][len(prefix) :]) if last else None)

    # --- exports ---

    def claim_step(self, job_id: str, step: int, runner: str, at: str) -> ExportPoint | None:
        attributes = self._update(
            job_id,
            "SET step = :next, runner = :me, #status = :running, startedAt = if_not_exists(startedAt, :at)",
            "#status IN (:queued, :running) AND (step = :step OR (step = :next AND runner = :me))",
            {"#status": "status"},
            {
                ":next": _n(step + 1),
                ":step": _n(step),
                ":me": _s(runner),
                ":running": _s(RUNNING),
                ":queued": _s(QUEUED),
                ":at": _s(at),
            },
        )
        return item_to_export_point(attributes) if attributes else None

    def export_point(self, job_id: str) -> ExportPoint | None:
        item = self._get_item(job_id)
        return item_to_export_point(item) if item else None

    def _point_values(self, point: ExportPoint, runner: str) -> dict[str, Any]:
        return {
            ":upload": _s(point.upload_id or ""),
            ":parts": {"L": [{"M": {"n": _n(p.number), "etag": _s(p.etag)}} for p in point.parts]},
            ":users": _n(point.users),
            ":bytes": _n(point.bytes),
            ":step": _n(point.step),
            ":me": _s(runner),
        }

    def save_export_point(self, job_id: str, point: ExportPoint, runner: str) -> bool:
        values = self._point_values(point, runner)
        update = "SET uploadId = :upload, parts = :parts, #users = :users, #bytes = :bytes"
        if point.after is None:
            update += " REMOVE #after"
        else:
            update = update.replace("#bytes = :bytes", "#bytes = :bytes, #after = :after")
            values[":after"] = _s(point.after)
        names = {"#users": "users", "#bytes": "bytes", "#after": "after"}
        return self._update(job_id, update, "step = :step AND runner = :me", names, values) is not None

    def finish_export(self, job_id: str, point: ExportPoint, runner: str, key: str, at: str) -> Job | None:
        values = {
            ":users": _n(point.users),
            ":bytes": _n(point.bytes),
            ":key": _s(key),
            ":done": _s(DONE),
            ":running": _s(RUNNING),
            ":at": _s(at),
            ":step": _n(point.step),
            ":me": _s(runner),
        }
        attributes = self._update(
            job_id,
            "SET #status = :done, finishedAt = :at, objectKey = :key, #users = :users, #bytes = :bytes",
            "#status = :running AND step = :step AND runner = :me",
            {"#status": "status", "#users": "users", "#bytes": "bytes"},
            values,
        )
        return item_to_job(attributes) if attributes else None
