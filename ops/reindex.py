"""`python -m ops reindex <stage>` (`make reindex`): give every user item of a stage's table the
attributes the search indexes are keyed on (chalicelib/adapters/user_index.py `search_attributes`).

Users written by this release carry them from their first write; users written by an earlier one
do not, and no index holds them until this has run (docs/DEPLOY.md, "Upgrading the users table").
It scans the table (the operator's credentials: the API's role may not scan) in parallel segments
and sets the attributes of each user item that lacks them or holds others, conditioned on the
revision it read (version and creation time), so it never writes keys computed from a stale read:
a user changed meanwhile is read again and retried (a few times; one that keeps changing is counted
and left for another run). Nothing else of the item changes: no new version, no write stamp, and
no change event (the stream consumer publishes changes of public fields only). Running it again
changes nothing.

Run it once the release is fully live (the canary done): a request served by the previous
release in the meantime writes no search attributes, so a user it renamed, promoted or disabled
keeps stale ones until this runs.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws import error_code
from chalicelib.adapters.dynamodb import item_to_user
from chalicelib.adapters.user_index import search_attributes
from ops.table_scan import consistent_scan

# Parallel scan segments (and threads): a 10-million-user table is about 5 GB, which one segment
# reads in hours; 16 do it in minutes while staying far below on-demand's limits.
DEFAULT_SEGMENTS = 16


@dataclass
class Counts:
    users: int = 0
    updated: int = 0
    changed_meanwhile: int = 0

    def line(self) -> str:
        return (
            f"{self.users} users: {self.updated} given their search keys, "
            f"{self.users - self.updated - self.changed_meanwhile} already had them, "
            f"{self.changed_meanwhile} kept changing meanwhile (run it again)"
        )


# Attempts on a user whose revision keeps moving between the read and the write.
ATTEMPTS = 3


def _reindex_item(client: Any, table: str, item: dict[str, Any]) -> str:
    """'skip' (not a user), 'ok', 'updated' or 'changed' (its revision kept moving: left as is)."""
    for _ in range(ATTEMPTS):
        outcome = _try(client, table, item)
        if outcome != "changed":
            return outcome
        item = client.get_item(TableName=table, Key={"userId": item["userId"]}, ConsistentRead=True).get("Item", {})
    return "changed"


def _try(client: Any, table: str, item: dict[str, Any]) -> str:
    user = item_to_user(item)
    if user is None:
        return "skip"
    wanted = search_attributes(user)
    if all(item.get(name, {}).get("S") == value for name, value in wanted.items()):
        return "ok"
    names = {f"#a{n}": name for n, name in enumerate(wanted)}
    values: dict[str, Any] = {f":a{n}": {"S": value} for n, value in enumerate(wanted.values())}
    values.update({":version": item["version"], ":created": item["createdAt"]})
    try:
        client.update_item(
            TableName=table,
            Key={"userId": item["userId"]},
            UpdateExpression="SET " + ", ".join(f"#a{n} = :a{n}" for n in range(len(wanted))),
            ConditionExpression="#version = :version AND #created = :created",
            ExpressionAttributeNames={**names, "#version": "version", "#created": "createdAt"},
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        return "changed"
    return "updated"


def reindex(client: Any, table: str, segments: int = DEFAULT_SEGMENTS) -> Counts:
    counts = Counts()
    lock = threading.Lock()

    def run(segment: int) -> None:
        for item in consistent_scan(client, table, Segment=segment, TotalSegments=segments):
            outcome = _reindex_item(client, table, item)
            if outcome == "skip":
                continue
            with lock:
                counts.users += 1
                counts.updated += outcome == "updated"
                counts.changed_meanwhile += outcome == "changed"

    if segments == 1:
        run(0)
    else:
        with ThreadPoolExecutor(max_workers=segments) as pool:
            for future in [pool.submit(run, segment) for segment in range(segments)]:
                future.result()
    return counts


def run(stage: str, stack_file: Path, segments: int, out: Callable[[str], None] = print) -> int:
    if stage == "local":
        if not stack_file.exists():
            raise SystemExit(f"{stack_file} not found: start the stack first with `make run`")
        from devstack.resources import emulator_client

        info = json.loads(stack_file.read_text())
        table = info["table_name"]
        client = emulator_client("dynamodb", info["aws_endpoint_url"], info["region"])
    else:
        import boto3

        from infra.stages import load_stage

        table = load_stage(stage).table_name
        client = boto3.client("dynamodb")
    out(f"{stage}: {reindex(client, table, segments).line()}")
    return 0


def main(stage: str, segments: int) -> None:
    stack_file = Path(os.environ.get("STACK_FILE", Path(__file__).resolve().parent.parent / ".local" / "stack.json"))
    sys.exit(run(stage, stack_file, segments))
