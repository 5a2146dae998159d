"""The deploy's version check (infra/release_version.py) with a fake AWS CLI: an older release than
the stack's is refused unless the rollback is said to be deliberate; the rest goes on."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from infra.aws_cli import AwsCliError
from infra.release_version import PATTERN, Version, main

STACK = "users-api-prod"


class FakeAws:
    def __init__(self, recorded: str | None, exists: bool = True, error: str = "") -> None:
        self.recorded, self.exists, self.error = recorded, exists, error

    def __call__(self, arguments: list[str]) -> str:
        assert arguments[:4] == ["cloudformation", "describe-stacks", "--stack-name", STACK]
        if self.error:
            raise AwsCliError(arguments, self.error)
        if not self.exists:
            raise AwsCliError(arguments, f"An error occurred (ValidationError): Stack with id {STACK} does not exist")
        outputs = [{"OutputKey": "ApiEndpoint", "OutputValue": "https://x/api/"}]
        if self.recorded is not None:
            outputs.append({"OutputKey": "ReleaseVersion", "OutputValue": self.recorded})
        return json.dumps({"Stacks": [{"StackName": STACK, "Outputs": outputs}]})


def check(version: str, aws: FakeAws, *extra: str) -> int:
    return main(["check", "--stack-name", STACK, "--version", version, *extra], aws)


@pytest.mark.parametrize(
    ("recorded", "version", "said"),
    [
        ("v1.4.0", "v1.5.0", "v1.4.0 is live; deploying the newer v1.5.0"),
        ("v1.4.0", "v1.4.0", "v1.4.0 is live; deploying it again"),
        ("1.4.0-rc.1", "v1.4.0", "deploying the newer v1.4.0"),  # a release after its release candidate
        ("0.0.0", "v0.1.0", "deploying the newer v0.1.0"),  # a stack deployed without a version
        (None, "v1.0.0", "no version recorded yet; deploying v1.0.0"),  # from before versions were recorded
    ],
)
def test_the_same_or_a_newer_version_goes_on(
    recorded: str | None, version: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(version, FakeAws(recorded)) == 0
    assert said in capsys.readouterr().err


def test_a_first_deploy_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert check("v1.0.0", FakeAws(None, exists=False)) == 0
    assert "no version recorded yet" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("recorded", "version"), [("v1.4.0", "v1.3.9"), ("v1.10.0", "v1.9.0"), ("v2.0.0", "v2.0.0-rc.1")]
)
def test_an_older_version_is_refused_unless_the_rollback_is_deliberate(
    recorded: str, version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(version, FakeAws(recorded)) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert f"refusing to deploy {version} over the newer {recorded}, which is live" in line
    assert "--allow-older true" in line
    assert check(version, FakeAws(recorded), "--allow-older", "true") == 0
    assert f"rolling back to {version} as asked" in capsys.readouterr().err
    assert check(version, FakeAws(recorded), "--allow-older", "false") == 1


def test_a_version_that_is_not_one_or_a_stack_that_cannot_be_read_stops_the_deploy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert check("latest", FakeAws("v1.0.0")) == 1
    assert "'latest' is not a version" in capsys.readouterr().err
    denied = FakeAws("v1.0.0", error="An error occurred (AccessDenied) when calling the DescribeStacks operation")
    assert check("v1.1.0", denied) == 1  # never taken for "no stack"
    assert "AccessDenied" in capsys.readouterr().err


def test_semantic_version_precedence() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11"]
    ordered += ["1.0.0-rc.1", "1.0.0", "v1.0.1", "1.10.0", "2.0.0"]
    versions = [Version.parse(text) for text in ordered]
    assert all(a < b for a, b in itertools.pairwise(versions))
    assert Version.parse("1.0.0+build.7").same_as(Version.parse("v1.0.0"))


def test_the_templates_pattern_accepts_exactly_the_versions_the_check_reads() -> None:
    for good in ("v1.4.0", "1.4.0", "0.0.0", "v2.0.0-rc.1", "1.0.0+build.5"):
        assert re.fullmatch(PATTERN, good), good
    for bad in ("1.4", "v01.4.0", "latest", "", "1.4.0 ", "refs/tags/v1.4.0"):
        assert not re.fullmatch(PATTERN, bad), bad
