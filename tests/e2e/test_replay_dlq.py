"""`make replay-dlq` against the running local stack, as a developer types it: a change the consumer
could not publish (the bus was gone) is dead-lettered by the local mapping, then, once the bus is
back, replayed through the consumer: its history entry and event appear, exactly once, and the
dead-letter queue is empty."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from devstack.process import PROJECT_DIR
from tests.e2e.conftest import Stack
from tests.support.local_api import call, shell_env
from tests.support.waiting import wait_until

# The local mapping retries a failing record three times, half a second apart, before it gives up.
RETRIES_S = 1.5
DEAD_LETTERED_S = 30.0


def make_replay(stack: Stack, *variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", "replay-dlq", *variables],
        cwd=PROJECT_DIR,
        env=shell_env(stack.stack_file),
        capture_output=True,
        text=True,
        timeout=120,
    )


def waiting(stack: Stack) -> int:
    sqs = stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.info["dead_letter_queue_url"], AttributeNames=["All"])
    values = attributes["Attributes"]
    return int(values["ApproximateNumberOfMessages"]) + int(values["ApproximateNumberOfMessagesNotVisible"])


def settled(stack: Stack) -> int:
    """The dead letters once no record of an earlier test is still being retried (the count holds for
    longer than the mapping's retries take): otherwise such a record, dead-lettered meanwhile, would
    count as this test's."""
    count, since = waiting(stack), time.monotonic()
    while time.monotonic() - since < RETRIES_S + 0.5:
        time.sleep(0.25)
        now = waiting(stack)
        if now != count:
            count, since = now, time.monotonic()
    return count


def published(stack: Stack, user_id: str) -> list[dict[str, Any]]:
    path = Path(stack.info["events_file"])
    entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [entry for entry in entries if json.loads(entry["Detail"])["userId"] == user_id]


def history(stack: Stack, token: str, user_id: str) -> list[dict[str, Any]]:
    response = call(stack, "GET", f"/users/{user_id}/history", token)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def test_make_replay_dlq_replays_what_the_consumer_gave_up_on(stack: Stack) -> None:
    admin = stack.token()
    events = stack.client("events")
    bus = stack.info["event_bus_name"]
    before = settled(stack)  # 0, unless another test of the session left a dead letter
    events.delete_event_bus(Name=bus)
    try:
        created = call(
            stack, "POST", "/users", admin, {"name": "Grace", "email": f"grace-{uuid.uuid4().hex[:8]}@example.com"}
        )
        assert created.status_code == 201, created.text
        user_id = created.json()["user"]["userId"]
        assert wait_until(lambda: waiting(stack) >= before + 1, DEAD_LETTERED_S)
    finally:
        events.create_event_bus(Name=bus)
    assert history(stack, admin, user_id) == [] and published(stack, user_id) == []

    result = make_replay(stack)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("replayed shard ") and lines[0].endswith("message deleted")
    total = re.fullmatch(r"(\d+) dead-lettered batches: (\d+) replayed \(\d+ records\) and deleted", lines[-1])
    assert total is not None and total.group(1) == total.group(2) == str(before + 1), lines[-1]
    assert [e["type"] for e in history(stack, admin, user_id)] == ["UserCreated"]
    assert [entry["DetailType"] for entry in published(stack, user_id)] == ["UserCreated"]
    assert waiting(stack) == 0

    # Nothing left: said so, and STAGE=local is the same stack.
    again = make_replay(stack, "STAGE=local")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "the dead-letter queue is empty: nothing to replay"
