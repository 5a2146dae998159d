"""The price of importing and exporting a million users (bench/bulk_cost.py), on fixed inputs, and its
command as docs/BENCHMARKS.md shows it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import bulk_cost
from bench.report import Figure

PROJECT_DIR = Path(__file__).resolve().parents[2]


def _export(figures: list[Figure]) -> Figure:
    return next(figure for figure in figures if figure.name == "export 1,000,000 users")


def test_an_export_costs_more_the_more_units_each_user_reads() -> None:
    cheap = bulk_cost.export_usd(units_per_user=0.05)
    dear = bulk_cost.export_usd(units_per_user=0.5)
    assert dear["DynamoDB reads"] == pytest.approx(10 * cheap["DynamoDB reads"])
    assert dear["worker Lambda"] > cheap["worker Lambda"]  # paced by read units a second
    assert dear["S3 (parts, storage, download)"] == cheap["S3 (parts, storage, download)"]


def test_invitations_are_the_only_difference_between_an_invited_and_a_quiet_import() -> None:
    invited, quiet = bulk_cost.import_usd(invite=True), bulk_cost.import_usd(invite=False)
    assert quiet["SES invitations"] == 0
    assert invited["SES invitations"] == pytest.approx(100.0)  # $0.10 a thousand mails
    assert {k: v for k, v in invited.items() if k != "SES invitations"} == {
        k: v for k, v in quiet.items() if k != "SES invitations"
    }


def test_without_a_measurement_the_export_says_its_units_are_assumed() -> None:
    export = _export(bulk_cost.figures())
    assert "ASSUMED" in export.note
    assert export.value == pytest.approx(sum(bulk_cost.export_usd().values()))


@pytest.mark.parametrize("units", [0.0, -0.1, float("nan")])
def test_a_units_per_user_that_is_not_positive_is_refused(units: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        bulk_cost.figures(units)


def test_the_documented_command_prices_the_measured_export() -> None:
    """docs/BENCHMARKS.md: `python -m bench.bulk_cost --units-per-user 0.06225` (the 100,000-user
    export's measured read units a user) gives $0.0351 for a million users."""
    benchmarks = (PROJECT_DIR / "docs" / "BENCHMARKS.md").read_text()
    assert "`python -m bench.bulk_cost --units-per-user 0.06225`" in benchmarks
    done = subprocess.run(
        [sys.executable, "-m", "bench.bulk_cost", "--units-per-user", "0.06225"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    export_line = next(line for line in done.stdout.splitlines() if "  export 1,000,000 users  " in line)
    assert "0.0351 USD" in export_line
    assert "read units per user as given: 0.06225" in done.stdout


def test_the_command_refuses_a_units_per_user_that_is_not_positive() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bulk_cost", "--units-per-user", "0"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--units-per-user must be a positive number" in done.stderr
    assert done.stdout == ""
