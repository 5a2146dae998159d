"""`python -m infra <command>`: the files `make package`, `make package-tf` and `make policies` write;
`make drift`, an operator's check of a stage's sign-ins against its records; `make replay-dlq`,
which hands the change consumer the stream records it gave up on; `make reindex`, an operator's
backfill of the search indexes' keys after an upgrade; and `make cleanup`, what a failed stack left."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from chalicelib.adapters.table_schema import FINAL_STEP
from chalicelib.config import ConfigurationError
from infra import policies
from infra.stages import DEPLOYED_STAGES, Stage, load_stage


def _fail(command: str, message: object) -> NoReturn:
    """A failure the user can act on: one line on stderr, exit status 1, no traceback."""
    sys.exit(f"python -m infra {command}: {message}")


def _stage(command: str, name: str) -> Stage:
    try:
        return load_stage(name)
    except (ValueError, KeyError, ConfigurationError) as exc:  # unknown stage, or a config it cannot read
        _fail(command, exc)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("policies", help="write .chalice/policy-<stage>*.json for every deployed stage")
    for name, text in (
        ("package", "CloudFormation: merged sam.json and deployment.zip"),
        ("package-tf", "Terraform: chalice.tf.json, our .tf files, tfvars and deployment.zip"),
        ("base-template", "stand-alone template of the table, pool and secret, for `chalice deploy`"),
    ):
        command = commands.add_parser(name, help=text)
        # Checked by load_stage, which says in one line which stages exist.
        command.add_argument("stage", help=", ".join(DEPLOYED_STAGES))
        command.add_argument("out", type=Path)
        if name != "package-tf":  # Terraform's provider adds and removes indexes one by one itself
            command.add_argument(
                "--index-step",
                type=int,
                choices=range(FINAL_STEP + 1),
                default=FINAL_STEP,
                help="an intermediate template of an upgrade of the users table's indexes (docs/DEPLOY.md)",
            )
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
        from infra.reindex import DEFAULT_SEGMENTS
        from infra.reindex import main as reindex_main

        reindex_main(args.stage, args.segments or DEFAULT_SEGMENTS)
        return
    if args.command == "cleanup":
        from infra.cleanup import main as cleanup_main

        cleanup_main(_stage(args.command, args.stage), args.confirm, args.data)
        return
    if args.command == "drift":
        from infra.drift import main as drift_main

        drift_main(args.stage, args.fix)
        return
    if args.command == "replay-dlq":
        from infra.replay_dlq import main as replay_main

        replay_main(args.stage, args.drop_trimmed)
        return
    if args.command == "policies":
        for name in DEPLOYED_STAGES:
            for path, content in policies.rendered_files(load_stage(name)).items():
                Path(path).write_text(content)
        return
    stage = _stage(args.command, args.stage)
    from infra.packaging import PackagingError

    try:
        print(_write(args.command, stage, args.out, getattr(args, "index_step", FINAL_STEP)))
    except (PackagingError, ConfigurationError, OSError) as exc:
        _fail(args.command, exc)


def _write(command: str, stage: Stage, out: Path, index_step: int) -> Path:
    if command == "package":
        from infra.packaging import package_cloudformation

        return package_cloudformation(stage, out, index_step)
    if command == "package-tf":
        from infra.packaging import package_terraform

        return package_terraform(stage, out)
    from infra.cloudformation import base_template

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(base_template(stage, index_step), indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
