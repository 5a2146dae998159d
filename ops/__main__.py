"""`python -m ops <command>`: an operator's tools that run against a stage (local: the running
`make run`): `make drift`, a check of a stage's sign-ins against its records; `make replay-dlq`,
which hands the change consumer the stream records it gave up on; `make reindex`, a backfill of the
search indexes' keys after an upgrade; and `make cleanup`, what a failed stack left."""

from __future__ import annotations

import argparse
from typing import NoReturn

from infra.cli import fail, stage_or_fail
from infra.stages import DEPLOYED_STAGES, Stage

PROGRAM = "python -m ops"


def _fail(command: str, message: object) -> NoReturn:
    fail(PROGRAM, command, message)


def _stage(command: str, name: str) -> Stage:
    return stage_or_fail(PROGRAM, command, name)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ops")
    commands = parser.add_subparsers(dest="command", required=True)
    drift = commands.add_parser("drift", help="report where sign-ins and records disagree (--fix: repair)")
    drift.add_argument("stage", choices=("local", *DEPLOYED_STAGES))
    drift.add_argument("--fix", action="store_true")
    replay = commands.add_parser("replay-dlq", help="hand the change consumer its dead-lettered stream records again")
    replay.add_argument("stage", choices=("local", *DEPLOYED_STAGES))
    replay.add_argument(
        "--drop-trimmed", action="store_true", help="delete the messages whose records the stream no longer holds"
    )
    cleanup = commands.add_parser("cleanup", help="what a failed or deleted stack of a stage left behind")
    cleanup.add_argument("stage", help=", ".join(DEPLOYED_STAGES))
    cleanup.add_argument("--confirm", action="store_true", help="delete what is listed for deletion")
    cleanup.add_argument("--data", action="store_true", help="also what holds data (tables with items, ...)")
    reindex = commands.add_parser("reindex", help="give every user item the keys of the search indexes")
    reindex.add_argument("stage", choices=("local", *DEPLOYED_STAGES))
    reindex.add_argument("--segments", type=int, default=None, help="parallel scan segments (default 16)")
    args = parser.parse_args()
    if args.command == "reindex":
        from ops.reindex import DEFAULT_SEGMENTS
        from ops.reindex import main as reindex_main

        reindex_main(args.stage, args.segments or DEFAULT_SEGMENTS)
        return
    if args.command == "cleanup":
        from ops.cleanup import main as cleanup_main

        cleanup_main(_stage(args.command, args.stage), args.confirm, args.data)
        return
    if args.command == "drift":
        from ops.drift import main as drift_main

        drift_main(args.stage, args.fix)
        return
    if args.command == "replay-dlq":
        from ops.replay_dlq import main as replay_main

        replay_main(args.stage, args.drop_trimmed)
        return


if __name__ == "__main__":
    main()
