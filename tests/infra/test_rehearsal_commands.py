"""The deploy rehearsal (`make rehearse`, infra/rehearsal) runs the commands docs/DEPLOY.md and
deploy.yml show; these hold, without running it, that it finds every one of them and can give
each what it needs, so that a new block or step cannot slip past it."""

from __future__ import annotations

import yaml

from infra.rehearsal.__main__ import DEPLOY_DOC, NEXT_VERSION, VALUES, WORKFLOW, route
from infra.rehearsal.commands import EXPRESSION, Block, Context, blocks, commands, needs, workflow_job


def test_every_bash_block_of_the_deploy_guide_has_a_path_that_runs_it() -> None:
    found = blocks(DEPLOY_DOC.read_text())
    assert len(found) >= 10
    paths = {block.heading: route(block) for block in found}
    assert set(paths.values()) == {"cloudformation", "chalice", "terraform"}


def test_a_block_under_a_new_heading_stops_the_rehearsal_with_a_message() -> None:
    stray = Block("Deploying to the moon", "aws moon launch\n", ())
    try:
        route(stray)
    except SystemExit as stop:
        assert "Deploying to the moon" in str(stop.code)
    else:
        raise AssertionError("a block no path runs was accepted")


def test_every_value_a_block_needs_is_one_the_rehearsal_supplies() -> None:
    for block in blocks(DEPLOY_DOC.read_text()):
        missing = [name for name in block.needs if name not in VALUES]
        assert not missing, (block.heading, missing)


def test_a_block_uses_no_capitalised_variable_it_neither_needs_nor_sets() -> None:
    """The convention: a user-supplied value is named on `# needs:`; others are set by the block."""
    import re

    for block in blocks(DEPLOY_DOC.read_text()):
        text = "\n".join(commands(block.text))
        used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
        assigned = set(re.findall(r"(?:^|[\s;(])([A-Z][A-Z0-9_]*)=", text))
        assigned |= set(re.findall(r"for ([A-Z][A-Z0-9_]*) in", text))
        unexplained = used - assigned - set(block.needs) - {"PATH", "HOME"}
        assert not unexplained, (block.heading, unexplained)


def test_needs_lines_are_parsed_as_the_convention_says() -> None:
    assert needs("# needs: A_B C\nmake x\n") == ("A_B", "C")
    assert needs("# a comment first\n# needs: X\n") == ("X",)
    assert needs("make x\n# needs: X\n") == ()
    assert commands("a \\\n  b\n# c\n\nd\n") == ["a \\\n  b", "d"]


def test_every_expression_of_the_deploy_job_evaluates_in_the_rehearsals_context() -> None:
    document = yaml.safe_load(WORKFLOW.read_text())
    job_env, steps = workflow_job(document, "deploy")
    context = Context(
        inputs={"stage": "prod", "version": NEXT_VERSION, "allow-older": False, "smoke-test": False},
        vars={"AWS_REGION": "us-east-1", "ARTIFACT_BUCKET": "b", "ALARM_EMAIL": "a", "DEPLOY_ROLE_ARN": "r"},
        secrets={"SMOKE_USERNAME": "", "SMOKE_PASSWORD": ""},
    )
    texts = [*job_env.values()]
    for step in steps:
        texts += [step.run, *step.env.values(), *step.with_.values()]
        context.holds(step.condition)
    for text in texts:
        for match in EXPRESSION.finditer(text):
            context.value(match["expr"])
