"""`python -m bench` (`make bench`): run every section, print each figure with its target and
PASS/FAIL, write out/bench/results.{md,json}; exit 1 if a target is missed. With --quick (`make
bench QUICK=1`), a smoke run: too few repetitions to tell a miss from noise, so it reports the
figures and what they would miss, and exits 0 unless a section itself failed to run."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from bench.context import PROJECT_DIR, Context
from bench.report import Report

# In this order: the cost model prices what the sections before it measured.
SECTIONS = (
    "cold_start",
    "request_overhead",
    "dynamodb_requests",
    "search_pages",
    "package_size",
    "local_latency",
    "cost_model",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: a smoke run, not figures to quote")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run just this section (repeatable)")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "out" / "bench")
    args = parser.parse_args(argv)
    context = Context(workdir=args.out.resolve(), quick=args.quick)
    report = Report()
    for name in [section for section in SECTIONS if not args.only or section in args.only]:
        started = time.monotonic()
        section = importlib.import_module(f"bench.{name}")
        figures = section.run(context)
        report.add(figures)
        sys.stderr.write(f"[bench] {name}: {len(figures)} figures in {time.monotonic() - started:.1f} s\n")
    report.write(context.workdir)
    sys.stdout.write(report.table() + "\n")
    sys.stdout.write(f"\nwritten: {context.workdir / 'results.md'} and results.json\n")
    if report.failed:
        names = ", ".join(f"{f.section} / {f.name}" for f in report.failed)
        if args.quick:
            sys.stdout.write(f"outside their targets in this smoke run (not a verdict; `make bench` is): {names}\n")
            return 0
        sys.stdout.write(f"targets missed: {names}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
