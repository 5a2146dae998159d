"""The bulk jobs worker (app.py's `bulk_jobs`, behind the job queue): one queue message at a time.

A message is one of
- an S3 event: an import file landed under imports/ (the bucket notifies the queue) -> plan it;
- {"kind": "plan", "job"}: a planner that ran out of time hands over -> go on planning;
- {"kind": "rows", "job", "attempt", "rows"}: a batch -> create its users;
- {"kind": "export", "job", "step"}: write (the next part of) an export.

A message that raises is handed over again by SQS (its visibility timeout), up to MAX_RECEIVES
times; on the last, the worker gives up on it in a way that leaves no row or job without an end
(the batch's rows fail, the plan or export fails) and only a failure of that too goes to the
dead-letter queue (whose alarm says so).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from chalicelib.domain.bulk_files import Row
from chalicelib.domain.exports import ExportWriter
from chalicelib.domain.import_rows import ImportPlanner, RowImporter
from chalicelib.domain.jobs import MAX_RECEIVES, is_job_id, parse_import_key

logger = logging.getLogger("users_api.job_worker")

# Work stops this long before Lambda's timeout (a quarter of the time given, for short runs): what
# is left goes back to the queue.
SAFETY_MARGIN_MS = 30_000


def read_message(body: str) -> list[tuple[str, dict[str, Any]]]:
    """(kind, message) for each piece of work a message body asks for; [] for anything else (an
    S3 test event, another prefix, garbage: logged and dropped, since no retry would help)."""
    try:
        data = json.loads(body)
    except ValueError:
        logger.error("a job message that is not JSON was dropped")
        return []
    if not isinstance(data, dict):
        return []
    kind = data.get("kind")
    if kind in ("plan", "rows", "export") and isinstance(data.get("job"), str) and is_job_id(data["job"]):
        return [(str(kind), data)]
    work = []
    for record in data.get("Records") or []:
        if not isinstance(record, dict) or not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        key = unquote_plus(str(record.get("s3", {}).get("object", {}).get("key", "")))
        parsed = parse_import_key(key)
        if parsed is not None:
            work.append(("plan", {"kind": "plan", "job": parsed[0]}))
    if not work and data.get("Event") != "s3:TestEvent":
        logger.warning("a job message asking for nothing known was dropped")
    return work


class JobWorker:
    def __init__(self, planner: ImportPlanner, rows: RowImporter, exports: ExportWriter):
        self._planner = planner
        self._rows = rows
        self._exports = exports

    def handle(self, records: list[dict[str, Any]], remaining_ms: Callable[[], int]) -> None:
        """Do what each record asks; raises (so SQS hands the message over again) if one fails."""

        margin = min(SAFETY_MARGIN_MS, remaining_ms() / 4)

        def deadline() -> bool:
            return remaining_ms() < margin

        for record in records:
            receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
            runner = str(record.get("messageId", ""))
            for kind, message in read_message(str(record.get("body", ""))):
                try:
                    self._do(kind, message, runner, deadline)
                except Exception:
                    if receives < MAX_RECEIVES:
                        raise
                    logger.exception("a %s message failed on its last delivery: giving up on it", kind)
                    self._give_up(kind, message)

    def _do(self, kind: str, message: dict[str, Any], runner: str, deadline: Callable[[], bool]) -> None:
        job_id = str(message["job"])
        if kind == "plan":
            self._planner.plan(job_id, deadline)
        elif kind == "rows":
            rows = [Row.from_message(row) for row in message["rows"]]
            self._rows.process(job_id, rows, int(message.get("attempt", 0)), deadline)
        else:
            self._exports.run(job_id, int(message.get("step", 0)), runner, deadline, int(message.get("attempt", 0)))

    def _give_up(self, kind: str, message: dict[str, Any]) -> None:
        job_id = str(message["job"])
        if kind == "plan":
            self._planner.give_up(job_id)
        elif kind == "rows":
            self._rows.give_up(job_id, [Row.from_message(row) for row in message["rows"]])
        else:
            self._exports.give_up(job_id)
