"""`python -m infra.release_version check --stack-name users-api-<stage> --version <tag>`: refuse to
deploy a release older than the one the stack runs.

Each deploy records its version in the stack (the template's ReleaseVersion parameter, which the
API function's environment and the stack's ReleaseVersion output carry). This reads the live one
with the AWS CLI and compares semantic versions (a pre-release sorts before its release; build
metadata is ignored): an older version is refused, unless `--allow-older true` says the rollback
is deliberate (docs/DEPLOY.md, Rolling back). The same version again, a newer one, a first deploy
or a stack from before versions were recorded pass. Exit status 0 to go on, 1 to stop; one line on
stderr says which and why. Standard library and the AWS CLI only: the deploy job installs nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

from infra.aws_cli import Aws, AwsCliError, run_aws, stack_outputs

OUTPUT = "ReleaseVersion"
# Semantic Versioning 2.0.0, with the leading `v` of a git tag allowed.
SEMVER = re.compile(
    r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
# The template's AllowedPattern for ReleaseVersion (infra/cloudformation.py): what SEMVER accepts.
PATTERN = "^" + SEMVER.pattern + "$"


@dataclass(frozen=True)
class Version:
    text: str
    release: tuple[int, int, int]
    prerelease: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Version:
        match = SEMVER.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a version (MAJOR.MINOR.PATCH, as in the tag v1.4.0)")
        major, minor, patch, pre = match.groups()
        return cls(text.strip(), (int(major), int(minor), int(patch)), tuple(pre.split(".")) if pre else ())

    def _key(self) -> tuple[tuple[int, int, int], int, tuple[tuple[int, int | str], ...]]:
        # Semver precedence: a release after its pre-releases; numeric identifiers before alphanumeric ones.
        identifiers = tuple((0, int(part)) if part.isdigit() else (1, part) for part in self.prerelease)
        return self.release, 0 if self.prerelease else 1, identifiers

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def same_as(self, other: Version) -> bool:
        return self._key() == other._key()


def decide(new: Version, live: Version | None, allow_older: bool, stack: str) -> tuple[bool, str]:
    """Whether to deploy `new` over `live`, and the line that says why."""
    if live is None:
        return True, f"{stack}: no version recorded yet; deploying {new.text}"
    if new.same_as(live):
        return True, f"{stack}: {live.text} is live; deploying it again"
    if live < new:
        return True, f"{stack}: {live.text} is live; deploying the newer {new.text}"
    if allow_older:
        return True, f"{stack}: {live.text} is live; rolling back to {new.text} as asked (--allow-older)"
    return False, (
        f"{stack}: refusing to deploy {new.text} over the newer {live.text}, which is live. "
        "To roll back on purpose, say so: --allow-older true (docs/DEPLOY.md, Rolling back)"
    )


def check(stack: str, version: str, allow_older: bool, aws: Aws = run_aws) -> tuple[bool, str]:
    new = Version.parse(version)
    outputs = stack_outputs(stack, aws)
    recorded = (outputs or {}).get(OUTPUT)
    return decide(new, Version.parse(recorded) if recorded else None, allow_older, stack)


def main(argv: list[str], aws: Aws = run_aws) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.release_version", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("check", help="refuse a version older than the stack's")
    command.add_argument("--stack-name", required=True)
    command.add_argument("--version", required=True, help="the release to deploy, e.g. the tag v1.4.0")
    command.add_argument(
        "--allow-older", choices=("true", "false"), default="false", help="true: a deliberate rollback"
    )
    args = parser.parse_args(argv)
    try:
        go, line = check(args.stack_name, args.version, args.allow_older == "true", aws)
    except (ValueError, AwsCliError) as exc:
        print(f"release version check: {exc}", file=sys.stderr)
        return 1
    print(line, file=sys.stderr)
    return 0 if go else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
