"""`python -m loadtest` (= `make loadtest`): load the local stack, then check nothing was lost.

By default it starts its own stack (as `make run` does, on free ports) and stops it afterwards;
`--stack-file .local/stack.json` uses a running `make run` instead. Exit status 0 only on a clean run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from loadtest.runner import NotLoopback, Report, run_load


def _on_running_stack(stack_file: Path, clients: int, duration: float, seed: int | None) -> Report:
    if not stack_file.exists():
        sys.exit(f"{stack_file} not found: start the stack first with `make run`")
    return run_load(json.loads(stack_file.read_text()), clients, duration, seed)


def _on_own_stack(clients: int, duration: float, seed: int | None) -> Report:
    from devstack.process import start_stack, stop_stack

    with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
        print("Starting the local stack...", file=sys.stderr, flush=True)
        stack = start_stack(Path(tmp))
        try:
            report = run_load(stack.info, clients, duration, seed)
            crashed = stack.process.poll() is not None
        finally:
            if stack.process.poll() is None:
                stop_stack(stack)
        if crashed:
            sys.exit("the stack stopped during the run:\n" + (Path(tmp) / "stack.log").read_text()[-4000:])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest", description="Load the local stack, then check nothing was lost."
    )
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--stack-file", type=Path, help="use the running stack this file describes (make run)")
    parser.add_argument("--seed", type=int, help="seed of the clients' random choices, to repeat a run")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0:
        parser.error("--clients and --duration must be positive")
    try:
        if args.stack_file is not None:
            report = _on_running_stack(args.stack_file, args.clients, args.duration, args.seed)
        else:
            report = _on_own_stack(args.clients, args.duration, args.seed)
    except NotLoopback as exc:
        sys.exit(str(exc))
    print(report.to_json() if args.json else report.summary(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
