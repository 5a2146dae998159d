"""API Gateway's own error responses (no route, bad token, throttled, ...) in the app's JSON shape,
with the CORS headers a browser needs to read them, as the `x-amazon-apigateway-gateway-responses`
extension of the API body.

In the body, not as separate resources: a change of routes replaces the body (PutRestApi in
overwrite mode), which deletes gateway responses the body does not carry. Both the CloudFormation
and the Terraform packages put this same extension in their body.
"""

from __future__ import annotations

from typing import Any

from infra.stages import Stage

Json = dict[str, Any]
EXTENSION = "x-amazon-apigateway-gateway-responses"


def gateway_responses(stage: Stage, limits: Json) -> Json:
    responses: Json = {}
    for kind, spec in limits["gateway_responses"].items():
        headers = {
            "Access-Control-Allow-Origin": f"'{stage.cors_origin}'",
            "Vary": "'Origin'",
            # nosniff and no-store, as on the app's own responses.
            **limits["gateway_response_headers"],
            **spec.get("headers", {}),
        }
        response: Json = {
            "responseParameters": {f"gatewayresponse.header.{name}": value for name, value in headers.items()},
            "responseTemplates": {"application/json": spec["body"]},
        }
        if "status" in spec:
            response["statusCode"] = spec["status"]
        responses[kind] = response
    return responses
