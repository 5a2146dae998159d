"""The rehearsal's table: every deploy block of docs/DEPLOY.md and every step of deploy.yml's job,
which path runs it, how (as written, or with a part stood in for or not run) and why.

`route` and `step_entry` find a block's or step's row; a block or step with no row stops the
rehearsal, and `tests/infra/test_rehearsal_commands.py` fails, so a new deploy command cannot slip
past it. `python -m infra.rehearsal --table` prints the table. The limits it names are the ones
docs/DEPLOY.md lists under "What the rehearsal cannot show".
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.rehearsal.commands import Block, Step

AS_WRITTEN = "run as written"


@dataclass(frozen=True)
class Row:
    source: str  # "DEPLOY.md" (a heading's prefix) or "deploy.yml" (a step's name, or its action)
    key: str
    path: str  # cloudformation | chalice | terraform
    how: str
    why: str = ""
    contains: str = ""  # for a heading with blocks of more than one path: a word of the block


ROWS = (
    Row(
        "DEPLOY.md",
        "With CloudFormation",
        "cloudformation",
        AS_WRITTEN,
        "first create of prod (v1.0.0); stack status, every output, the table, pool, bucket, secret, "
        "functions, aliases, stream mapping, API, usage plan, WAF, alarms and the recorded release checked",
    ),
    Row(
        "DEPLOY.md",
        "Upgrading the users table",
        "cloudformation",
        AS_WRITTEN,
        "the INDEX_STEP templates are packaged, not deployed (the prose says to deploy each: the stack is "
        "already at the final template, and moto does not enforce one index per update); make reindex on "
        "the deployed table",
    ),
    Row(
        "DEPLOY.md",
        "Rolling back",
        "cloudformation",
        AS_WRITTEN,
        "after deploy.yml's v1.1.0: the kept v1.0.0 template deployed again; the stack records v1.0.0",
    ),
    Row(
        "DEPLOY.md",
        "Replaying dead-lettered changes",
        "cloudformation",
        AS_WRITTEN,
        "the queue is empty: the emulator's Lambda runs no code, so nothing is dead-lettered",
    ),
    Row(
        "DEPLOY.md",
        "First token and first call",
        "cloudformation",
        "run; curl not run",
        "the admin is made, signs in and gets a token and the API key; the two curl calls are shown, not "
        "run: the emulator neither serves execute-api URLs nor runs Lambda code",
    ),
    Row(
        "DEPLOY.md",
        "Rotating the API key",
        "cloudformation",
        AS_WRITTEN,
        "the old key disabled, the new one on the plan",
    ),
    Row(
        "DEPLOY.md",
        "Tearing down",
        "cloudformation",
        AS_WRITTEN,
        "the stack gone with its function, API, queue and bus; tables, pool, bucket and secret retained",
        contains="aws cloudformation",
    ),
    Row(
        "DEPLOY.md",
        "If the first create fails",
        "cloudformation",
        "run after the teardown; its failure expected",
        "on what the teardown retained: the empty tables, bucket and secret deleted, the pool (the first "
        "admin) kept, which make cleanup reports and fails on (make exits 2)",
    ),
    Row(
        "DEPLOY.md",
        "With `chalice deploy`",
        "chalice",
        AS_WRITTEN,
        "base stack, its outputs into config.json with jq, chalice deploy; function settings, stream "
        "mapping and API checked",
    ),
    Row(
        "DEPLOY.md",
        "With Terraform",
        "terraform",
        "run; provider settings and mirror from the environment",
        "in an emulator of its own; the provider reaches it through AWS_ENDPOINT_URL, an override file adds "
        "S3 path-style and skips the credential and metadata checks, TF_CLI_CONFIG_FILE names the provider "
        "mirror; make release-tf finds both aliases on the version the first apply published (no "
        "CodeDeploy engine: a release that moves an alias is not rehearsed)",
    ),
    Row(
        "DEPLOY.md",
        "Tearing down",
        "terraform",
        AS_WRITTEN,
        "state rm of the kept resources, then destroy: the table and pool stay, the function goes",
        contains="terraform ",
    ),
    Row(
        "deploy.yml",
        "actions/checkout",
        "cloudformation",
        "stood in for",
        "the rehearsal's copy of the project is the checkout",
    ),
    Row("deploy.yml", "actions/setup-python", "cloudformation", "stood in for", "the project's .venv is on PATH"),
    Row(
        "deploy.yml",
        "actions/download-artifact",
        "cloudformation",
        "stood in for",
        "out/ as the docs' make package left it (the artifact is what make test packaged)",
    ),
    Row(
        "deploy.yml",
        "aws-actions/configure-aws-credentials",
        "cloudformation",
        "stood in for",
        "fake credentials and the region in the environment (no OIDC)",
    ),
    Row(
        "deploy.yml",
        "Refuse a version older than the one live",
        "cloudformation",
        AS_WRITTEN,
        "v1.1.0 over the docs' v1.0.0",
    ),
    Row("deploy.yml", "Upload the tested deployment.zip", "cloudformation", AS_WRITTEN),
    Row("deploy.yml", "Deploy", "cloudformation", AS_WRITTEN, "an update: UPDATE_COMPLETE, the stack records v1.1.0"),
    Row("deploy.yml", "Keep this release's template for a rollback", "cloudformation", AS_WRITTEN),
    Row("deploy.yml", "Stack outputs", "cloudformation", AS_WRITTEN),
    Row(
        "deploy.yml",
        "Smoke test",
        "cloudformation",
        "not run (smoke-test: false)",
        "the emulator neither serves execute-api URLs nor runs Lambda code; ops.smoke is tested against "
        "the local API (tests/e2e)",
    ),
)


class Unlisted(SystemExit):
    pass


def route(block: Block) -> Row:
    """The row of a DEPLOY.md block: its heading's, and where a heading has several, the one whose word it has."""
    rows = [r for r in ROWS if r.source == "DEPLOY.md" and block.heading.startswith(r.key)]
    rows = [r for r in rows if not r.contains or r.contains in block.text]
    if len(rows) != 1:
        raise Unlisted(
            f"make rehearse: docs/DEPLOY.md has a bash block under {block.heading!r} that the rehearsal "
            f"{'neither runs nor lists' if not rows else 'lists twice'}: add it to ROWS in infra/rehearsal/plan.py"
        )
    return rows[0]


def step_entry(step: Step) -> Row:
    """The row of one of deploy.yml's steps: its action's (a `uses:` step) or its name's prefix."""
    action = step.uses.split("@", 1)[0]
    rows = [
        r for r in ROWS if r.source == "deploy.yml" and (r.key == action if action else step.name.startswith(r.key))
    ]
    if len(rows) != 1:
        raise Unlisted(
            f"make rehearse: deploy.yml has a step {step.name!r} that the rehearsal "
            f"{'neither runs nor lists' if not rows else 'lists twice'}: add it to ROWS in infra/rehearsal/plan.py"
        )
    return rows[0]


def table() -> str:
    """The rows as a Markdown table."""
    lines = ["| file | block or step | path | how | why, and what is checked |", "|---|---|---|---|---|"]
    for row in ROWS:
        key = row.key + (f" ({row.contains.strip()})" if row.contains else "")
        lines.append(f"| {row.source} | {key} | {row.path} | {row.how} | {row.why} |")
    return "\n".join(lines) + "\n"
