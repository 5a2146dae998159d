"""The deploy rehearsal (`make rehearse`, infra/rehearsal) runs the commands docs/DEPLOY.md and
deploy.yml show; these hold, without running it, that it finds every one of them and can give
each what it needs, so that a new block or step cannot slip past it."""

from __future__ import annotations

import pytest
import yaml

from infra.rehearsal import plan
from infra.rehearsal.__main__ import DEPLOY_DOC, NEXT_VERSION, VALUES, WORKFLOW, route
from infra.rehearsal.commands import EXPRESSION, Block, Context, Step, blocks, commands, needs, workflow_job


def test_every_bash_block_of_the_deploy_guide_has_one_row_of_the_rehearsals_table() -> None:
    found = blocks(DEPLOY_DOC.read_text())
    assert len(found) >= 10
    paths = {block.heading: route(block) for block in found}
    assert set(paths.values()) == {"cloudformation", "chalice", "terraform"}


def test_every_step_of_the_deploy_job_has_one_row_of_the_rehearsals_table() -> None:
    _, steps = workflow_job(yaml.safe_load(WORKFLOW.read_text()), "deploy")
    assert len(steps) >= 8
    for step in steps:
        assert plan.step_entry(step).source == "deploy.yml"


def test_every_row_of_the_table_names_a_block_or_step_that_exists() -> None:
    """No stale rows: a block or step that went away takes its row with it."""
    _, steps = workflow_job(yaml.safe_load(WORKFLOW.read_text()), "deploy")
    used = {plan.route(block) for block in blocks(DEPLOY_DOC.read_text())}
    used |= {plan.step_entry(step) for step in steps}
    assert set(plan.ROWS) - used == set()


def test_a_block_under_a_new_heading_stops_the_rehearsal_with_a_message() -> None:
    stray = Block("Deploying to the moon", "aws moon launch\n", ())
    with pytest.raises(SystemExit, match="Deploying to the moon"):
        route(stray)


def test_a_second_teardown_block_of_neither_kind_is_not_taken_for_one_it_lists() -> None:
    with pytest.raises(SystemExit, match="neither runs nor lists"):
        route(Block("Tearing down", "pulumi destroy\n", ()))


def test_a_new_workflow_step_stops_the_rehearsal_with_a_message() -> None:
    new_run = Step("Tag the release", "", "git tag x", {}, "", "", {})
    new_action = Step("", "some/action@abc", "", {}, "", "", {})
    for step in (new_run, new_action):
        with pytest.raises(SystemExit, match="neither runs nor lists"):
            plan.step_entry(step)


def test_the_deploy_guide_shows_the_rehearsals_table_as_the_code_has_it() -> None:
    assert plan.table() in DEPLOY_DOC.read_text(), "regenerate it: .venv/bin/python -m infra.rehearsal --table"


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
