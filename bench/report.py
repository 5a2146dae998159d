"""Figures as the benchmarks report them: a value, its unit, and the target it is held to."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured number. `passed` is None for a figure shown for comparison only."""

    section: str
    name: str
    value: float
    unit: str
    target: str = ""
    passed: bool | None = None
    note: str = ""

    def shown(self) -> str:
        if abs(self.value) >= 100:
            value = f"{self.value:,.0f}"
        elif abs(self.value) >= 1 or self.value == 0:
            value = f"{self.value:,.2f}".rstrip("0").rstrip(".")
        else:  # small costs: three significant digits, not 0.04
            value = f"{self.value:.3g}"
        return f"{value} {self.unit}".strip()

    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: ""}[self.passed]


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

    def add(self, figures: list[Figure]) -> None:
        self.figures.extend(figures)

    @property
    def failed(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.passed is False]

    def table(self) -> str:
        """Plain text for the terminal."""
        rows = [("section", "figure", "value", "target", "result")]
        rows += [(f.section, f.name, f.shown(), f.target, f.verdict()) for f in self.figures]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        notes = [f"  [{f.section} / {f.name}] {f.note}" for f in self.figures if f.note]
        return "\n".join([*lines, *(["", "notes:", *notes] if notes else [])])

    def markdown(self) -> str:
        header = ["| section | figure | value | target | result |", "|---|---|---|---|---|"]
        lines = [f"_{machine()['summary']}_", "", *header]
        lines += [f"| {f.section} | {f.name} | {f.shown()} | {f.target} | {f.verdict()} |" for f in self.figures]
        notes = [f"- **{f.section} / {f.name}**: {f.note}" for f in self.figures if f.note]
        return "\n".join([*lines, *(["", *notes] if notes else [])]) + "\n"

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "results.md").write_text(self.markdown())
        document: dict[str, Any] = {"machine": machine(), "figures": [asdict(f) for f in self.figures]}
        (directory / "results.json").write_text(json.dumps(document, indent=2) + "\n")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
    }
    info["summary"] = (
        f"{info['date']}; {info['cpu']}, {info['cores']} cores; Python {info['python']}; {info['platform']}"
    )
    return info
