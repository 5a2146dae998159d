"""`python -m infra <command>`: the files `make package`, `make package-tf` and `make policies` write;
`make drift`, an operator's check of a stage's sign-ins against its records; and `make reindex`,
an operator's backfill of the search indexes' keys after an upgrade."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chalicelib.adapters.table_schema import FINAL_STEP
from infra import policies
from infra.stages import DEPLOYED_STAGES, load_stage


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
        command.add_argument("stage", choices=DEPLOYED_STAGES)
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
    reindex = commands.add_parser("reindex", help="give every user item the keys of the search indexes")
    reindex.add_argument("stage", choices=("local", *DEPLOYED_STAGES))
    reindex.add_argument("--segments", type=int, default=None, help="parallel scan segments (default 16)")
    args = parser.parse_args()
    if args.command == "reindex":
        from infra.reindex import DEFAULT_SEGMENTS
        from infra.reindex import main as reindex_main

        reindex_main(args.stage, args.segments or DEFAULT_SEGMENTS)
        return
    if args.command == "drift":
        from infra.drift import main as drift_main

        drift_main(args.stage, args.fix)
        return
    if args.command == "policies":
        for name in DEPLOYED_STAGES:
            for path, content in policies.rendered_files(load_stage(name)).items():
                Path(path).write_text(content)
        return
    stage = load_stage(args.stage)
    if args.command == "package":
        from infra.packaging import package_cloudformation

        print(package_cloudformation(stage, args.out, args.index_step))
    elif args.command == "package-tf":
        from infra.packaging import package_terraform

        print(package_terraform(stage, args.out))
    else:
        from infra.cloudformation import base_template

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(base_template(stage, args.index_step), indent=2) + "\n")
        print(args.out)


if __name__ == "__main__":
    main()
