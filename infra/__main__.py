"""`python -m infra <command>`: the files `make package`, `make package-tf`, `make base-template` and
`make policies` write (the operators' tools that run against a stage are in ops/)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import NoReturn

from chalicelib.adapters.table_schema import FINAL_STEP
from chalicelib.config import ConfigurationError
from infra import policies
from infra.cli import fail, stage_or_fail
from infra.stages import DEPLOYED_STAGES, Stage, load_stage

PROGRAM = "python -m infra"


def _fail(command: str, message: object) -> NoReturn:
    fail(PROGRAM, command, message)


def _stage(command: str, name: str) -> Stage:
    return stage_or_fail(PROGRAM, command, name)


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
    args = parser.parse_args()
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
