"""`make bench QUICK=1` is a smoke run: it reports its figures and exits 0 whatever they are, since
a few repetitions on a shared machine cannot tell a miss from noise; `make bench` still gates."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench.context import Context
from bench.report import Figure

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def sections(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Figure]]:
    """Stand-in sections whose figures each test chooses (any figure, missed or not)."""
    figures: dict[str, list[Figure]] = {"first": [], "second": []}
    for name in figures:
        module = types.ModuleType(f"bench.{name}")

        def run(context: Context, name: str = name) -> list[Figure]:
            return figures[name]

        module.run = run  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"bench.{name}", module)
    monkeypatch.setattr(bench_main, "SECTIONS", tuple(figures))
    return figures


def figure(section: str, passed: bool | None, value: float = 1.0) -> Figure:
    return Figure(section, f"ratio {value}", value, "x", target="<= 1.5x", passed=passed)


@pytest.mark.parametrize("verdicts", [[True, True], [False, True], [False, False], [None, False]])
def test_a_quick_run_exits_0_whatever_its_figures(
    sections: dict[str, list[Figure]], tmp_path: Path, capsys: pytest.CaptureFixture[str], verdicts: list[bool | None]
) -> None:
    sections["first"] = [figure("first", verdicts[0], 0.9)]
    sections["second"] = [figure("second", verdicts[1], 3.0)]
    assert bench_main.main(["--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ratio 0.9" in out and "ratio 3.0" in out  # it reports
    if False in verdicts:
        assert "not a verdict" in out and "targets missed" not in out


def test_the_full_run_still_gates(sections: dict[str, list[Figure]], tmp_path: Path) -> None:
    sections["first"] = [figure("first", True)]
    sections["second"] = [figure("second", False)]
    assert bench_main.main(["--out", str(tmp_path)]) == 1
    sections["second"] = [figure("second", True)]
    assert bench_main.main(["--out", str(tmp_path)]) == 0


def test_a_section_that_breaks_still_fails_a_quick_run(sections: dict[str, list[Figure]], tmp_path: Path) -> None:
    def broken(context: Context) -> list[Figure]:
        raise RuntimeError("the stand-in could not start")

    sys.modules["bench.first"].run = broken  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        bench_main.main(["--quick", "--out", str(tmp_path)])


def test_make_bench_quick_as_typed_is_the_smoke_run() -> None:
    env = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    shown = subprocess.run(
        ["make", "-n", "--no-print-directory", "bench", "QUICK=1"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    (line,) = [line for line in shown.splitlines() if "-m bench" in line]
    assert line.endswith("-m bench --quick")
