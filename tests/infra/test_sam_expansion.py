"""What AWS really deploys: each stage's template after the SAM transform (aws-sam-translator,
the library CloudFormation's AWS::Serverless transform runs), not the SAM template we write."""

from __future__ import annotations

from typing import Any

import pytest

from infra.stages import DEPLOYED_STAGES, load_stage

Template = dict[str, Any]


def of_type(template: Template, kind: str) -> dict[str, Template]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_the_api_has_exactly_one_stage_ours(expanded: dict[str, Template], name: str) -> None:
    """SAM's default `Stage` stage (aws/chalice#1655) would be a second live copy of the API
    without the WAF, throttling, cache and access logs that ours has."""
    template = expanded[name]
    stages = of_type(template, "AWS::ApiGateway::Stage")
    assert [s["Properties"]["StageName"] for s in stages.values()] == [load_stage(name).api_stage]
    (deployment,) = of_type(template, "AWS::ApiGateway::Deployment").values()
    assert "StageName" not in deployment["Properties"]  # a deployment with a StageName creates that stage
    (stage,) = stages.values()
    assert "MethodSettings" in stage["Properties"] and "AccessLogSetting" in stage["Properties"]


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_only_our_stage_may_invoke_the_function(expanded: dict[str, Template], name: str) -> None:
    (permission,) = of_type(expanded[name], "AWS::Lambda::Permission").values()
    source = permission["Properties"]["SourceArn"]["Fn::Sub"]
    assert source.endswith(f":${{RestAPI}}/{load_stage(name).api_stage}/*")


@pytest.mark.parametrize("name", DEPLOYED_STAGES)
def test_gateway_responses_are_part_of_the_api_body(expanded: dict[str, Template], name: str) -> None:
    """SAM puts GatewayResponses into the body, so a body update (a route change) keeps them."""
    (api,) = of_type(expanded[name], "AWS::ApiGateway::RestApi").values()
    responses = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "UNAUTHORIZED", "MISSING_AUTHENTICATION_TOKEN"} <= set(responses)
    assert not of_type(expanded[name], "AWS::ApiGateway::GatewayResponse")
