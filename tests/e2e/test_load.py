"""A short `make loadtest` on the session's stack: concurrent clients get no 5xx and lose nothing."""

from __future__ import annotations

import json

import pytest

from loadtest.__main__ import main
from loadtest.runner import OPERATIONS, Recorder, run_load
from tests.e2e.conftest import Stack

# Fixed, so each client's choices repeat from run to run (as long as every answer is the expected one).
SEED = 20240601


def did_enough(recorders: list[Recorder]) -> bool:
    """Each operation at least 5 times, and both checks met: what the test asserts below."""
    return all(sum(len(r.latencies[op]) for r in recorders) >= 5 for op in OPERATIONS) and all(
        sum(r.checks[check] for r in recorders) >= 1 for check in ("deleted user gone", "duplicate email refused")
    )


def test_a_short_load_gets_no_5xx_and_loses_no_write(stack: Stack) -> None:
    # 5 s, or longer on a machine too busy to do enough in 5 (other stacks, other test runs).
    report = run_load(stack.info, clients=8, duration_s=5, seed=SEED, until=did_enough, max_duration_s=60)

    assert report.ok, report.summary()
    assert report.server_errors == 0 and report.problems == {}, report.summary()
    check = report.verification
    assert (check.lost, check.phantom, check.missing_reservations, check.orphaned_reservations) == ([], [], [], [])
    # Nothing was left out of the comparison, and the table holds exactly what the clients believe.
    assert check.uncertain == 0
    assert check.table_users == check.table_reservations == check.believed_present > 0
    assert check.believed_deleted > 0
    assert all(report.operations[op].count >= 5 for op in OPERATIONS), report.summary()
    assert report.checks["deleted user gone"] >= 1 and report.checks["duplicate email refused"] >= 1
    assert report.overall.p50_ms is not None and report.overall.p99_ms is not None
    assert report.overall.p50_ms <= report.overall.p99_ms


def test_the_cli_loads_a_running_stack_from_its_stack_file(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--stack-file", str(stack.stack_file), "--clients", "2", "--duration", "1", "--json"])

    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] is True, out["failures"]
    assert out["target"] == stack.url and out["clients"] == 2
    assert out["requests"] == sum(op["count"] for op in out["operations"].values()) > 0
